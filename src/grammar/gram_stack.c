/* gram_stack.c — the parse state: a set of stacks over the compiled automata. A frame is
 * a (state, parent frame) pair, hash-consed in a pool so that equal stacks are one id and
 * a set of stacks is a set of ids; stacks share their lower frames. The pool can be cut
 * back to an earlier size (the mask builder walks the token trie depth first and drops
 * the frames of a subtree when it leaves it): frames are removed from the hash table in
 * reverse order of insertion, which keeps linear probing exact.
 * gram_closure follows calls (push; a call whose return point is a bare final state
 * pushes nothing: tail calls keep right recursion flat) and rule ends (pop) until it
 * reaches states that consume a byte ("items"); popping the last frame marks the set
 * accepting, popping into GRAM_SENT marks that the unknown lower frames take over. */
#include "grammar/gram_internal.h"

#define GRAM_MAX_CLOSURE_DEPTH 4000

static inline uint32_t fhash(int32_t st, int32_t par) {
    uint64_t h = (uint64_t)(uint32_t)st * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)par * 0xC2B2AE3D27D4EB4Full;
    return (uint32_t)(h ^ (h >> 29));
}

int gram_pool_init(gram_pool *p) {
    memset(p, 0, sizeof *p);
    p->cap = 1024;
    p->st = malloc((size_t)p->cap * sizeof(int32_t));
    p->par = malloc((size_t)p->cap * sizeof(int32_t));
    p->stamp = calloc((size_t)p->cap, sizeof(uint32_t));
    p->ht_mask = 4095;
    p->ht = malloc(((size_t)p->ht_mask + 1) * sizeof(int32_t));
    p->cur = 1;
    if (!p->st || !p->par || !p->stamp || !p->ht) { gram_pool_free(p); return SW_ERR_NOMEM; }
    memset(p->ht, 0xff, ((size_t)p->ht_mask + 1) * sizeof(int32_t));
    return SW_OK;
}

void gram_pool_free(gram_pool *p) {
    free(p->st); free(p->par); free(p->stamp); free(p->ht);
    memset(p, 0, sizeof *p);
}

static void ht_insert(gram_pool *p, int32_t id) {
    uint32_t h = fhash(p->st[id], p->par[id]) & p->ht_mask;
    while (p->ht[h] >= 0) h = (h + 1) & p->ht_mask;
    p->ht[h] = id;
}

static int grow(gram_pool *p) {
    if (p->cap >= (1 << 28)) return SW_ERR_NOMEM;
    int nc = p->cap * 2;
    int32_t *st = realloc(p->st, (size_t)nc * sizeof(int32_t));
    if (!st) return SW_ERR_NOMEM;
    p->st = st;
    int32_t *par = realloc(p->par, (size_t)nc * sizeof(int32_t));
    if (!par) return SW_ERR_NOMEM;
    p->par = par;
    uint32_t *stamp = realloc(p->stamp, (size_t)nc * sizeof(uint32_t));
    if (!stamp) return SW_ERR_NOMEM;
    memset(stamp + p->cap, 0, (size_t)(nc - p->cap) * sizeof(uint32_t));
    p->stamp = stamp;
    p->cap = nc;
    /* keep the table at most half full */
    if ((uint32_t)nc > (p->ht_mask + 1) / 2) {
        uint32_t nm = (p->ht_mask + 1) * 4 - 1;
        int32_t *ht = malloc(((size_t)nm + 1) * sizeof(int32_t));
        if (!ht) return SW_ERR_NOMEM;
        free(p->ht);
        p->ht = ht;
        p->ht_mask = nm;
        memset(ht, 0xff, ((size_t)nm + 1) * sizeof(int32_t));
        for (int i = 0; i < p->n; i++) ht_insert(p, i); /* in insertion order */
    }
    return SW_OK;
}

int gram_pool_frame(gram_pool *p, int32_t st, int32_t par) {
    uint32_t h = fhash(st, par) & p->ht_mask;
    for (int32_t id; (id = p->ht[h]) >= 0; h = (h + 1) & p->ht_mask)
        if (p->st[id] == st && p->par[id] == par) return id;
    if (p->n == p->cap) {
        if (grow(p) != SW_OK) return -1;
        h = fhash(st, par) & p->ht_mask;
        while (p->ht[h] >= 0) h = (h + 1) & p->ht_mask;
    }
    int32_t id = p->n++;
    p->st[id] = st;
    p->par[id] = par;
    p->stamp[id] = 0;
    p->ht[h] = id;
    return id;
}

void gram_pool_truncate(gram_pool *p, int n) {
    for (int id = p->n - 1; id >= n; id--) {
        uint32_t h = fhash(p->st[id], p->par[id]) & p->ht_mask;
        while (p->ht[h] != id) h = (h + 1) & p->ht_mask;
        p->ht[h] = -1;
    }
    if (n < p->n) p->n = n;
}

void gram_set_free(gram_set *s) {
    free(s->items);
    memset(s, 0, sizeof *s);
}

static int set_push(gram_set *s, int32_t id) {
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        int32_t *v = realloc(s->items, (size_t)nc * sizeof(int32_t));
        if (!v) return SW_ERR_NOMEM;
        s->items = v;
        s->cap = nc;
    }
    s->items[s->n++] = id;
    return SW_OK;
}

static int clos(const gram_grammar *g, gram_pool *p, gram_set *out, int32_t st, int32_t par, int depth) {
    if (depth > GRAM_MAX_CLOSURE_DEPTH) return SW_ERR_RANGE;
    int32_t id = gram_pool_frame(p, st, par);
    if (id < 0) return SW_ERR_NOMEM;
    if (p->stamp[id] == p->cur) return SW_OK;
    p->stamp[id] = p->cur;
    int rc;
    if (g->be_lo[st] < g->be_lo[st + 1] && (rc = set_push(out, id)) != SW_OK) return rc;
    for (int e = g->re_lo[st]; e < g->re_lo[st + 1]; e++) {
        int32_t np = par;
        if (!g->re_tail[e] && (np = gram_pool_frame(p, g->re_to[e], par)) < 0) return SW_ERR_NOMEM;
        if ((rc = clos(g, p, out, g->re_start[e], np, depth + 1)) != SW_OK) return rc;
    }
    if (g->final[st]) {
        if (par == GRAM_ROOT) out->acc = true;
        else if (par == GRAM_SENT) out->sent = true;
        else return clos(g, p, out, p->st[par], p->par[par], depth + 1);
    }
    return SW_OK;
}

static void next_stamp(gram_pool *p) {
    if (++p->cur == 0) {
        memset(p->stamp, 0, (size_t)p->cap * sizeof(uint32_t));
        p->cur = 1;
    }
}

int gram_start(const gram_grammar *g, gram_pool *p, gram_set *out) {
    out->n = 0;
    out->acc = out->sent = false;
    next_stamp(p);
    return clos(g, p, out, g->root, GRAM_ROOT, 0);
}

int gram_advance(const gram_grammar *g, gram_pool *p, const gram_set *in, unsigned b, gram_set *out) {
    out->n = 0;
    out->acc = out->sent = false;
    next_stamp(p);
    for (int i = 0; i < in->n; i++) {
        int32_t it = in->items[i], st = p->st[it], par = p->par[it];
        if (!gram_bset_has(&g->first[st], b)) continue;
        for (int e = g->be_lo[st]; e < g->be_lo[st + 1]; e++) {
            if (!gram_bset_has(&g->be_set[e], b)) continue;
            int rc = clos(g, p, out, g->be_to[e], par, 0);
            if (rc != SW_OK) return rc;
        }
    }
    return SW_OK;
}
