/* bench_workload.c — the built-in workloads: deterministic per seed, the promised
 * length distributions (in the word-based token estimate, BENCH_WORDS_PER_TOKEN), and for
 * chat-shared-prefix: byte-identical per-tenant system prompts of ~300 tokens, `user`
 * set to the tenant, and conversations whose every turn's prompt is a byte prefix of
 * the next turn's (so prefix caches can hit). */
#include "bench/bench.h"
#include "t.h"

static int same_request(const bench_request *a, const bench_request *b) {
    if (a->n_msgs != b->n_msgs || a->max_tokens != b->max_tokens || strcmp(a->user, b->user)) return 0;
    for (int m = 0; m < a->n_msgs; m++)
        if (strcmp(a->msgs[m].role, b->msgs[m].role) || strcmp(a->msgs[m].content, b->msgs[m].content)) return 0;
    return 1;
}

static void test_determinism(void) {
    for (int kind = 0; kind < 3; kind++) {
        bench_workload *a, *b, *c;
        sw_err err;
        T_OK(bench_workload_create(kind, 5, &a, &err) == 0);
        T_OK(bench_workload_create(kind, 5, &b, &err) == 0);
        T_OK(bench_workload_create(kind, 6, &c, &err) == 0);
        int same = 1, differ = 0;
        /* b is asked out of order (a later index first) — generation is still sequential */
        const bench_request *rb;
        T_OK(bench_workload_get(b, 39, &rb, &err) == 0);
        for (int i = 0; i < 40; i++) {
            const bench_request *ra, *rc;
            bench_workload_get(a, i, &ra, &err);
            bench_workload_get(b, i, &rb, &err);
            bench_workload_get(c, i, &rc, &err);
            same &= same_request(ra, rb);
            differ += !same_request(ra, rc);
        }
        T_CHECK(same, "%s: same seed, same requests", bench_workload_kind_name(kind));
        T_CHECK(differ >= 30, "%s: another seed gives other requests (%d of 40 differ)", bench_workload_kind_name(kind), differ);
        T_CHECK(bench_workload_get(a, -1, &rb, &err) == SW_ERR_RANGE, "negative index refused");
        bench_workload_destroy(a);
        bench_workload_destroy(b);
        bench_workload_destroy(c);
    }
    int k;
    T_OK(bench_workload_kind_parse("long-prompt", &k) == 0 && k == BENCH_WL_LONG_PROMPT);
    T_OK(bench_workload_kind_parse("nope", &k) == SW_ERR_NOTFOUND);
}

static int approx_tokens(const char *s) { return (int)(bench_count_words(s) / BENCH_WORDS_PER_TOKEN + 0.5); }

static void test_chat_shared_prefix(void) {
    bench_workload *w;
    sw_err err;
    T_OK(bench_workload_create(BENCH_WL_CHAT_SHARED_PREFIX, 11, &w, &err) == 0);
    enum { N = 300, MAXC = 400 };
    const char *sys_of[8] = {0};
    char *last_prompt[MAXC] = {0};
    int last_turn[MAXC] = {0};
    int tenants = 0, prefix_ok = 1, sys_ok = 1, turn_ok = 1, out_ok = 1, multi = 0, grows = 1;
    for (int i = 0; i < N; i++) {
        const bench_request *rq;
        T_OK(bench_workload_get(w, i, &rq, &err) == 0);
        int t = -1;
        if (sscanf(rq->user, "tenant-%d", &t) != 1 || t < 0 || t >= 8) { sys_ok = 0; continue; }
        if (strcmp(rq->msgs[0].role, "system")) sys_ok = 0;
        if (!sys_of[t]) {
            sys_of[t] = rq->msgs[0].content;
            tenants++;
            int st = approx_tokens(sys_of[t]);
            T_CHECK(st >= 280 && st <= 320, "system prompt ~300 tokens (%d)", st);
            for (int u = 0; u < 8; u++)
                if (u != t && sys_of[u]) T_CHECK(strcmp(sys_of[u], sys_of[t]), "tenants %d and %d differ", u, t);
        } else if (strcmp(sys_of[t], rq->msgs[0].content)) {
            sys_ok = 0;
        }
        if (rq->n_msgs != 2 * rq->turn || strcmp(rq->msgs[rq->n_msgs - 1].role, "user") || rq->turn < 1 || rq->turn > 6) turn_ok = 0;
        if (rq->max_tokens < 32 || rq->max_tokens > 128) out_ok = 0;
        if (rq->conv_id < 0 || rq->conv_id >= MAXC) { turn_ok = 0; continue; }
        char *p = bench_request_prompt(rq);
        int c = rq->conv_id;
        if (last_prompt[c]) {
            multi++;
            if (rq->turn != last_turn[c] + 1) turn_ok = 0;
            if (strncmp(p, last_prompt[c], strlen(last_prompt[c]))) prefix_ok = 0;
            if (strlen(p) <= strlen(last_prompt[c])) grows = 0;
        } else if (rq->turn != 1) {
            turn_ok = 0;
        }
        T_CHECK(!strncmp(p, "System: ", 8) && !strncmp(p + 8, sys_of[t], strlen(sys_of[t])), "completions form starts with the system prompt");
        free(last_prompt[c]);
        last_prompt[c] = p;
        last_turn[c] = rq->turn;
    }
    T_EQ_INT(tenants, 4);
    T_OK(sys_ok);
    T_OK(turn_ok);
    T_OK(out_ok);
    T_OK(prefix_ok);
    T_OK(grows);
    T_CHECK(multi > N / 2, "most requests continue a conversation (%d)", multi);
    for (int c = 0; c < MAXC; c++) free(last_prompt[c]);
    bench_workload_destroy(w);
}

static void test_lengths(void) {
    bench_workload *w;
    sw_err err;
    T_OK(bench_workload_create(BENCH_WL_MIXED_LENGTHS, 3, &w, &err) == 0);
    int n = 600, mn = 1 << 30, mx = 0, omn = 1 << 30, omx = 0, below300 = 0, range_ok = 1;
    for (int i = 0; i < n; i++) {
        const bench_request *rq;
        bench_workload_get(w, i, &rq, &err);
        int t = approx_tokens(rq->msgs[0].content);
        if (t != rq->approx_prompt_tokens || rq->n_msgs != 1 || rq->user[0]) range_ok = 0;
        if (t < 28 || t > 2010 || rq->max_tokens < 16 || rq->max_tokens > 256) range_ok = 0;
        if (t < mn) mn = t;
        if (t > mx) mx = t;
        if (rq->max_tokens < omn) omn = rq->max_tokens;
        if (rq->max_tokens > omx) omx = rq->max_tokens;
        below300 += t < 253; /* log-uniform on [32, 2000]: median sqrt(32*2000) = 253 */
    }
    T_OK(range_ok);
    T_CHECK(mn < 45 && mx > 1700, "prompt lengths span tens to ~2000 tokens: %d..%d", mn, mx);
    T_CHECK(omn <= 20 && omx >= 250, "outputs span 16..256: %d..%d", omn, omx);
    T_CHECK(below300 > n * 0.42 && below300 < n * 0.58, "log-uniform median: %d of %d below 253", below300, n);
    char *p;
    const bench_request *rq;
    bench_workload_get(w, 0, &rq, &err);
    p = bench_request_prompt(rq);
    T_CHECK(p && !strcmp(p, rq->msgs[0].content), "a single user message is the prompt as is");
    free(p);
    bench_workload_destroy(w);

    T_OK(bench_workload_create(BENCH_WL_LONG_PROMPT, 3, &w, &err) == 0);
    int ok = 1, distinct = 1;
    const char *prev = NULL;
    for (int i = 0; i < 100; i++) {
        bench_workload_get(w, i, &rq, &err);
        int t = approx_tokens(rq->msgs[0].content);
        if (t < 1390 || t > 1610 || rq->max_tokens < 16 || rq->max_tokens > 32) ok = 0;
        if (!strstr(rq->msgs[0].content, "Question:")) ok = 0;
        if (prev && !strncmp(prev, rq->msgs[0].content, 200)) distinct = 0;
        prev = rq->msgs[0].content;
    }
    T_OK(ok);
    T_OK(distinct);
    bench_workload_destroy(w);
}

int main(void) {
    test_determinism();
    test_chat_shared_prefix();
    test_lengths();
    return t_done();
}
