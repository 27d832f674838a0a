/* bench_workload.c — the built-in workloads, generated on demand and deterministic per
 * seed. Text is random English words from a fixed list, in sentences; a target of T
 * tokens becomes round(0.9*T) words (BENCH_WORDS_PER_TOKEN, measured for this list).
 *  - chat-shared-prefix: 4 tenants, each with its own ~300-token system prompt (the
 *    same bytes in every request of that tenant; `user` = tenant name); 8 conversations
 *    open at a time, each 2–6 turns; a request is the next turn of a randomly chosen
 *    open conversation: system + the whole history + a new 20–80-token user message,
 *    output 32–128 tokens. The assistant turns in the history are synthetic text of
 *    the length that turn asked for (the workload never depends on server output), so
 *    each turn's prompt is a byte prefix of the next turn's (in open loop a turn may be
 *    sent before the previous one has finished).
 *  - mixed-lengths: one user message of log-uniform 32–2,000 tokens, output 16–256.
 *  - long-prompt: a 1,400–1,600-token document plus a question, output 16–32. */
#include "bench/bench.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_TENANTS 4
#define SYSTEM_TOKENS 300
#define OPEN_CONVS 8
#define MAX_TURNS 6

static const char *const WORDS[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on",
    "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they",
    "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more",
    "when", "will", "would", "who", "so", "no", "time", "people", "year", "way", "day", "man", "thing",
    "woman", "life", "child", "world", "school", "state", "family", "student", "group", "country",
    "problem", "hand", "part", "place", "case", "week", "company", "system", "program", "question",
    "work", "government", "number", "night", "point", "home", "water", "room", "mother", "area",
    "money", "story", "fact", "month", "lot", "right", "study", "book", "eye", "job", "word",
    "business", "issue", "side", "kind", "head", "house", "service", "friend", "father", "power",
    "hour", "game", "line", "end", "member", "law", "car", "city", "community", "name", "president",
    "team", "minute", "idea", "kid", "body", "information", "back", "parent", "face", "others",
    "level", "office", "door", "health", "person", "art", "war", "history", "party", "result",
    "change", "morning", "reason", "research", "girl", "guy", "moment", "air", "teacher", "force",
    "education", "foot", "boy", "age", "policy", "music", "market", "sense", "nation", "plan",
    "college", "interest", "death", "experience", "effect", "class", "control", "care", "field",
    "development", "role", "effort", "rate", "heart", "drug", "show", "leader", "light", "voice",
    "wife", "police", "mind", "price", "report", "decision", "son", "view", "relationship", "town",
    "road", "arm", "difference", "value", "building", "action", "model", "season", "society", "tax",
    "director", "position", "player", "record", "paper", "space", "ground", "form", "event",
    "official", "matter", "center", "couple", "site", "project", "activity", "star", "table", "need",
    "court", "oil", "situation", "cost", "industry", "figure", "street", "image", "phone", "data",
    "picture", "practice", "piece", "land", "product", "doctor", "wall", "patient", "worker", "news",
    "test", "movie", "north", "love", "support", "technology", "step", "baby", "computer", "type",
    "attention", "film", "tree", "source", "organization", "hair", "window", "evidence", "population",
    "quickly", "carefully", "measure", "describe", "consider", "remember", "available", "important",
    "different", "possible", "economic", "political", "physical", "environmental", "significant",
};
#define N_WORDS ((int)(sizeof WORDS / sizeof WORDS[0]))

typedef struct conv {
    int id, tenant, n_turns, next_turn;  /* next_turn: 0-based index of the next user turn */
    char *user[MAX_TURNS];      /* (n_turns) user messages */
    char *assistant[MAX_TURNS]; /* (n_turns) synthetic replies */
    int out_len[MAX_TURNS];     /* (n_turns) max_tokens of each turn */
} conv;

struct bench_workload {
    int kind;
    bench_rng rng;
    char *system[N_TENANTS];    /* chat-shared-prefix: per-tenant system prompts */
    conv *convs;                /* (n_convs) every conversation started so far */
    int n_convs, convs_cap;
    int open[OPEN_CONVS];       /* indices into convs of the open conversations, -1 = none */
    bench_request **reqs;       /* (n_reqs) generated so far, each allocated alone */
    int n_reqs, reqs_cap;
};

static const char *const KIND_NAMES[] = {"chat-shared-prefix", "mixed-lengths", "long-prompt"};

int bench_workload_kind_parse(const char *name, int *kind) {
    for (int k = 0; k < 3; k++)
        if (name && !strcmp(name, KIND_NAMES[k])) { *kind = k; return SW_OK; }
    return SW_ERR_NOTFOUND;
}

const char *bench_workload_kind_name(int kind) { return kind >= 0 && kind < 3 ? KIND_NAMES[kind] : "?"; }

int bench_count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        if (!sp && !in) n++;
        in = !sp;
    }
    return n;
}

/* `lead` (may be NULL) followed by n_words random words in sentences of 6–16 words. */
static char *make_text(bench_rng *r, const char *lead, int n_words) {
    size_t cap = (lead ? strlen(lead) : 0) + (size_t)n_words * 16 + 4, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    if (lead) len += (size_t)sprintf(s, "%s", lead);
    int left_in_sentence = 0;
    for (int i = 0; i < n_words; i++) {
        const char *w = WORDS[bench_rng_next(r) % N_WORDS];
        if (len) s[len++] = ' ';
        int start = left_in_sentence == 0;
        if (start) left_in_sentence = bench_rng_range(r, 6, 16);
        size_t wl = strlen(w);
        memcpy(s + len, w, wl);
        if (start) s[len] = (char)(s[len] - 'a' + 'A');
        len += wl;
        if (--left_in_sentence == 0 || i == n_words - 1) { s[len++] = '.'; left_in_sentence = 0; }
    }
    s[len] = 0;
    return s;
}

static int words_for(int tokens) { int w = (int)lround(tokens * BENCH_WORDS_PER_TOKEN); return w < 1 ? 1 : w; }

int bench_workload_create(int kind, uint64_t seed, bench_workload **out, sw_err *err) {
    *out = NULL;
    if (kind < 0 || kind > 2) return sw_err_set(err, SW_ERR_ARG, "unknown workload %d", kind);
    bench_workload *w = calloc(1, sizeof *w);
    if (!w) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    w->kind = kind;
    bench_rng_seed(&w->rng, seed);
    for (int i = 0; i < OPEN_CONVS; i++) w->open[i] = -1;
    if (kind == BENCH_WL_CHAT_SHARED_PREFIX) {
        for (int t = 0; t < N_TENANTS; t++) {
            char lead[160];
            snprintf(lead, sizeof lead, "You are the assistant of tenant-%d. Follow the house rules below.", t);
            int lead_words = bench_count_words(lead);
            w->system[t] = make_text(&w->rng, lead, words_for(SYSTEM_TOKENS) - lead_words);
            if (!w->system[t]) { bench_workload_destroy(w); return sw_err_set(err, SW_ERR_NOMEM, "out of memory"); }
        }
    }
    *out = w;
    return SW_OK;
}

static void request_free(bench_request *rq) {
    for (int m = 0; m < rq->n_msgs; m++) free(rq->msgs[m].content);
    free(rq->msgs);
}

void bench_workload_destroy(bench_workload *w) {
    if (!w) return;
    for (int t = 0; t < N_TENANTS; t++) free(w->system[t]);
    for (int c = 0; c < w->n_convs; c++)
        for (int k = 0; k < w->convs[c].n_turns; k++) { free(w->convs[c].user[k]); free(w->convs[c].assistant[k]); }
    free(w->convs);
    for (int i = 0; i < w->n_reqs; i++) { request_free(w->reqs[i]); free(w->reqs[i]); }
    free(w->reqs);
    free(w);
}

/* Starts a new conversation (all its turns drawn now) and returns its index, or -1. */
static int conv_new(bench_workload *w) {
    if (w->n_convs == w->convs_cap) {
        int nc = w->convs_cap ? w->convs_cap * 2 : 16;
        conv *n = realloc(w->convs, (size_t)nc * sizeof *n);
        if (!n) return -1;
        w->convs = n;
        w->convs_cap = nc;
    }
    conv *c = &w->convs[w->n_convs];
    memset(c, 0, sizeof *c);
    c->id = w->n_convs;
    c->tenant = bench_rng_range(&w->rng, 0, N_TENANTS - 1);
    c->n_turns = bench_rng_range(&w->rng, 2, MAX_TURNS);
    w->n_convs++; /* counted now so destroy frees whatever was made */
    for (int k = 0; k < c->n_turns; k++) {
        c->out_len[k] = bench_rng_range(&w->rng, 32, 128);
        c->user[k] = make_text(&w->rng, NULL, words_for(bench_rng_range(&w->rng, 20, 80)));
        c->assistant[k] = make_text(&w->rng, NULL, words_for(c->out_len[k]));
        if (!c->user[k] || !c->assistant[k]) return -1;
    }
    return c->id;
}

static int set_msg(bench_msg *m, const char *role, const char *content) {
    m->role = role;
    m->content = strdup(content);
    return m->content ? 0 : -1;
}

static int gen_chat(bench_workload *w, bench_request *rq) {
    int slot = bench_rng_range(&w->rng, 0, OPEN_CONVS - 1);
    if (w->open[slot] < 0 || w->convs[w->open[slot]].next_turn >= w->convs[w->open[slot]].n_turns) {
        w->open[slot] = conv_new(w);
        if (w->open[slot] < 0) return -1;
    }
    conv *c = &w->convs[w->open[slot]];
    int t = c->next_turn++;
    rq->n_msgs = 1 + 2 * t + 1;
    rq->msgs = calloc((size_t)rq->n_msgs, sizeof *rq->msgs);
    if (!rq->msgs) { rq->n_msgs = 0; return -1; }
    if (set_msg(&rq->msgs[0], "system", w->system[c->tenant])) return -1;
    for (int k = 0; k < t; k++)
        if (set_msg(&rq->msgs[1 + 2 * k], "user", c->user[k]) || set_msg(&rq->msgs[2 + 2 * k], "assistant", c->assistant[k]))
            return -1;
    if (set_msg(&rq->msgs[rq->n_msgs - 1], "user", c->user[t])) return -1;
    rq->max_tokens = c->out_len[t];
    snprintf(rq->user, sizeof rq->user, "tenant-%d", c->tenant);
    rq->conv_id = c->id;
    rq->turn = t + 1;
    return 0;
}

static int gen_single(bench_workload *w, bench_request *rq) {
    int prompt_tokens, n_out;
    const char *tail = NULL;
    if (w->kind == BENCH_WL_MIXED_LENGTHS) {
        double u = bench_rng_uniform(&w->rng);
        prompt_tokens = (int)lround(exp(log(32.0) + u * (log(2000.0) - log(32.0))));
        n_out = bench_rng_range(&w->rng, 16, 256);
    } else {
        prompt_tokens = bench_rng_range(&w->rng, 1400, 1600);
        n_out = bench_rng_range(&w->rng, 16, 32);
        tail = "\n\nQuestion: what is the main topic of the document above? Answer briefly.";
    }
    int tail_words = tail ? bench_count_words(tail) : 0;
    char *text = make_text(&w->rng, NULL, words_for(prompt_tokens) - tail_words);
    if (!text) return -1;
    if (tail) {
        char *t2 = malloc(strlen(text) + strlen(tail) + 1);
        if (!t2) { free(text); return -1; }
        strcpy(t2, text);
        strcat(t2, tail);
        free(text);
        text = t2;
    }
    rq->msgs = calloc(1, sizeof *rq->msgs);
    if (!rq->msgs) { free(text); return -1; }
    rq->n_msgs = 1;
    rq->msgs[0].role = "user";
    rq->msgs[0].content = text;
    rq->max_tokens = n_out;
    rq->conv_id = rq->turn = -1;
    return 0;
}

int bench_workload_get(bench_workload *w, int i, const bench_request **out, sw_err *err) {
    if (i < 0 || i > (1 << 24)) return sw_err_set(err, SW_ERR_RANGE, "request index %d out of range", i);
    while (w->n_reqs <= i) {
        if (w->n_reqs == w->reqs_cap) {
            int nc = w->reqs_cap ? w->reqs_cap * 2 : 64;
            bench_request **n = realloc(w->reqs, (size_t)nc * sizeof *n);
            if (!n) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
            w->reqs = n;
            w->reqs_cap = nc;
        }
        bench_request *rq = calloc(1, sizeof *rq);
        if (!rq) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        w->reqs[w->n_reqs++] = rq; /* counted first so destroy frees a half-built request */
        int rc = w->kind == BENCH_WL_CHAT_SHARED_PREFIX ? gen_chat(w, rq) : gen_single(w, rq);
        if (rc) return sw_err_set(err, SW_ERR_NOMEM, "out of memory generating request %d", w->n_reqs - 1);
        int words = 0;
        for (int m = 0; m < rq->n_msgs; m++) words += bench_count_words(rq->msgs[m].content);
        rq->approx_prompt_tokens = (int)lround(words / BENCH_WORDS_PER_TOKEN);
    }
    *out = w->reqs[i];
    return SW_OK;
}

char *bench_request_prompt(const bench_request *rq) {
    if (rq->n_msgs == 1 && !strcmp(rq->msgs[0].role, "user")) return strdup(rq->msgs[0].content);
    size_t cap = 32;
    for (int m = 0; m < rq->n_msgs; m++) cap += strlen(rq->msgs[m].content) + 16;
    char *s = malloc(cap), *p = s;
    if (!s) return NULL;
    for (int m = 0; m < rq->n_msgs; m++) {
        const char *role = rq->msgs[m].role;
        const char *label = !strcmp(role, "system") ? "System" : !strcmp(role, "assistant") ? "Assistant" : "User";
        p += sprintf(p, "%s: %s\n\n", label, rq->msgs[m].content);
    }
    strcpy(p, "Assistant:");
    return s;
}
