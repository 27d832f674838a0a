/* gram_vocab.c — a model's vocabulary as the mask builder needs it: every token with a
 * non-empty text, sorted by its bytes, and a byte trie over those texts stored in
 * preorder (node = one byte; `end` skips a whole subtree, so a walk that rejects a
 * prefix drops every token under it in one step; the tokens of a subtree are one
 * contiguous range of the sorted order). Tokens with empty text (control tokens) are
 * left out; the end-of-generation ids are kept apart. Built once per model. */
#include "grammar/gram_internal.h"

typedef struct vsort { const char *bytes; uint32_t off, len; int32_t id; } vsort;

static int cmp_text(const void *x, const void *y) {
    const vsort *a = x, *b = y;
    uint32_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->bytes + a->off, b->bytes + b->off, n);
    if (c) return c;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

void gram_vocab_destroy(gram_vocab *v) {
    if (!v) return;
    gram_shared_free(v->shared);
    free(v->sorted_id); free(v->rev); free(v->sorted_off); free(v->bytes); free(v->nodes); free(v->eog);
    free(v);
}

int gram_vocab_n_vocab(const gram_vocab *v) { return v->n_vocab; }
int gram_vocab_n_words(const gram_vocab *v) { return v->n_words; }

/* Preorder trie over the sorted texts. */
static int build_trie(gram_vocab *v) {
    int cap = v->n_sorted * 2 + 16, n = 0;
    int32_t *open = malloc(((size_t)v->max_len + 2) * sizeof(int32_t));
    v->nodes = malloc((size_t)cap * sizeof(gram_tnode));
    if (!v->nodes || !open) { free(open); return SW_ERR_NOMEM; }
    int depth = 0;
    for (int i = 0; i < v->n_sorted; i++) {
        const char *t = v->bytes + v->sorted_off[i];
        int len = (int)(v->sorted_off[i + 1] - v->sorted_off[i]);
        int c = 0;
        if (i > 0) {
            const char *p = v->bytes + v->sorted_off[i - 1];
            int pl = (int)(v->sorted_off[i] - v->sorted_off[i - 1]);
            while (c < pl && c < len && p[c] == t[c]) c++;
        }
        for (; depth > c; depth--) {
            v->nodes[open[depth]].end = n;
            v->nodes[open[depth]].sub_hi = i;
        }
        if (c == len) { v->nodes[open[len]].tok_hi = i + 1; continue; } /* same text again */
        for (int d = c + 1; d <= len; d++) {
            if (n == cap) {
                cap *= 2;
                gram_tnode *q = realloc(v->nodes, (size_t)cap * sizeof(gram_tnode));
                if (!q) { free(open); return SW_ERR_NOMEM; }
                v->nodes = q;
            }
            v->nodes[n] = (gram_tnode){(uint8_t)t[d - 1], (uint16_t)d, i, d == len ? i + 1 : i, 0, 0};
            open[d] = n++;
        }
        depth = len;
    }
    for (; depth > 0; depth--) {
        v->nodes[open[depth]].end = n;
        v->nodes[open[depth]].sub_hi = v->n_sorted;
    }
    v->n_nodes = n;
    free(open);
    return SW_OK;
}

int gram_vocab_create(const tok *t, gram_vocab **out, sw_err *err) {
    *out = NULL;
    int nv = tok_n_vocab(t);
    gram_vocab *v = calloc(1, sizeof *v);
    vsort *s = NULL;
    if (!v) return sw_err_set(err, SW_ERR_NOMEM, "grammar vocab: out of memory");
    v->n_vocab = nv;
    v->n_words = (nv + 31) / 32;
    size_t cap = (size_t)nv * 8 + 64, used = 0;
    v->bytes = malloc(cap);
    s = malloc((size_t)nv * sizeof *s + 1);
    v->eog = malloc((size_t)nv * sizeof(int32_t) + 4);
    if (!v->bytes || !s || !v->eog) goto oom;
    int ns = 0;
    for (int id = 0; id < nv; id++) {
        if (tok_is_eog(t, id)) v->eog[v->n_eog++] = id;
        for (;;) {
            int room = (int)((cap - used) > 65535 ? 65535 : cap - used);
            int n = tok_piece(t, id, false, v->bytes + used, room);
            if (n < 0) n = 0;
            if (n <= room) {
                if (n > 0) {
                    s[ns++] = (vsort){NULL, (uint32_t)used, (uint32_t)n, id};
                    used += (size_t)n;
                    if (n > v->max_len) v->max_len = n;
                }
                break;
            }
            if (n > 65535) break; /* absurdly long token: never allowed */
            cap = cap * 2 + (size_t)n;
            char *q = realloc(v->bytes, cap);
            if (!q) goto oom;
            v->bytes = q;
        }
    }
    for (int i = 0; i < ns; i++) s[i].bytes = v->bytes;
    qsort(s, (size_t)ns, sizeof *s, cmp_text);
    /* re-pack the texts in sorted order so a sorted token's text is off[i]..off[i+1] */
    char *packed = malloc(used + 1);
    v->sorted_id = malloc((size_t)ns * sizeof(int32_t) + 4);
    v->sorted_off = malloc(((size_t)ns + 1) * sizeof(uint32_t));
    if (!packed || !v->sorted_id || !v->sorted_off) { free(packed); goto oom; }
    size_t o = 0;
    for (int i = 0; i < ns; i++) {
        memcpy(packed + o, v->bytes + s[i].off, s[i].len);
        v->sorted_off[i] = (uint32_t)o;
        v->sorted_id[i] = s[i].id;
        o += s[i].len;
    }
    v->sorted_off[ns] = (uint32_t)o;
    free(v->bytes);
    v->bytes = packed;
    v->n_sorted = ns;
    free(s);
    s = NULL;
    if (!(v->rev = malloc((size_t)nv * sizeof(int32_t) + 4))) goto oom;
    for (int i = 0; i < nv; i++) v->rev[i] = -1;
    for (int i = 0; i < ns; i++) v->rev[v->sorted_id[i]] = i;
    if (build_trie(v) != SW_OK || !(v->shared = gram_shared_create())) goto oom;
    *out = v;
    return SW_OK;
oom:
    free(s);
    gram_vocab_destroy(v);
    return sw_err_set(err, SW_ERR_NOMEM, "grammar vocab: out of memory");
}
