/* gram_matcher.c — one sequence's parse state under a grammar: the current set of
 * stacks (items in a private frame pool), advanced byte by byte or token by token, and
 * the per-step mask (gram_mask.c) with the end-of-generation tokens allowed exactly when
 * the text so far is a complete match. The pool only grows as the sequence advances; it
 * is compacted (live frames copied to a fresh pool) when it gets large. A lazy matcher
 * (tool_choice auto) lets text through freely until its trigger string shows up, then
 * runs the grammar from the trigger on, and is free again once the grammar has matched
 * and can take nothing more. Also the grammar's reference counting. */
#include "grammar/gram_internal.h"
#include <stdatomic.h>

struct gram_matcher {
    gram_grammar *g;
    gram_pool pool;
    gram_set cur, tmp, save;
    gram_walker *w;
    /* lazy mode: trigger != NULL; free = the grammar is not engaged; tail = the last
     * (trigger length - 1) bytes of free text, where a trigger may be starting */
    char *trigger;
    size_t trig_len;
    bool free;
    char *tail;
    size_t tail_len;
};

void gram_grammar_retain(gram_grammar *g) { atomic_fetch_add_explicit((_Atomic int *)&g->refs, 1, memory_order_relaxed); }

void gram_grammar_release(gram_grammar *g) {
    if (!g || atomic_fetch_sub_explicit((_Atomic int *)&g->refs, 1, memory_order_acq_rel) != 1) return;
    free(g->be_lo); free(g->be_set); free(g->be_to); free(g->first); free(g->re_lo);
    free(g->re_start); free(g->re_to); free(g->re_tail); free(g->final); free(g->canon); free(g->rule_start); free(g->state_rule);
    gram_mask_cache_free(g->mc);
    free(g);
}

int gram_grammar_n_states(const gram_grammar *g) { return g->n_states; }

void gram_matcher_destroy(gram_matcher *m) {
    if (!m) return;
    gram_pool_free(&m->pool);
    gram_set_free(&m->cur);
    gram_set_free(&m->tmp);
    gram_set_free(&m->save);
    gram_walker_destroy(m->w);
    gram_grammar_release(m->g);
    free(m->trigger);
    free(m->tail);
    free(m);
}

int gram_matcher_create(gram_grammar *g, gram_matcher **out, sw_err *err) {
    *out = NULL;
    gram_matcher *m = calloc(1, sizeof *m);
    if (!m) return sw_err_set(err, SW_ERR_NOMEM, "grammar matcher: out of memory");
    gram_grammar_retain(g);
    m->g = g;
    int rc = gram_pool_init(&m->pool);
    if (rc == SW_OK) rc = gram_start(g, &m->pool, &m->cur);
    if (rc != SW_OK) {
        gram_matcher_destroy(m);
        return sw_err_set(err, rc, "grammar matcher: %s", rc == SW_ERR_NOMEM ? "out of memory" : "cannot start");
    }
    *out = m;
    return SW_OK;
}

/* Copies the live stacks into a fresh pool. */
static int compact(gram_matcher *m) {
    gram_pool np;
    if (gram_pool_init(&np) != SW_OK) return SW_ERR_NOMEM;
    /* frames are created parent-first, so a parent's id is below its child's: copy every
     * frame reachable from an item in id order through a remap table. */
    int32_t *remap = malloc((size_t)m->pool.n * sizeof(int32_t));
    uint8_t *live = calloc((size_t)m->pool.n, 1);
    if (!remap || !live) { free(remap); free(live); gram_pool_free(&np); return SW_ERR_NOMEM; }
    for (int i = 0; i < m->cur.n; i++)
        for (int32_t f = m->cur.items[i]; f >= 0 && !live[f]; f = m->pool.par[f]) live[f] = 1;
    for (int f = 0; f < m->pool.n; f++) {
        if (!live[f]) continue;
        int32_t par = m->pool.par[f];
        if ((remap[f] = gram_pool_frame(&np, m->pool.st[f], par >= 0 ? remap[par] : par)) < 0) {
            free(remap); free(live); gram_pool_free(&np);
            return SW_ERR_NOMEM;
        }
    }
    for (int i = 0; i < m->cur.n; i++) m->cur.items[i] = remap[m->cur.items[i]];
    free(remap);
    free(live);
    gram_pool_free(&m->pool);
    m->pool = np;
    return SW_OK;
}

static int set_copy(gram_set *dst, const gram_set *src) {
    if (dst->cap < src->n) {
        int32_t *v = realloc(dst->items, (size_t)(src->n + 16) * sizeof(int32_t));
        if (!v) return SW_ERR_NOMEM;
        dst->items = v;
        dst->cap = src->n + 16;
    }
    if (src->n) memcpy(dst->items, src->items, (size_t)src->n * sizeof(int32_t));
    dst->n = src->n;
    dst->acc = src->acc;
    dst->sent = src->sent;
    return SW_OK;
}

bool gram_matcher_accept_bytes(gram_matcher *m, const char *s, size_t n) {
    int mark = m->pool.n;
    if (n == 0) return true;
    if (set_copy(&m->save, &m->cur) != SW_OK) return false;
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        if (gram_advance(m->g, &m->pool, &m->cur, (unsigned char)s[i], &m->tmp) != SW_OK ||
            (m->tmp.n == 0 && !m->tmp.acc)) { ok = false; break; }
        gram_set t = m->cur; m->cur = m->tmp; m->tmp = t;
    }
    if (!ok) {
        gram_pool_truncate(&m->pool, mark);
        set_copy(&m->cur, &m->save); /* cannot fail: cur had room for it before */
        return false;
    }
    if (m->pool.n > (1 << 16) && m->pool.n > 8 * (m->cur.n + 64)) compact(m);
    return true;
}

int gram_matcher_create_lazy(gram_grammar *g, const char *trigger, gram_matcher **out, sw_err *err) {
    size_t n = trigger ? strlen(trigger) : 0;
    if (n == 0) return sw_err_set(err, SW_ERR_ARG, "grammar matcher: empty trigger");
    int rc = gram_matcher_create(g, out, err);
    if (rc != SW_OK) return rc;
    gram_matcher *m = *out;
    m->trigger = strdup(trigger);
    m->tail = malloc(n);
    if (!m->trigger || !m->tail) {
        gram_matcher_destroy(m);
        *out = NULL;
        return sw_err_set(err, SW_ERR_NOMEM, "grammar matcher: out of memory");
    }
    m->trig_len = n;
    m->free = true;
    return SW_OK;
}

/* The grammar matched and can take nothing more: free text again, from a fresh start. */
static void lazy_release(gram_matcher *m) {
    if (!m->trigger || m->cur.n != 0 || !m->cur.acc) return;
    gram_pool_truncate(&m->pool, 0);
    if (gram_start(m->g, &m->pool, &m->cur) != SW_OK) return; /* stays engaged (and dead) */
    m->free = true;
    m->tail_len = 0;
}

/* Free text s[0..n): scans for the trigger; once found, engages the grammar on the
 * trigger and the bytes after it. False (nothing changed) if the grammar rejects them. */
static bool lazy_free_bytes(gram_matcher *m, const char *s, size_t n) {
    size_t tl = m->trig_len;
    for (size_t i = 0; i < n; i++) {
        /* does the trigger end at s[i]? (tail holds the free bytes just before s) */
        size_t have = m->tail_len + i + 1;
        if (have >= tl) {
            bool hit = true;
            for (size_t k = 0; k < tl && hit; k++) {
                size_t pos = have - tl + k; /* index in tail ++ s[0..i] */
                char c = pos < m->tail_len ? m->tail[pos] : s[pos - m->tail_len];
                hit = c == m->trigger[k];
            }
            if (hit) {
                if (!gram_matcher_accept_bytes(m, m->trigger, tl)) return false;
                if (!gram_matcher_accept_bytes(m, s + i + 1, n - i - 1)) {
                    gram_pool_truncate(&m->pool, 0);
                    gram_start(m->g, &m->pool, &m->cur);
                    return false;
                }
                m->free = false;
                m->tail_len = 0;
                lazy_release(m);
                return true;
            }
        }
    }
    /* keep the last tl-1 bytes of tail ++ s */
    size_t keep = tl - 1, tot = m->tail_len + n;
    char buf[256];
    char *tmp = keep <= sizeof buf ? buf : malloc(keep);
    if (!tmp) return false;
    size_t k = tot < keep ? tot : keep;
    for (size_t j = 0; j < k; j++) {
        size_t pos = tot - k + j;
        tmp[j] = pos < m->tail_len ? m->tail[pos] : s[pos - m->tail_len];
    }
    memcpy(m->tail, tmp, k);
    m->tail_len = k;
    if (tmp != buf) free(tmp);
    return true;
}

bool gram_matcher_accept_token(gram_matcher *m, int32_t id) {
    const gram_vocab *v = m->g->v;
    if (!v) return false;
    for (int i = 0; i < v->n_eog; i++)
        if (v->eog[i] == id) return gram_matcher_is_accepting(m);
    if (id < 0 || id >= v->n_vocab) return false;
    int32_t si = v->rev[id];
    if (si < 0) return m->trigger && m->free; /* a token with no text (control) other than EOG */
    const char *s = v->bytes + v->sorted_off[si];
    size_t n = v->sorted_off[si + 1] - v->sorted_off[si];
    if (m->trigger && m->free) return lazy_free_bytes(m, s, n);
    if (!gram_matcher_accept_bytes(m, s, n)) return false;
    lazy_release(m);
    return true;
}

bool gram_matcher_is_accepting(const gram_matcher *m) { return (m->trigger && m->free) || m->cur.acc; }
int gram_matcher_n_vocab(const gram_matcher *m) { return m->g->v ? m->g->v->n_vocab : 0; }
bool gram_matcher_is_dead(const gram_matcher *m) { return !(m->trigger && m->free) && m->cur.n == 0 && !m->cur.acc; }

int gram_matcher_fill_mask(gram_matcher *m, uint32_t *mask, sw_err *err) {
    const gram_vocab *v = m->g->v;
    if (!v) return sw_err_set(err, SW_ERR_ARG, "grammar: compiled without a vocabulary");
    if (m->trigger && m->free) { /* free text: every token */
        memset(mask, 0xff, (size_t)v->n_words * sizeof(uint32_t));
        return SW_OK;
    }
    if (!m->w && gram_walker_create(m->g, &m->w) != SW_OK) return sw_err_set(err, SW_ERR_NOMEM, "grammar mask: out of memory");
    memset(mask, 0, (size_t)v->n_words * sizeof(uint32_t));
    for (int i = 0; i < m->cur.n; i++) {
        int rc = gram_mask_item(m->g, m->w, &m->pool, m->cur.items[i], mask, err);
        if (rc != SW_OK) return rc;
    }
    if (m->cur.acc)
        for (int i = 0; i < v->n_eog; i++) mask[v->eog[i] >> 5] |= 1u << (v->eog[i] & 31);
    return SW_OK;
}
