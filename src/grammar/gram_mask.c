/* gram_mask.c — token masks. The tokens a stack accepts next are found by walking the
 * vocabulary trie with the parser, dropping a subtree at its first rejected byte. To make
 * that cheap per step, the walk is done against the top L frames of the stack only, with
 * an unknown bottom (GRAM_SENT), and cached in the grammar under those L states (the
 * XGrammar idea of context-independent tokens, applied level by level):
 *   - a token the top frames consume completely is accepted whatever lies below;
 *   - a token that dies inside them without reaching the bottom is rejected;
 *   - a token that pops past the bottom with bytes left is "uncertain": the next level
 *     (L+1 frames) re-walks only those.
 * Level 1 (the item's own state) walks the whole trie once per state; the deeper levels
 * walk short lists (the tokens that leave a rule, e.g. `",` `"}` after a string), and
 * when L reaches the real bottom of the stack the walk is exact. A mask is then the OR of
 * a few cached bitmaps / id lists. Entries are immutable once inserted; lookups take the
 * grammar's mutex; builds run outside it on the caller's walker (scratch pool).
 * An entry depends only on the automata of its frames' rules (and the rules they call),
 * so entries of up to GRAM_MAX_KEY frames are also kept per vocabulary under a 128-bit
 * hash of that content (gram_shared): the JSON string, number and value rules, formats,
 * an agent's recurring tool schemas ... are walked once per process, not once per grammar.
 * A level-1 walk from a state that treats every character of a class alike (JSON string
 * content and maxLength counters; e-mail, URI and hostname runs of letters and digits)
 * does not walk the tokens made only of such characters (~145k of 150k for strings):
 * they are classified by character count (the vocabulary's slices), and the trie of the
 * others is walked. Walks memoize their byte transitions (a lazy DFA per build), and a
 * list walk skips at once every token that extends a prefix that died. */
#include "grammar/gram_internal.h"
#include <xxhash.h>

#define GRAM_MAX_LEVEL 32                /* deeper stacks resolve exactly, uncached */
#define GRAM_MAX_KEY GRAM_MAX_LEVEL      /* entries of up to this many frames are shared per vocabulary */
#define GRAM_CACHE_BYTES (512u << 20)    /* per grammar; past it entries are not kept */
#define GRAM_SHARED_BYTES (1024u << 20)  /* per vocabulary */

typedef struct mentry {
    struct mentry *next;                 /* hash chain */
    uint32_t hash;
    int L; bool root;                    /* key: top L states; bottom is the real root */
    int32_t *states;                     /* (L) top first */
    uint32_t *bits;                      /* (n_words) accepted ids, or NULL when sparse */
    int32_t *acc; int n_acc;             /* accepted ids when sparse */
    int32_t *unc; int n_unc;             /* uncertain tokens, as sorted-vocab indices, ascending */
    size_t bytes;
    bool borrowed;                       /* bits/acc/unc belong to the vocabulary's shared store */
} mentry;

struct gram_mask_cache {
    pthread_mutex_t mu;
    mentry **b; uint32_t mask;           /* buckets */
    int n;
    size_t bytes;
    uint64_t (*rule_hash)[2];            /* (n_rules) content hash of each rule's sub-grammar */
    uint8_t *hashed;                     /* (n_rules) rule_hash valid */
    uint64_t (*local_h)[2];              /* (n_rules) hash of the rule's own automaton */
    int **callees; int *n_callees;       /* (n_rules) its distinct callees; NULL = not computed */
    int n_rules;
};

typedef struct sentry { struct sentry *next; uint64_t h0, h1; int32_t local; mentry *e; } sentry;
struct gram_shared {
    pthread_mutex_t mu;
    sentry **b; uint32_t mask;
    int n;
    size_t bytes;
};

/* A build's parse sets are interned and their byte transitions memoized (a lazily built
 * DFA over the build's sets): most trie nodes are one table look-up, not a closure. The
 * first GRAM_DIRECT sets have a row of 256 next-set ids; later ones go through a hash
 * table. The hash tables are stamped with the build's generation, so starting a build
 * clears them. */
#define GRAM_DIRECT 1024
typedef struct sslot { uint32_t gen; int32_t id; } sslot;
typedef struct tslot { uint32_t gen, key; int32_t to; } tslot;

struct gram_walker {
    gram_pool pool;
    int cap;                             /* depths: the longest token + 2 */
    int32_t *dv; uint8_t *sb;            /* per depth: set id, sent-before */
    gram_set start, tmp;                 /* the build's start set; scratch */
    gram_ilist acc, unc;
    int32_t *chain; int cap_chain;
    gram_set cx[4];                      /* string slice: current, next, two scratch */
    uint8_t *cacc, *csent, *csb;         /* (slice max+1) per character count: acc, sent, sent before */
    uint32_t gen;                        /* current build */
    int n_sets, cap_sets;
    int32_t *soff;                       /* (cap_sets+1) items of set i: sit[soff[i]..soff[i+1]) */
    uint8_t *sfl;                        /* (cap_sets) 1 = acc, 2 = sent */
    int32_t *sit; int n_sit, cap_sit;
    sslot *sht; uint32_t sht_mask;       /* set content -> id */
    tslot *tht; uint32_t tht_mask; int n_tr; /* (id << 8 | byte) -> id, for ids >= GRAM_DIRECT */
    int32_t *rows; int cap_rows;         /* (cap_rows * 256) next set of set id < GRAM_DIRECT, -1 unknown */
};

gram_mask_cache *gram_mask_cache_create(int n_rules) {
    gram_mask_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->mask = 1023;
    c->b = calloc(c->mask + 1, sizeof(mentry *));
    c->rule_hash = calloc((size_t)n_rules + 1, sizeof *c->rule_hash);
    c->hashed = calloc((size_t)n_rules + 1, 1);
    c->local_h = calloc((size_t)n_rules + 1, sizeof *c->local_h);
    c->callees = calloc((size_t)n_rules + 1, sizeof *c->callees);
    c->n_callees = calloc((size_t)n_rules + 1, sizeof(int));
    c->n_rules = n_rules;
    if (!c->b || !c->rule_hash || !c->hashed || !c->local_h || !c->callees || !c->n_callees) {
        free(c->b); free(c->rule_hash); free(c->hashed); free(c->local_h); free(c->callees); free(c->n_callees); free(c);
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

static void entry_free(mentry *e) {
    if (!e) return;
    if (!e->borrowed) { free(e->bits); free(e->acc); free(e->unc); }
    free(e->states);
    free(e);
}

void gram_mask_cache_free(gram_mask_cache *c) {
    if (!c) return;
    for (uint32_t i = 0; i <= c->mask; i++)
        for (mentry *e = c->b[i], *n; e; e = n) { n = e->next; entry_free(e); }
    free(c->b);
    free(c->rule_hash);
    free(c->hashed);
    for (int i = 0; i < c->n_rules; i++) free(c->callees[i]);
    free(c->callees);
    free(c->n_callees);
    free(c->local_h);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

struct gram_shared *gram_shared_create(void) {
    struct gram_shared *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->mask = 1023;
    if (!(s->b = calloc(s->mask + 1, sizeof(sentry *)))) { free(s); return NULL; }
    pthread_mutex_init(&s->mu, NULL);
    return s;
}

void gram_shared_free(struct gram_shared *s) {
    if (!s) return;
    for (uint32_t i = 0; i <= s->mask; i++)
        for (sentry *x = s->b[i], *n; x; x = n) { n = x->next; entry_free(x->e); free(x); }
    free(s->b);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

typedef struct hbuf { uint8_t *p; size_t n, cap; bool oom; } hbuf;
static void hput(hbuf *b, const void *x, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 4096;
        while (nc < b->n + n) nc *= 2;
        uint8_t *q = realloc(b->p, nc);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = nc;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}

/* Hash of rule q's own automaton (states relative to the rule; each call names the
 * callee by its rank among q's distinct callees, in order of first appearance). */
static int local_hash(const gram_grammar *g, int q, uint64_t out[2], int **callees, int *n_callees) {
    hbuf b = {0};
    int s0 = g->rule_start[q], s1 = g->rule_start[q + 1], nc = 0, cap = 0;
    int *cl = NULL;
    int32_t ns = s1 - s0;
    hput(&b, &ns, 4);
    for (int st = s0; st < s1; st++) {
        int32_t hdr[3] = {g->final[st], g->be_lo[st + 1] - g->be_lo[st], g->re_lo[st + 1] - g->re_lo[st]};
        hput(&b, hdr, sizeof hdr);
        for (int e = g->be_lo[st]; e < g->be_lo[st + 1]; e++) {
            int32_t to = g->be_to[e] - s0;
            hput(&b, &g->be_set[e], sizeof(gram_bset));
            hput(&b, &to, 4);
        }
        for (int e = g->re_lo[st]; e < g->re_lo[st + 1]; e++) {
            int callee = g->state_rule[g->re_start[e]], k = 0;
            while (k < nc && cl[k] != callee) k++;
            if (k == nc) {
                if (nc == cap) {
                    cap = cap ? cap * 2 : 8;
                    int *q2 = realloc(cl, (size_t)cap * sizeof(int));
                    if (!q2) { free(cl); free(b.p); return SW_ERR_NOMEM; }
                    cl = q2;
                }
                cl[nc++] = callee;
            }
            int32_t x[3] = {k, g->re_to[e] - s0, g->re_tail[e]};
            hput(&b, x, sizeof x);
        }
    }
    if (b.oom) { free(cl); free(b.p); return SW_ERR_NOMEM; }
    XXH128_hash_t h = XXH3_128bits(b.p, b.n);
    free(b.p);
    out[0] = h.low64;
    out[1] = h.high64;
    *callees = cl;
    *n_callees = nc;
    return SW_OK;
}

/* 128-bit hash of rule r's automaton and those of every rule it can call: the local
 * hashes of the reachable rules in discovery order, each followed by its callees'
 * discovery indices (equal for isomorphic sub-grammars of different grammars). */
static int rule_content_hash(const gram_grammar *g, int r, uint64_t out[2]) {
    gram_mask_cache *c = g->mc;
    int *idx = malloc((size_t)g->n_rules * sizeof(int)), *order = malloc((size_t)g->n_rules * sizeof(int));
    hbuf b = {0};
    int rc = SW_OK;
    if (!idx || !order) { free(idx); free(order); return SW_ERR_NOMEM; }
    for (int i = 0; i < g->n_rules; i++) idx[i] = -1;
    int n = 0;
    idx[r] = n;
    order[n++] = r;
    for (int k = 0; k < n && rc == SW_OK; k++) {
        uint64_t lh[2];
        int *cl = NULL, nc = 0, q = order[k];
        pthread_mutex_lock(&c->mu);
        bool have = c->callees[q] != NULL || c->n_callees[q] < 0;
        if (have) { lh[0] = c->local_h[q][0]; lh[1] = c->local_h[q][1]; cl = c->callees[q]; nc = c->n_callees[q] < 0 ? 0 : c->n_callees[q]; }
        pthread_mutex_unlock(&c->mu);
        if (!have) { /* computed once per rule; a rule without callees is marked by n = -1 */
            if ((rc = local_hash(g, q, lh, &cl, &nc)) != SW_OK) break;
            pthread_mutex_lock(&c->mu);
            if (c->callees[q] || c->n_callees[q] < 0) { free(cl); cl = c->callees[q]; }
            else { c->local_h[q][0] = lh[0]; c->local_h[q][1] = lh[1]; c->callees[q] = cl; c->n_callees[q] = cl ? nc : -1; }
            pthread_mutex_unlock(&c->mu);
        }
        hput(&b, lh, sizeof lh);
        for (int j = 0; j < nc; j++) {
            if (idx[cl[j]] < 0) { idx[cl[j]] = n; order[n++] = cl[j]; }
            int32_t x = idx[cl[j]];
            hput(&b, &x, 4);
        }
    }
    free(idx);
    free(order);
    if (rc == SW_OK && b.oom) rc = SW_ERR_NOMEM;
    if (rc != SW_OK) { free(b.p); return rc; }
    XXH128_hash_t h = XXH3_128bits(b.p, b.n);
    free(b.p);
    out[0] = h.low64;
    out[1] = h.high64;
    return SW_OK;
}

static uint32_t key_hash(const int32_t *st, int L, bool root) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)L * 31 ^ (root ? 0x5555 : 0);
    for (int i = 0; i < L; i++) { h ^= (uint32_t)st[i]; h *= 0xBF58476D1CE4E5B9ull; h ^= h >> 31; }
    return (uint32_t)h;
}

static mentry *lookup(gram_mask_cache *c, const int32_t *st, int L, bool root, uint32_t h) {
    for (mentry *e = c->b[h & c->mask]; e; e = e->next)
        if (e->hash == h && e->L == L && e->root == root && !memcmp(e->states, st, (size_t)L * sizeof(int32_t))) return e;
    return NULL;
}

/* Inserts e unless an equal key is there (returns that one, freeing e) or the cache is
 * full (returns e with *owned = true: the caller frees it after use). */
static mentry *insert(gram_mask_cache *c, mentry *e, bool *owned) {
    pthread_mutex_lock(&c->mu);
    mentry *x = lookup(c, e->states, e->L, e->root, e->hash);
    if (x) {
        pthread_mutex_unlock(&c->mu);
        entry_free(e);
        *owned = false;
        return x;
    }
    if (c->bytes + e->bytes > GRAM_CACHE_BYTES) {
        pthread_mutex_unlock(&c->mu);
        *owned = true;
        return e;
    }
    if ((uint32_t)c->n > c->mask) { /* grow the table 4x */
        uint32_t nm = c->mask * 4 + 3;
        mentry **nb = calloc((size_t)nm + 1, sizeof(mentry *));
        if (nb) {
            for (uint32_t i = 0; i <= c->mask; i++)
                for (mentry *y = c->b[i], *n; y; y = n) { n = y->next; y->next = nb[y->hash & nm]; nb[y->hash & nm] = y; }
            free(c->b);
            c->b = nb;
            c->mask = nm;
        }
    }
    e->next = c->b[e->hash & c->mask];
    c->b[e->hash & c->mask] = e;
    c->n++;
    c->bytes += e->bytes;
    pthread_mutex_unlock(&c->mu);
    *owned = false;
    return e;
}

int gram_walker_create(const gram_grammar *g, gram_walker **out) {
    gram_walker *w = calloc(1, sizeof *w);
    if (!w) return SW_ERR_NOMEM;
    w->cap = g->v->max_len + 2;
    w->dv = calloc((size_t)w->cap, sizeof(int32_t));
    w->sb = calloc((size_t)w->cap, 1);
    size_t nc = 2;
    for (int k = 0; k < GRAM_N_SLICES; k++)
        if ((size_t)g->v->slice[k].max + 2 > nc) nc = (size_t)g->v->slice[k].max + 2;
    w->cacc = malloc(nc);
    w->csent = malloc(nc);
    w->csb = malloc(nc);
    w->sht_mask = w->tht_mask = 4095;
    w->sht = calloc((size_t)w->sht_mask + 1, sizeof(sslot));
    w->tht = calloc((size_t)w->tht_mask + 1, sizeof(tslot));
    w->soff = calloc(1, sizeof(int32_t));
    if (!w->dv || !w->sb || !w->cacc || !w->csent || !w->csb || !w->sht || !w->tht || !w->soff ||
        gram_pool_init(&w->pool) != SW_OK) {
        gram_walker_destroy(w);
        return SW_ERR_NOMEM;
    }
    *out = w;
    return SW_OK;
}

void gram_walker_destroy(gram_walker *w) {
    if (!w) return;
    free(w->dv); free(w->sb); free(w->acc.v); free(w->unc.v); free(w->chain);
    gram_set_free(&w->start);
    gram_set_free(&w->tmp);
    for (int i = 0; i < 4; i++) gram_set_free(&w->cx[i]);
    free(w->cacc); free(w->csent); free(w->csb);
    free(w->soff); free(w->sfl); free(w->sit); free(w->sht); free(w->tht); free(w->rows);
    gram_pool_free(&w->pool);
    free(w);
}

static uint32_t set_hash(const int32_t *it, int n, int fl) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)fl;
    for (int i = 0; i < n; i++) h = (h ^ (uint32_t)it[i]) * 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h ^ h >> 29);
}

/* Doubles a generation-stamped table, keeping this build's entries. */
static int grow_sets(gram_walker *w) {
    uint32_t nm = w->sht_mask * 2 + 1;
    sslot *t = calloc((size_t)nm + 1, sizeof *t);
    if (!t) return SW_ERR_NOMEM;
    for (uint32_t i = 0; i <= w->sht_mask; i++) {
        if (w->sht[i].gen != w->gen) continue;
        int32_t id = w->sht[i].id;
        uint32_t h = set_hash(w->sit + w->soff[id], w->soff[id + 1] - w->soff[id], w->sfl[id]) & nm;
        while (t[h].gen == w->gen) h = (h + 1) & nm;
        t[h] = w->sht[i];
    }
    free(w->sht);
    w->sht = t;
    w->sht_mask = nm;
    return SW_OK;
}

static int grow_trans(gram_walker *w) {
    uint32_t nm = w->tht_mask * 2 + 1;
    tslot *t = calloc((size_t)nm + 1, sizeof *t);
    if (!t) return SW_ERR_NOMEM;
    for (uint32_t i = 0; i <= w->tht_mask; i++) {
        if (w->tht[i].gen != w->gen) continue;
        uint32_t h = (w->tht[i].key * 0x9E3779B1u) & nm;
        while (t[h].gen == w->gen) h = (h + 1) & nm;
        t[h] = w->tht[i];
    }
    free(w->tht);
    w->tht = t;
    w->tht_mask = nm;
    return SW_OK;
}

/* The id of set s in this build (interned when new). */
static int intern(gram_walker *w, const gram_set *s, int32_t *id) {
    int fl = s->acc | s->sent << 1;
    uint32_t h = set_hash(s->items, s->n, fl) & w->sht_mask;
    for (; w->sht[h].gen == w->gen; h = (h + 1) & w->sht_mask) {
        int32_t x = w->sht[h].id;
        if (w->sfl[x] == fl && w->soff[x + 1] - w->soff[x] == s->n &&
            (s->n == 0 || !memcmp(w->sit + w->soff[x], s->items, (size_t)s->n * sizeof(int32_t)))) {
            *id = x;
            return SW_OK;
        }
    }
    if (w->n_sets >= (1 << 23)) return SW_ERR_NOMEM; /* ids are 23 bits in transition keys */
    if (w->n_sets == w->cap_sets) {
        int nc = w->cap_sets ? w->cap_sets * 2 : 256;
        int32_t *o = realloc(w->soff, ((size_t)nc + 1) * sizeof(int32_t));
        if (!o) return SW_ERR_NOMEM;
        w->soff = o;
        uint8_t *f = realloc(w->sfl, (size_t)nc);
        if (!f) return SW_ERR_NOMEM;
        w->sfl = f;
        w->cap_sets = nc;
    }
    if (w->n_sit + s->n > w->cap_sit) {
        int nc = w->cap_sit ? w->cap_sit * 2 : 1024;
        while (nc < w->n_sit + s->n) nc *= 2;
        int32_t *it = realloc(w->sit, (size_t)nc * sizeof(int32_t));
        if (!it) return SW_ERR_NOMEM;
        w->sit = it;
        w->cap_sit = nc;
    }
    if (w->n_sets < GRAM_DIRECT && w->n_sets == w->cap_rows) {
        int nc = w->cap_rows ? w->cap_rows * 2 : 64;
        int32_t *r = realloc(w->rows, (size_t)nc * 256 * sizeof(int32_t));
        if (!r) return SW_ERR_NOMEM;
        w->rows = r;
        w->cap_rows = nc;
    }
    if (w->n_sets < GRAM_DIRECT) memset(w->rows + (size_t)w->n_sets * 256, 0xff, 256 * sizeof(int32_t));
    int32_t x = w->n_sets++;
    if (s->n) memcpy(w->sit + w->n_sit, s->items, (size_t)s->n * sizeof(int32_t));
    w->n_sit += s->n;
    w->soff[x + 1] = w->n_sit;
    w->sfl[x] = (uint8_t)fl;
    w->sht[h] = (sslot){w->gen, x};
    *id = x;
    if ((uint32_t)w->n_sets * 2 > w->sht_mask) return grow_sets(w);
    return SW_OK;
}

/* Starts a build: empty tables, the pool cut to n_frames. */
static void dfa_reset(gram_walker *w, int n_frames) {
    gram_pool_truncate(&w->pool, n_frames);
    if (++w->gen == 0) { /* wrapped: clear the stamps */
        memset(w->sht, 0, ((size_t)w->sht_mask + 1) * sizeof(sslot));
        memset(w->tht, 0, ((size_t)w->tht_mask + 1) * sizeof(tslot));
        w->gen = 1;
    }
    w->n_sets = w->n_sit = w->n_tr = 0;
    w->soff[0] = 0;
}

static inline int set_n(const gram_walker *w, int32_t x) { return w->soff[x + 1] - w->soff[x]; }

/* *to = the set after byte b from set x. */
static int dfa_next(const gram_grammar *g, gram_walker *w, int32_t x, unsigned b, int32_t *to) {
    if (x < GRAM_DIRECT && (*to = w->rows[(size_t)x * 256 + b]) >= 0) return SW_OK;
    uint32_t key = (uint32_t)x << 8 | b, h = (key * 0x9E3779B1u) & w->tht_mask;
    if (x >= GRAM_DIRECT)
        for (; w->tht[h].gen == w->gen; h = (h + 1) & w->tht_mask)
            if (w->tht[h].key == key) { *to = w->tht[h].to; return SW_OK; }
    gram_set in = {w->sit + w->soff[x], set_n(w, x), 0, w->sfl[x] & 1, w->sfl[x] >> 1};
    int rc = gram_advance(g, &w->pool, &in, b, &w->tmp);
    if (rc == SW_OK) rc = intern(w, &w->tmp, to);
    if (rc != SW_OK) return rc;
    if (x < GRAM_DIRECT) { /* interning may have moved the rows */
        w->rows[(size_t)x * 256 + b] = *to;
        return SW_OK;
    }
    w->tht[h] = (tslot){w->gen, key, *to}; /* interning does not touch this table */
    if ((uint32_t)++w->n_tr * 2 > w->tht_mask) return grow_trans(w);
    return SW_OK;
}

/* dv[d] = dv[d-1] advanced by byte b. */
static int step(const gram_grammar *g, gram_walker *w, int d, unsigned b) {
    w->sb[d] = w->sb[d - 1] || (w->sfl[w->dv[d - 1]] & 2);
    return dfa_next(g, w, w->dv[d - 1], b, &w->dv[d]);
}

enum { C_REJ, C_ACC, C_UNC };

/* Pushes the tokens lo..hi of a trie's order (list[i], or i itself when list is NULL). */
static int push_range(gram_ilist *l, const int32_t *list, int lo, int hi) {
    for (int i = lo; i < hi; i++)
        if (gram_ilist_push(l, list ? list[i] : i) < 0) return SW_ERR_NOMEM;
    return SW_OK;
}

/* Classifies every token of a trie (the whole vocabulary's, or the string slice's rest:
 * list maps its token order to sorted indices). */
static int walk_trie(const gram_grammar *g, gram_walker *w, const gram_tnode *nodes, int n_nodes, const int32_t *list) {
    int rc = SW_OK;
    for (int n = 0; n < n_nodes && rc == SW_OK;) {
        const gram_tnode *nd = &nodes[n];
        int d = nd->depth;
        if ((rc = step(g, w, d, nd->byte)) != SW_OK) break;
        int32_t x = w->dv[d];
        bool live = set_n(w, x) > 0, sent = w->sfl[x] & 2;
        if (nd->tok_hi > nd->tok_lo) {
            if (live || w->sfl[x]) rc = push_range(&w->acc, list, nd->tok_lo, nd->tok_hi);
            else if (w->sb[d]) rc = push_range(&w->unc, list, nd->tok_lo, nd->tok_hi);
        }
        if (live) { n++; continue; }
        if (rc == SW_OK && (w->sb[d] || sent)) rc = push_range(&w->unc, list, nd->tok_hi, nd->sub_hi);
        n = nd->end;
    }
    return rc;
}

/* ---- string slice (gram_vocab.c): a slice token is whole characters of a JSON string's
 * unescaped content. When from a set every such character, whatever its bytes, leads to
 * one same next set (checked per UTF-8 byte range: each byte edge of each item takes all
 * of a range or none of it), a slice token's fate depends only on its character count:
 * the chain of sets after 0, 1, 2 ... characters decides it, and only the tokens outside
 * the slice are walked in the trie. ---- */
typedef struct brange { uint8_t lo, hi; } brange;
typedef struct cshape { int n; brange b[4]; } cshape;  /* a character's bytes: a range per byte */
static const cshape string_shapes[] = {
    {1, {{0x20, 0x21}}}, {1, {{0x23, 0x5B}}}, {1, {{0x5D, 0x7F}}},
    {2, {{0xC2, 0xDF}, {0x80, 0xBF}}},
    {3, {{0xE0, 0xE0}, {0xA0, 0xBF}, {0x80, 0xBF}}},
    {3, {{0xE1, 0xEC}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {3, {{0xED, 0xED}, {0x80, 0x9F}, {0x80, 0xBF}}},
    {3, {{0xEE, 0xEF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {4, {{0xF0, 0xF0}, {0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {4, {{0xF1, 0xF3}, {0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {4, {{0xF4, 0xF4}, {0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}}},
};
static const cshape alnum_shapes[] = {{1, {{'0', '9'}}}, {1, {{'A', 'Z'}}}, {1, {{'a', 'z'}}}};
static const struct { const cshape *s; int n; } slice_shapes[GRAM_N_SLICES] = {
    {string_shapes, sizeof string_shapes / sizeof string_shapes[0]},
    {alnum_shapes, sizeof alnum_shapes / sizeof alnum_shapes[0]},
};

/* Every byte edge of every item of s takes all of [lo,hi] or none of it. */
static bool uniform(const gram_grammar *g, const gram_pool *p, const gram_set *s, brange r) {
    gram_bset k = {{0}};
    gram_bset_range(&k, r.lo, r.hi);
    for (int i = 0; i < s->n; i++) {
        int st = p->st[s->items[i]];
        for (int e = g->be_lo[st]; e < g->be_lo[st + 1]; e++) {
            uint64_t any = 0, part = 0;
            for (int j = 0; j < 4; j++) {
                uint64_t x = g->be_set[e].w[j] & k.w[j];
                any |= x;
                part |= x ^ k.w[j];
            }
            if (any && part) return false;
        }
    }
    return true;
}

static int set_copy_into(gram_set *d, const gram_set *s) {
    if (d->cap < s->n) {
        int nc = s->n + 16;
        int32_t *v = realloc(d->items, (size_t)nc * sizeof(int32_t));
        if (!v) return SW_ERR_NOMEM;
        d->items = v;
        d->cap = nc;
    }
    if (s->n) memcpy(d->items, s->items, (size_t)s->n * sizeof(int32_t));
    d->n = s->n;
    d->acc = s->acc;
    d->sent = s->sent;
    return SW_OK;
}

static void sort_keys(uint64_t *v, int n) {
    for (int i = 1; i < n; i++) {
        uint64_t x = v[i];
        int j = i;
        for (; j > 0 && v[j - 1] > x; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

/* Same flags and the same items up to twin states (g->canon); conservative: false for
 * sets too large to compare here. */
static bool set_equal(const gram_grammar *g, const gram_pool *p, const gram_set *a, const gram_set *b) {
    enum { MAXN = 32 };
    if (a->n != b->n || a->acc != b->acc || a->sent != b->sent || a->n > MAXN) return false;
    uint64_t ka[MAXN], kb[MAXN];
    for (int i = 0; i < a->n; i++) {
        ka[i] = (uint64_t)(uint32_t)g->canon[p->st[a->items[i]]] << 32 | (uint32_t)p->par[a->items[i]];
        kb[i] = (uint64_t)(uint32_t)g->canon[p->st[b->items[i]]] << 32 | (uint32_t)p->par[b->items[i]];
    }
    sort_keys(ka, a->n);
    sort_keys(kb, b->n);
    return !memcmp(ka, kb, (size_t)a->n * sizeof(uint64_t));
}

/* r = the set after one slice character from live x; *ok false when characters differ. */
static int char_step(const gram_grammar *g, gram_walker *w, int sl, const gram_set *x, gram_set *r, bool *ok) {
    *ok = false;
    gram_set *t[2] = {&w->cx[2], &w->cx[3]};
    const cshape *shapes = slice_shapes[sl].s;
    for (int k = 0; k < slice_shapes[sl].n; k++) {
        const gram_set *in = x;
        for (int i = 0; i < shapes[k].n; i++) {
            if (!uniform(g, &w->pool, in, shapes[k].b[i])) return SW_OK;
            gram_set *out = k == 0 ? r : t[i & 1];
            int rc = gram_advance(g, &w->pool, in, shapes[k].b[i].lo, out);
            if (rc != SW_OK) return rc;
            if (i + 1 < shapes[k].n) {
                if (out->acc || out->sent) return SW_OK;
                if (out->n == 0) { /* dies inside the character: fine when whole characters die */
                    if (r->n || r->acc || r->sent) return SW_OK;
                    break;
                }
            } else if (k > 0 && !set_equal(g, &w->pool, out, r)) {
                return SW_OK;
            }
            in = out;
        }
    }
    *ok = true;
    return SW_OK;
}

/* The chain from the start set: cacc/csent/csb[c] for c characters; *dead = the first count
 * whose set is empty, or -1 when every count up to slice_max is live. *ok false when
 * the slice does not apply. */
static int slice_chain(const gram_grammar *g, gram_walker *w, int sl, int *dead, bool *ok) {
    *ok = false;
    gram_set *x = &w->cx[0], *r = &w->cx[1];
    int rc = set_copy_into(x, &w->start);
    bool sb = false;
    for (int j = 0; rc == SW_OK; j++) {
        w->cacc[j] = x->acc;
        w->csent[j] = x->sent;
        w->csb[j] = sb;
        if (x->n == 0) { *dead = j; *ok = j > 0; return SW_OK; }
        if (j == g->v->slice[sl].max) break;
        bool same;
        if ((rc = char_step(g, w, sl, x, r, &same)) != SW_OK || !same) return rc;
        sb = sb || x->sent;
        if (set_equal(g, &w->pool, x, r)) break; /* a loop: every longer count stays live */
        gram_set t = *x; /* x <-> r */
        *x = *r;
        *r = t;
    }
    if (rc == SW_OK) { *dead = -1; *ok = true; }
    return rc;
}

/* mask |= the slice tokens the chain accepts; unc (ids) |= those it leaves uncertain
 * (unc NULL: none can be). Returns whether any are uncertain. */
static bool slice_classify(const gram_vocab *v, const gram_walker *w, int sl, int dead, uint32_t *mask, uint32_t *unc) {
    const uint32_t *cum = v->slice[sl].cum;
    int nw = v->n_words, mx = v->slice[sl].max;
    const uint32_t *all = cum + (size_t)mx * nw;
    if (dead < 0) {
        for (int i = 0; i < nw; i++) mask[i] |= all[i];
        return false;
    }
    const uint32_t *below = cum + (size_t)(dead - 1) * nw, *upto = cum + (size_t)dead * nw;
    bool at_acc = w->cacc[dead] || w->csent[dead], at_unc = !at_acc && w->csb[dead];
    bool past_unc = w->csb[dead] || w->csent[dead], any = false;
    for (int i = 0; i < nw; i++) {
        uint32_t exact = upto[i] & ~below[i], past = all[i] & ~upto[i];
        mask[i] |= below[i] | (at_acc ? exact : 0);
        uint32_t u = (at_unc ? exact : 0) | (past_unc ? past : 0);
        if (u) { unc[i] |= u; any = true; }
    }
    return any;
}

static bool has_prefix(const gram_vocab *v, int32_t si, const char *p, int n) {
    return (int)(v->sorted_off[si + 1] - v->sorted_off[si]) >= n && !memcmp(v->bytes + v->sorted_off[si], p, (size_t)n);
}

/* The first k > i of list[0..n) whose text does not start with p[0..np) (list[i]'s does;
 * sorted order keeps those that do contiguous). */
static int run_end(const gram_vocab *v, const int32_t *list, int i, int n, const char *p, int np) {
    int lo = i, step = 1; /* list[lo] has the prefix */
    while (lo + step < n && has_prefix(v, list[lo + step], p, np)) { lo += step; step *= 2; }
    int hi = lo + step < n ? lo + step : n; /* list[hi] lacks it, or hi == n */
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (has_prefix(v, list[mid], p, np)) lo = mid;
        else hi = mid;
    }
    return hi;
}

/* Classifies the listed tokens (sorted-vocab indices, ascending). */
static int walk_list(const gram_grammar *g, gram_walker *w, const int32_t *list, int n) {
    const gram_vocab *v = g->v;
    int have = 0, cls = C_REJ; /* states computed for depths 0..have; class of the previous token */
    const char *prev = NULL;
    int prev_len = 0;
    for (int i = 0; i < n; i++) {
        int32_t si = list[i];
        const char *t = v->bytes + v->sorted_off[si];
        int len = (int)(v->sorted_off[si + 1] - v->sorted_off[si]), c = 0;
        if (prev)
            while (c < prev_len && c < len && prev[c] == t[c]) c++;
        prev = t;
        prev_len = len;
        if (c > have) c = have;
        if (c == len && c == have) { /* same text as the previous token */
        } else if (c == have && have > 0 && set_n(w, w->dv[have]) == 0) {
            /* extends a prefix that died */
            cls = (w->sb[have] || (w->sfl[w->dv[have]] & 2)) ? C_UNC : C_REJ;
        } else {
            int d = c;
            cls = C_REJ;
            for (d = c + 1; d <= len; d++) {
                int rc = step(g, w, d, (unsigned char)t[d - 1]);
                if (rc != SW_OK) return rc;
                if (set_n(w, w->dv[d]) == 0) break;
            }
            if (d > len) { /* consumed with items left */
                have = len;
                cls = C_ACC;
            } else {
                have = d;
                int fl = w->sfl[w->dv[d]];
                if (d == len) cls = fl ? C_ACC : (w->sb[d] ? C_UNC : C_REJ);
                else cls = (w->sb[d] || (fl & 2)) ? C_UNC : C_REJ;
            }
        }
        if (cls == C_ACC && gram_ilist_push(&w->acc, si) < 0) return SW_ERR_NOMEM;
        if (cls == C_UNC && gram_ilist_push(&w->unc, si) < 0) return SW_ERR_NOMEM;
        if (have > 0 && len > have && set_n(w, w->dv[have]) == 0) {
            /* the next tokens that extend the same dead prefix share this one's class */
            int j = run_end(v, list, i, n, t, have);
            for (int k = i + 1; k < j && cls == C_UNC; k++)
                if (gram_ilist_push(&w->unc, list[k]) < 0) return SW_ERR_NOMEM;
            if (j - 1 > i) {
                prev = v->bytes + v->sorted_off[list[j - 1]];
                prev_len = (int)(v->sorted_off[list[j - 1] + 1] - v->sorted_off[list[j - 1]]);
                i = j - 1;
            }
        }
    }
    return SW_OK;
}

/* bits |= the slice tokens accepted after the chain; the uncertain ones are merged
 * into w->unc, which stays ascending. */
static int add_slice(const gram_vocab *v, gram_walker *w, int sl, int dead, uint32_t *bits) {
    if (dead < 0 || !(w->csb[dead] || w->csent[dead])) {
        slice_classify(v, w, sl, dead, bits, NULL);
        return SW_OK;
    }
    uint32_t *unc = calloc((size_t)v->n_words, sizeof(uint32_t));
    uint8_t *in = calloc((size_t)v->n_sorted + 1, 1);
    if (!unc || !in) { free(unc); free(in); return SW_ERR_NOMEM; }
    slice_classify(v, w, sl, dead, bits, unc);
    for (int i = 0; i < w->unc.n; i++) in[w->unc.v[i]] = 1;
    for (int k = 0; k < v->n_words; k++)
        for (uint32_t x = unc[k]; x; x &= x - 1) in[v->rev[k * 32 + __builtin_ctz(x)]] = 1;
    w->unc.n = 0;
    int rc = SW_OK;
    for (int i = 0; i < v->n_sorted && rc == SW_OK; i++)
        if (in[i] && gram_ilist_push(&w->unc, i) < 0) rc = SW_ERR_NOMEM;
    free(unc);
    free(in);
    return rc;
}

/* Builds the entry for the top L states of chain (bottom real when root), classifying the
 * whole vocabulary (list NULL) or the listed tokens. */
static int build(const gram_grammar *g, gram_walker *w, const int32_t *chain, int L, bool root,
                 const int32_t *list, int n_list, mentry **out) {
    *out = NULL;
    gram_pool_truncate(&w->pool, 0);
    int32_t par = root ? GRAM_ROOT : GRAM_SENT;
    for (int j = L - 1; j >= 0; j--)
        if ((par = gram_pool_frame(&w->pool, chain[j], par)) < 0) return SW_ERR_NOMEM;
    gram_set *s0 = &w->start;
    s0->n = 0;
    s0->acc = s0->sent = false;
    if (s0->cap < 1) {
        s0->items = malloc(16 * sizeof(int32_t));
        if (!s0->items) return SW_ERR_NOMEM;
        s0->cap = 16;
    }
    s0->items[s0->n++] = par;
    dfa_reset(w, w->pool.n);
    int rc = intern(w, s0, &w->dv[0]);
    if (rc != SW_OK) return rc;
    w->sb[0] = 0;
    w->acc.n = w->unc.n = 0;
    const gram_vocab *v = g->v;
    int dead = -1, sl = 0;
    bool sliced = false;
    for (; !list && !sliced && sl < GRAM_N_SLICES; sl++)
        if ((rc = slice_chain(g, w, sl, &dead, &sliced)) != SW_OK) return rc;
    sl--;
    if (list) rc = walk_list(g, w, list, n_list);
    else if (sliced) rc = walk_trie(g, w, v->slice[sl].rnodes, v->slice[sl].n_rnodes, v->slice[sl].rest);
    else rc = walk_trie(g, w, v->nodes, v->n_nodes, NULL);
    if (rc != SW_OK) return rc;
    mentry *e = calloc(1, sizeof *e);
    if (!e) return SW_ERR_NOMEM;
    e->L = L;
    e->root = root;
    e->hash = key_hash(chain, L, root);
    e->states = malloc((size_t)L * sizeof(int32_t));
    if (!e->states) { entry_free(e); return SW_ERR_NOMEM; }
    memcpy(e->states, chain, (size_t)L * sizeof(int32_t));
    if (sliced || w->acc.n > v->n_words) {
        e->bits = calloc((size_t)v->n_words, sizeof(uint32_t));
        if (!e->bits) { entry_free(e); return SW_ERR_NOMEM; }
        for (int i = 0; i < w->acc.n; i++) {
            int32_t id = v->sorted_id[w->acc.v[i]];
            e->bits[id >> 5] |= 1u << (id & 31);
        }
        e->bytes += (size_t)v->n_words * 4;
        if (sliced && (rc = add_slice(v, w, sl, dead, e->bits)) != SW_OK) { entry_free(e); return rc; }
    } else if (w->acc.n) {
        e->acc = malloc((size_t)w->acc.n * sizeof(int32_t));
        if (!e->acc) { entry_free(e); return SW_ERR_NOMEM; }
        for (int i = 0; i < w->acc.n; i++) e->acc[i] = v->sorted_id[w->acc.v[i]];
        e->n_acc = w->acc.n;
        e->bytes += (size_t)e->n_acc * 4;
    }
    if (w->unc.n) {
        e->unc = malloc((size_t)w->unc.n * sizeof(int32_t));
        if (!e->unc) { entry_free(e); return SW_ERR_NOMEM; }
        memcpy(e->unc, w->unc.v, (size_t)w->unc.n * sizeof(int32_t));
        e->n_unc = w->unc.n;
        e->bytes += (size_t)e->n_unc * 4;
    }
    e->bytes += sizeof *e + (size_t)L * 4;
    *out = e;
    return SW_OK;
}

static void apply(const mentry *e, uint32_t *mask, int n_words) {
    if (e->bits)
        for (int i = 0; i < n_words; i++) mask[i] |= e->bits[i];
    for (int i = 0; i < e->n_acc; i++) mask[e->acc[i] >> 5] |= 1u << (e->acc[i] & 31);
}

/* Content hash of rule r's sub-grammar, computed once per grammar. */
static int rule_hash(gram_grammar *g, int r, uint64_t out[2]) {
    gram_mask_cache *c = g->mc;
    pthread_mutex_lock(&c->mu);
    bool have = c->hashed[r];
    if (have) { out[0] = c->rule_hash[r][0]; out[1] = c->rule_hash[r][1]; }
    pthread_mutex_unlock(&c->mu);
    if (have) return SW_OK;
    int rc = rule_content_hash(g, r, out);
    if (rc != SW_OK) return rc;
    pthread_mutex_lock(&c->mu);
    c->rule_hash[r][0] = out[0];
    c->rule_hash[r][1] = out[1];
    c->hashed[r] = 1;
    pthread_mutex_unlock(&c->mu);
    return SW_OK;
}

/* An entry through the vocabulary's shared store, keyed by the content of its frames:
 * for each of the L frames, the hash of its rule's sub-grammar and the state's index in
 * the rule, plus L and the bottom. Found there, or built and put there; the grammar's
 * cache gets a borrowing copy. */
static int get_shared(gram_grammar *g, gram_walker *w, const int32_t *chain, int L, bool root, const mentry *from,
                      uint32_t h, mentry **out, bool *owned) {
    gram_mask_cache *c = g->mc;
    struct gram_shared *sh = g->v->shared;
    uint64_t key[3 * GRAM_MAX_KEY + 1], rh[2];
    int nk = 0;
    for (int i = 0; i < L; i++) {
        int rule = g->state_rule[chain[i]];
        int rc = rule_hash(g, rule, key + nk);
        if (rc != SW_OK) return rc;
        key[nk + 2] = (uint64_t)(chain[i] - g->rule_start[rule]);
        nk += 3;
    }
    key[nk++] = (uint64_t)L << 1 | root;
    XXH128_hash_t kh = XXH3_128bits(key, (size_t)nk * sizeof(uint64_t));
    rh[0] = kh.low64;
    rh[1] = kh.high64;
    int32_t local = (int32_t)(L << 1 | root);
    uint32_t sh_h = (uint32_t)(rh[0] ^ (rh[1] >> 7) ^ (uint64_t)local * 0x9E3779B1u);
    pthread_mutex_lock(&sh->mu);
    mentry *data = NULL;
    for (sentry *x = sh->b[sh_h & sh->mask]; x; x = x->next)
        if (x->h0 == rh[0] && x->h1 == rh[1] && x->local == local) { data = x->e; break; }
    pthread_mutex_unlock(&sh->mu);
    if (!data) {
        mentry *e;
        int rc = build(g, w, chain, L, root, from ? from->unc : NULL, from ? from->n_unc : 0, &e);
        if (rc != SW_OK) return rc;
        sentry *x = malloc(sizeof *x);
        pthread_mutex_lock(&sh->mu);
        for (sentry *y = sh->b[sh_h & sh->mask]; y; y = y->next)
            if (y->h0 == rh[0] && y->h1 == rh[1] && y->local == local) { data = y->e; break; }
        if (!data && x && sh->bytes + e->bytes <= GRAM_SHARED_BYTES) {
            if ((uint32_t)sh->n > sh->mask) { /* grow 4x */
                uint32_t nm = sh->mask * 4 + 3;
                sentry **nb = calloc((size_t)nm + 1, sizeof(sentry *));
                if (nb) {
                    for (uint32_t i = 0; i <= sh->mask; i++)
                        for (sentry *y = sh->b[i], *n; y; y = n) {
                            n = y->next;
                            uint32_t hh = (uint32_t)(y->h0 ^ (y->h1 >> 7) ^ (uint64_t)y->local * 0x9E3779B1u);
                            y->next = nb[hh & nm];
                            nb[hh & nm] = y;
                        }
                    free(sh->b);
                    sh->b = nb;
                    sh->mask = nm;
                }
            }
            *x = (sentry){sh->b[sh_h & sh->mask], rh[0], rh[1], local, e};
            sh->b[sh_h & sh->mask] = x;
            sh->n++;
            sh->bytes += e->bytes;
            data = e;
            e = NULL;
            x = NULL;
        }
        pthread_mutex_unlock(&sh->mu);
        free(x);
        if (e && !data) { *out = insert(c, e, owned); return SW_OK; } /* store full: keep it locally */
        entry_free(e);
    }
    mentry *b = calloc(1, sizeof *b);
    int32_t *st = malloc((size_t)L * sizeof(int32_t));
    if (!b || !st) { free(b); free(st); return SW_ERR_NOMEM; }
    memcpy(st, chain, (size_t)L * sizeof(int32_t));
    *b = *data;
    b->next = NULL;
    b->states = st;
    b->L = L;
    b->root = root;
    b->hash = h;
    b->borrowed = true;
    b->bytes = sizeof *b;
    *out = insert(c, b, owned);
    return SW_OK;
}

/* The entry for chain[0..L) (found, or built and inserted). */
static int get(gram_grammar *g, gram_walker *w, const int32_t *chain, int L, bool root,
               const mentry *from, mentry **out, bool *owned) {
    uint32_t h = key_hash(chain, L, root);
    gram_mask_cache *c = g->mc;
    pthread_mutex_lock(&c->mu);
    mentry *e = lookup(c, chain, L, root, h);
    pthread_mutex_unlock(&c->mu);
    *owned = false;
    if (e) { *out = e; return SW_OK; }
    if (L <= GRAM_MAX_KEY) return get_shared(g, w, chain, L, root, from, h, out, owned);
    int rc = build(g, w, chain, L, root, from ? from->unc : NULL, from ? from->n_unc : 0, &e);
    if (rc != SW_OK) return rc;
    *out = insert(c, e, owned);
    return SW_OK;
}

int gram_mask_item(gram_grammar *g, gram_walker *w, const gram_pool *p, int32_t item, uint32_t *mask, sw_err *err) {
    int D = 0;
    for (int32_t f = item; f >= 0; f = p->par[f]) {
        if (D == w->cap_chain) {
            int nc = w->cap_chain ? w->cap_chain * 2 : 64;
            int32_t *q = realloc(w->chain, (size_t)nc * sizeof(int32_t));
            if (!q) return sw_err_set(err, SW_ERR_NOMEM, "grammar mask: out of memory");
            w->chain = q;
            w->cap_chain = nc;
        }
        w->chain[D++] = p->st[f];
    }
    mentry *prev = NULL;
    bool prev_owned = false;
    int rc = SW_OK;
    for (int L = 1; L <= D; L++) {
        if (L > GRAM_MAX_LEVEL && L < D) L = D; /* deep stacks: resolve exactly at once */
        mentry *e;
        bool owned;
        rc = get(g, w, w->chain, L, L == D, prev, &e, &owned);
        if (prev_owned) entry_free(prev);
        prev = NULL;
        if (rc != SW_OK) break;
        apply(e, mask, g->v->n_words);
        prev = e;
        prev_owned = owned;
        if (e->n_unc == 0) break;
    }
    if (prev_owned) entry_free(prev);
    if (rc != SW_OK) return sw_err_set(err, rc, "grammar mask: %s", rc == SW_ERR_NOMEM ? "out of memory" : "stack too deep");
    return SW_OK;
}
