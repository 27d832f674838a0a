/* gram_nfa.c — AST -> compiled grammar. Each rule reachable from the root becomes a
 * byte automaton (Thompson construction, then epsilon edges removed and unreachable
 * states dropped) whose edges are byte sets or calls of other rules; all rules' states
 * are numbered globally. Checks: every referenced rule is defined, no rule is
 * left-recursive (a rule that can reach a call of itself without consuming a byte would
 * make the stack grow forever), and the automaton stays under GRAM_MAX_STATES. */
#include "grammar/gram_internal.h"
#include <stdio.h>

#define GRAM_MAX_STATES (1 << 20)

enum { E_EPS, E_BYTES, E_RULE };
typedef struct tedge { int from, to, kind, arg; } tedge; /* arg: set index / rule index */
typedef struct tnfa {
    int n_states;
    tedge *e; int n_e, cap_e;
    gram_bset *sets; int n_sets, cap_sets;
    bool full;
} tnfa;

static bool tgrow(void **p, int *cap, int need, size_t el) {
    if (need <= *cap) return true;
    int nc = *cap ? *cap * 2 : 256;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, (size_t)nc * el);
    if (!q) return false;
    *p = q;
    *cap = nc;
    return true;
}
static int tstate(tnfa *t) {
    if (t->n_states >= GRAM_MAX_STATES) { t->full = true; return 0; }
    return t->n_states++;
}
static void tedge_add(tnfa *t, int from, int to, int kind, int arg) {
    if (t->full) return;
    if (!tgrow((void **)&t->e, &t->cap_e, t->n_e + 1, sizeof(tedge))) { t->full = true; return; }
    t->e[t->n_e++] = (tedge){from, to, kind, arg};
}

/* Builds node's fragment; returns via *s, *e. */
static void frag(tnfa *t, const gram_ast *a, int node, int *s, int *e, int depth) {
    *s = tstate(t);
    *e = tstate(t);
    if (t->full || depth > 2000) { t->full = true; return; }
    const gram_node *n = &a->n[node];
    switch (n->kind) {
    case GN_BYTES:
        if (!tgrow((void **)&t->sets, &t->cap_sets, t->n_sets + 1, sizeof(gram_bset))) { t->full = true; return; }
        t->sets[t->n_sets] = n->set;
        tedge_add(t, *s, *e, E_BYTES, t->n_sets++);
        break;
    case GN_REF:
        tedge_add(t, *s, *e, E_RULE, n->ref);
        break;
    case GN_SEQ: {
        int cur = *s;
        for (int i = 0; i < n->nkid; i++) {
            int ks, ke;
            frag(t, a, a->kids[n->kid0 + i], &ks, &ke, depth + 1);
            tedge_add(t, cur, ks, E_EPS, 0);
            cur = ke;
        }
        tedge_add(t, cur, *e, E_EPS, 0);
        break;
    }
    case GN_ALT:
        for (int i = 0; i < n->nkid; i++) {
            int ks, ke;
            frag(t, a, a->kids[n->kid0 + i], &ks, &ke, depth + 1);
            tedge_add(t, *s, ks, E_EPS, 0);
            tedge_add(t, ke, *e, E_EPS, 0);
        }
        break;
    case GN_REP: {
        int cur = *s;
        for (int i = 0; i < n->min && !t->full; i++) {
            int ks, ke;
            frag(t, a, n->kid0, &ks, &ke, depth + 1);
            tedge_add(t, cur, ks, E_EPS, 0);
            cur = ke;
        }
        if (n->max < 0) {
            int l = tstate(t), ks, ke;
            tedge_add(t, cur, l, E_EPS, 0);
            frag(t, a, n->kid0, &ks, &ke, depth + 1);
            tedge_add(t, l, ks, E_EPS, 0);
            tedge_add(t, ke, l, E_EPS, 0);
            cur = l;
        } else {
            for (int i = n->min; i < n->max && !t->full; i++) {
                int ks, ke;
                frag(t, a, n->kid0, &ks, &ke, depth + 1);
                tedge_add(t, cur, ks, E_EPS, 0);
                tedge_add(t, cur, *e, E_EPS, 0);
                cur = ke;
            }
        }
        tedge_add(t, cur, *e, E_EPS, 0);
        break;
    }
    }
}

typedef struct rinfo { int s, e; } rinfo; /* a rule's Thompson start and end */

typedef struct bscratch {
    tnfa t;
    rinfo *ri;
    int *order, *newid, *off, *stk, *clos, *cm, *map, *eo, *rstart, *owner;
    uint32_t *mark;
    tedge *ne;
    uint8_t *nullable, *rfinal;
} bscratch;

static void bscratch_free(bscratch *b) {
    free(b->t.e); free(b->t.sets); free(b->ri); free(b->order); free(b->newid); free(b->off);
    free(b->stk); free(b->clos); free(b->cm); free(b->map); free(b->eo); free(b->rstart);
    free(b->owner); free(b->mark); free(b->ne); free(b->nullable); free(b->rfinal);
}

/* Epsilon removal, rule by rule: the new states are the Thompson states reachable from
 * the rule's start through non-eps edges; each gets the non-eps edges of its eps-closure
 * and is final when the closure holds the rule's end. Fills b->ne, b->rstart, b->owner,
 * b->rfinal and *n_edges; returns the new state count or -1 (OOM). */
static int remove_eps(bscratch *b, int n_order, int *n_edges) {
    tnfa *t = &b->t;
    int ns = t->n_states, n_new = 0, n_ne = 0, ne_cap = 0;
    uint32_t stamp = 0;
    for (int i = 0; i < ns; i++) b->map[i] = -1;
    for (int k = 0; k < n_order; k++) {
        int qh = 0, qt = 0;
        b->rstart[k] = n_new;
        b->map[b->ri[k].s] = n_new++;
        b->stk[qt++] = b->ri[k].s;
        while (qh < qt) {
            int src = b->stk[qh++], me = b->map[src];
            b->owner[me] = k;
            b->rfinal[me] = 0;
            stamp++;
            int nc = 0, top = 0;
            b->clos[top++] = src;
            b->mark[src] = stamp;
            while (top) {
                int x = b->clos[--top];
                b->cm[nc++] = x;
                if (x == b->ri[k].e) b->rfinal[me] = 1;
                for (int j = b->off[x]; j < b->off[x + 1]; j++)
                    if (t->e[j].kind == E_EPS && b->mark[t->e[j].to] != stamp) {
                        b->mark[t->e[j].to] = stamp;
                        b->clos[top++] = t->e[j].to;
                    }
            }
            for (int c = 0; c < nc; c++) {
                int x = b->cm[c];
                for (int j = b->off[x]; j < b->off[x + 1]; j++) {
                    if (t->e[j].kind == E_EPS) continue;
                    int to = t->e[j].to;
                    if (b->map[to] < 0) { b->map[to] = n_new++; b->stk[qt++] = to; }
                    if (!tgrow((void **)&b->ne, &ne_cap, n_ne + 1, sizeof(tedge))) return -1;
                    b->ne[n_ne++] = (tedge){me, b->map[to], t->e[j].kind, t->e[j].arg};
                }
            }
        }
    }
    /* b->ne is grouped by source already: states are numbered in the order the queue
     * visits them, and each visit appends all of that state's edges */
    *n_edges = n_ne;
    return n_new;
}

/* Fills the grammar's edge arrays from the sorted eps-free edges: byte edges with the same
 * target merged, duplicate calls dropped. */
static void fill_edges(gram_grammar *g, const bscratch *b, int n_ne) {
    int nb = 0, nre = 0, i = 0;
    for (int s = 0; s < g->n_states; s++) {
        g->be_lo[s] = nb;
        g->re_lo[s] = nre;
        for (; i < n_ne && b->ne[i].from == s; i++) {
            const tedge *x = &b->ne[i];
            if (x->kind == E_BYTES) {
                const gram_bset *set = &b->t.sets[x->arg];
                int m = -1;
                for (int q = g->be_lo[s]; q < nb; q++)
                    if (g->be_to[q] == x->to) m = q;
                if (m < 0) { m = nb++; memset(&g->be_set[m], 0, sizeof(gram_bset)); g->be_to[m] = x->to; }
                for (int w = 0; w < 4; w++) { g->be_set[m].w[w] |= set->w[w]; g->first[s].w[w] |= set->w[w]; }
            } else {
                int c = b->rstart[x->arg];
                bool dup = false;
                for (int q = g->re_lo[s]; q < nre; q++)
                    if (g->re_to[q] == x->to && g->re_start[q] == c) dup = true;
                if (!dup) { g->re_start[nre] = c; g->re_to[nre++] = x->to; }
            }
        }
    }
    g->be_lo[g->n_states] = nb;
    g->re_lo[g->n_states] = nre;
    for (int e = 0; e < nre; e++) {
        int to = g->re_to[e];
        g->re_tail[e] = g->final[to] && g->be_lo[to] == g->be_lo[to + 1] && g->re_lo[to] == g->re_lo[to + 1];
    }
}

/* Nullable rules (fixpoint), then the left-call graph (rule k calls rule c at a state
 * reachable from k's start through calls of nullable rules only) checked for a cycle.
 * Returns -1 on OOM, 0 when fine, else 1 + the index (in b->order) of a left-recursive rule. */
static int check_left_recursion(const gram_grammar *g, bscratch *b, int n_order) {
    uint32_t stamp = 0;
    int n_new = g->n_states;
    memset(b->mark, 0, (size_t)n_new * sizeof(uint32_t));
    for (bool changed = true; changed;) {
        changed = false;
        for (int k = 0; k < n_order; k++) {
            if (b->nullable[k]) continue;
            stamp++;
            int top = 0;
            bool nul = false;
            b->eo[top++] = b->rstart[k];
            b->mark[b->rstart[k]] = stamp;
            while (top && !nul) {
                int s = b->eo[--top];
                if (g->final[s]) nul = true;
                for (int e = g->re_lo[s]; e < g->re_lo[s + 1]; e++)
                    if (b->nullable[b->owner[g->re_start[e]]] && b->mark[g->re_to[e]] != stamp) {
                        b->mark[g->re_to[e]] = stamp;
                        b->eo[top++] = g->re_to[e];
                    }
            }
            if (nul) { b->nullable[k] = 1; changed = true; }
        }
    }
    int *lc = NULL, n_lc = 0, cap_lc = 0, result = 0;
    int *lo = calloc((size_t)n_order + 1, sizeof(int));
    uint8_t *col = calloc((size_t)n_order, 1);
    int *ds = malloc(((size_t)n_order * 2 + 2) * sizeof(int));
    if (!lo || !col || !ds) { result = -1; goto done; }
    for (int k = 0; k < n_order; k++) {
        lo[k] = n_lc;
        stamp++;
        int top = 0;
        b->eo[top++] = b->rstart[k];
        b->mark[b->rstart[k]] = stamp;
        while (top) {
            int s = b->eo[--top];
            for (int e = g->re_lo[s]; e < g->re_lo[s + 1]; e++) {
                int c = b->owner[g->re_start[e]];
                if (!tgrow((void **)&lc, &cap_lc, n_lc + 1, sizeof(int))) { result = -1; goto done; }
                lc[n_lc++] = c;
                if (b->nullable[c] && b->mark[g->re_to[e]] != stamp) { b->mark[g->re_to[e]] = stamp; b->eo[top++] = g->re_to[e]; }
            }
        }
    }
    lo[n_order] = n_lc;
    for (int r0 = 0; r0 < n_order && !result; r0++) {
        if (col[r0]) continue;
        int top = 0;
        ds[top++] = r0; ds[top++] = lo[r0];
        col[r0] = 1;
        while (top && !result) {
            int r = ds[top - 2];
            if (ds[top - 1] < lo[r + 1]) {
                int c = lc[ds[top - 1]++];
                if (col[c] == 1) result = 1 + c;
                else if (!col[c]) { col[c] = 1; ds[top++] = c; ds[top++] = lo[c]; }
            } else {
                col[r] = 2;
                top -= 2;
            }
        }
    }
done:
    free(lc); free(lo); free(col); free(ds);
    return result;
}

/* Two states with the same finality and the same edges (sets and targets) have the same
 * future: canon[s] is the lowest such state (the mask builder's string slice compares
 * sets through it; the ends of a character class's UTF-8 branches are such twins). */
static bool same_edges(const gram_grammar *g, int a, int b) {
    if (g->final[a] != g->final[b] || g->be_lo[a + 1] - g->be_lo[a] != g->be_lo[b + 1] - g->be_lo[b] ||
        g->re_lo[a + 1] - g->re_lo[a] != g->re_lo[b + 1] - g->re_lo[b])
        return false;
    int nb = g->be_lo[a + 1] - g->be_lo[a], nr = g->re_lo[a + 1] - g->re_lo[a];
    int ea = g->be_lo[a], eb = g->be_lo[b], ra = g->re_lo[a], rb = g->re_lo[b];
    return !memcmp(g->be_set + ea, g->be_set + eb, (size_t)nb * sizeof(gram_bset)) &&
           !memcmp(g->be_to + ea, g->be_to + eb, (size_t)nb * sizeof(int)) &&
           !memcmp(g->re_start + ra, g->re_start + rb, (size_t)nr * sizeof(int)) &&
           !memcmp(g->re_to + ra, g->re_to + rb, (size_t)nr * sizeof(int)) &&
           !memcmp(g->re_tail + ra, g->re_tail + rb, (size_t)nr);
}

static int fill_canon(gram_grammar *g) {
    uint32_t mask = 1024;
    while (mask < 2u * (uint32_t)g->n_states) mask *= 2;
    mask--;
    int32_t *ht = malloc(((size_t)mask + 1) * sizeof(int32_t));
    g->canon = malloc(((size_t)g->n_states + 1) * sizeof(int32_t));
    if (!ht || !g->canon) { free(ht); return SW_ERR_NOMEM; }
    memset(ht, 0xff, ((size_t)mask + 1) * sizeof(int32_t));
    for (int s = 0; s < g->n_states; s++) {
        uint64_t h = 0x9E3779B97F4A7C15ull * (1 + g->final[s]);
        for (int e = g->be_lo[s]; e < g->be_lo[s + 1]; e++) {
            h = (h ^ g->be_set[e].w[0] ^ g->be_set[e].w[1] * 3 ^ g->be_set[e].w[2] * 5 ^ g->be_set[e].w[3] * 7) * 0xBF58476D1CE4E5B9ull;
            h = (h ^ (uint64_t)g->be_to[e]) * 0x94D049BB133111EBull;
        }
        for (int e = g->re_lo[s]; e < g->re_lo[s + 1]; e++)
            h = (h ^ (uint64_t)g->re_start[e] << 20 ^ (uint64_t)g->re_to[e]) * 0xBF58476D1CE4E5B9ull;
        uint32_t i = (uint32_t)(h ^ h >> 32) & mask;
        for (; ht[i] >= 0; i = (i + 1) & mask)
            if (same_edges(g, ht[i], s)) break;
        if (ht[i] < 0) ht[i] = s;
        g->canon[s] = ht[i];
    }
    free(ht);
    return SW_OK;
}

int gram_build(const gram_vocab *v, gram_ast *a, int root, gram_grammar **out, sw_err *err) {
    *out = NULL;
    if (a->oom) return sw_err_set(err, SW_ERR_NOMEM, "grammar: out of memory");
    int nr = a->n_r, rc = SW_ERR_NOMEM;
    bscratch b = {0};
    gram_grammar *g = NULL;
    b.ri = calloc((size_t)nr, sizeof(rinfo));
    b.order = malloc((size_t)nr * sizeof(int));
    b.newid = malloc((size_t)nr * sizeof(int));
    if (!b.ri || !b.order || !b.newid) goto fail;
    /* Rules reachable from the root, in discovery order, each built once. */
    for (int i = 0; i < nr; i++) b.newid[i] = -1;
    int n_order = 0;
    b.newid[root] = n_order;
    b.order[n_order++] = root;
    for (int k = 0; k < n_order; k++) {
        int r = b.order[k];
        if (a->rules[r].body < 0) { rc = sw_err_set(err, SW_ERR_FORMAT, "grammar: undefined rule '%s'", a->rules[r].name); goto fail; }
        int e0 = b.t.n_e;
        frag(&b.t, a, a->rules[r].body, &b.ri[k].s, &b.ri[k].e, 0);
        if (b.t.full) { rc = sw_err_set(err, SW_ERR_RANGE, "grammar: too large (over %d automaton states or nested too deeply)", GRAM_MAX_STATES); goto fail; }
        for (int i = e0; i < b.t.n_e; i++)
            if (b.t.e[i].kind == E_RULE) {
                int c = b.t.e[i].arg;
                if (b.newid[c] < 0) { b.newid[c] = n_order; b.order[n_order++] = c; }
                b.t.e[i].arg = b.newid[c];
            }
    }
    int ns = b.t.n_states;
    b.off = calloc((size_t)ns + 1, sizeof(int));
    b.stk = malloc((size_t)ns * sizeof(int));
    b.clos = malloc((size_t)ns * sizeof(int));
    b.cm = malloc((size_t)ns * sizeof(int));
    b.map = malloc((size_t)ns * sizeof(int));
    b.eo = malloc((size_t)ns * sizeof(int));
    b.mark = calloc((size_t)ns, sizeof(uint32_t));
    b.rstart = malloc((size_t)n_order * sizeof(int));
    b.owner = malloc((size_t)ns * sizeof(int));
    b.rfinal = malloc((size_t)ns);
    b.nullable = calloc((size_t)n_order, 1);
    if (!b.off || !b.stk || !b.clos || !b.cm || !b.map || !b.eo || !b.mark || !b.rstart || !b.owner || !b.rfinal || !b.nullable) goto fail;
    /* Thompson edges grouped by source (counting sort) */
    for (int i = 0; i < b.t.n_e; i++) b.off[b.t.e[i].from + 1]++;
    for (int i = 0; i < ns; i++) b.off[i + 1] += b.off[i];
    {
        tedge *sorted = malloc(((size_t)b.t.n_e + 1) * sizeof(tedge));
        if (!sorted) goto fail;
        memcpy(b.stk, b.off, (size_t)ns * sizeof(int)); /* fill cursors */
        for (int i = 0; i < b.t.n_e; i++) sorted[b.stk[b.t.e[i].from]++] = b.t.e[i];
        free(b.t.e);
        b.t.e = sorted;
        b.t.cap_e = b.t.n_e + 1;
    }
    int n_ne = 0, n_new = remove_eps(&b, n_order, &n_ne);
    if (n_new < 0) goto fail;
    g = calloc(1, sizeof *g);
    if (!g) goto fail;
    g->refs = 1;
    g->v = v;
    g->n_states = n_new;
    g->root = b.rstart[0];
    g->be_lo = calloc((size_t)n_new + 1, sizeof(int));
    g->re_lo = calloc((size_t)n_new + 1, sizeof(int));
    g->be_set = malloc(((size_t)n_ne + 1) * sizeof(gram_bset));
    g->be_to = malloc(((size_t)n_ne + 1) * sizeof(int));
    g->re_start = malloc(((size_t)n_ne + 1) * sizeof(int));
    g->re_to = malloc(((size_t)n_ne + 1) * sizeof(int));
    g->re_tail = malloc((size_t)n_ne + 1);
    g->first = calloc((size_t)n_new, sizeof(gram_bset));
    g->final = malloc((size_t)n_new + 1);
    if (!g->be_lo || !g->re_lo || !g->be_set || !g->be_to || !g->re_start || !g->re_to || !g->re_tail || !g->first || !g->final) goto fail;
    memcpy(g->final, b.rfinal, (size_t)n_new);
    fill_edges(g, &b, n_ne);
    if (fill_canon(g) != SW_OK) goto fail;
    int lr = check_left_recursion(g, &b, n_order);
    if (lr < 0) goto fail;
    if (lr > 0) {
        rc = sw_err_set(err, SW_ERR_UNSUPPORTED, "grammar: rule '%s' is left-recursive", a->rules[b.order[lr - 1]].name);
        goto fail;
    }
    g->n_rules = n_order;
    g->rule_start = malloc(((size_t)n_order + 1) * sizeof(int));
    g->state_rule = malloc(((size_t)n_new + 1) * sizeof(int));
    if (!g->rule_start || !g->state_rule) goto fail;
    memcpy(g->rule_start, b.rstart, (size_t)n_order * sizeof(int));
    g->rule_start[n_order] = n_new;
    memcpy(g->state_rule, b.owner, (size_t)n_new * sizeof(int));
    if (!(g->mc = gram_mask_cache_create(n_order))) goto fail;
    bscratch_free(&b);
    *out = g;
    return SW_OK;
fail:
    if (rc == SW_ERR_NOMEM) sw_err_set(err, rc, "grammar: out of memory");
    bscratch_free(&b);
    if (g) gram_grammar_release(g);
    return rc;
}
