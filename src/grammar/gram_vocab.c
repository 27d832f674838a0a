/* gram_vocab.c — a model's vocabulary as the mask builder needs it: every token with a
 * non-empty text, sorted by its bytes, and a byte trie over those texts stored in
 * preorder (node = one byte; `end` skips a whole subtree, so a walk that rejects a
 * prefix drops every token under it in one step; the tokens of a subtree are one
 * contiguous range of the sorted order). Tokens with empty text (control tokens) are
 * left out; the end-of-generation ids are kept apart. Built once per model.
 * Also two "slices" (after llguidance's slicer): the tokens whose text is whole UTF-8
 * characters that a JSON string may hold unescaped (no ", \ or control byte), and those
 * of ASCII letters and digits only; each as bitmaps by character count, with a trie over
 * the other tokens. A state where every character of the class leads to the same next
 * state (string content, maxLength counters, e-mail atoms, URI and hostname runs)
 * classifies the slice by counts and walks only that trie (gram_mask.c). */
#include "grammar/gram_internal.h"

#define GRAM_SLICE_CAP 16

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
    for (int k = 0; k < GRAM_N_SLICES; k++) { free(v->slice[k].cum); free(v->slice[k].rest); free(v->slice[k].rnodes); }
    free(v);
}

int gram_vocab_n_vocab(const gram_vocab *v) { return v->n_vocab; }
int gram_vocab_n_words(const gram_vocab *v) { return v->n_words; }

/* Preorder trie over the texts of the sorted tokens list[0..n) (ascending sorted
 * indices; NULL = all of them); node token ranges index list. */
static int build_trie(const gram_vocab *v, const int32_t *list, int n_list, gram_tnode **out, int *n_out) {
    int cap = n_list * 2 + 16, n = 0;
    int32_t *open = malloc(((size_t)v->max_len + 2) * sizeof(int32_t));
    gram_tnode *nodes = malloc((size_t)cap * sizeof(gram_tnode));
    if (!nodes || !open) { free(open); free(nodes); return SW_ERR_NOMEM; }
    int depth = 0;
    const char *p = NULL;
    int pl = 0;
    for (int i = 0; i < n_list; i++) {
        int32_t si = list ? list[i] : i;
        const char *t = v->bytes + v->sorted_off[si];
        int len = (int)(v->sorted_off[si + 1] - v->sorted_off[si]);
        int c = 0;
        if (p)
            while (c < pl && c < len && p[c] == t[c]) c++;
        p = t;
        pl = len;
        for (; depth > c; depth--) {
            nodes[open[depth]].end = n;
            nodes[open[depth]].sub_hi = i;
        }
        if (c == len) { nodes[open[len]].tok_hi = i + 1; continue; } /* same text again */
        for (int d = c + 1; d <= len; d++) {
            if (n == cap) {
                cap *= 2;
                gram_tnode *q = realloc(nodes, (size_t)cap * sizeof(gram_tnode));
                if (!q) { free(open); free(nodes); return SW_ERR_NOMEM; }
                nodes = q;
            }
            nodes[n] = (gram_tnode){(uint8_t)t[d - 1], (uint16_t)d, i, d == len ? i + 1 : i, 0, 0};
            open[d] = n++;
        }
        depth = len;
    }
    for (; depth > 0; depth--) {
        nodes[open[depth]].end = n;
        nodes[open[depth]].sub_hi = n_list;
    }
    free(open);
    *out = nodes;
    *n_out = n;
    return SW_OK;
}

/* Characters in t[0..len) when it is whole UTF-8 characters that a JSON string holds
 * unescaped (ASCII 0x20..0x7F but " and \, or any well-formed non-ASCII character);
 * else 0. */
static int slice_chars(const unsigned char *t, int len) {
    int n = 0;
    for (int i = 0; i < len; n++) {
        unsigned b = t[i];
        if (b < 0x80) {
            if (b < 0x20 || b == '"' || b == '\\') return 0;
            i++;
            continue;
        }
        int k = b >= 0xC2 && b <= 0xDF ? 1 : b >= 0xE0 && b <= 0xEF ? 2 : b >= 0xF0 && b <= 0xF4 ? 3 : -1;
        if (k < 0 || i + k >= len) return 0;
        unsigned lo = 0x80, hi = 0xBF; /* the second byte's range (Unicode table 3-7) */
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
        if (t[i + 1] < lo || t[i + 1] > hi) return 0;
        for (int j = 2; j <= k; j++)
            if (t[i + j] < 0x80 || t[i + j] > 0xBF) return 0;
        i += k + 1;
    }
    return n;
}

/* Characters in t[0..len) when all are ASCII letters or digits; else 0. */
static int alnum_chars(const unsigned char *t, int len) {
    for (int i = 0; i < len; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z'))) return 0;
    return len;
}

/* Slice k: cum[c] = its tokens of at most c (<= GRAM_SLICE_CAP) characters (bitmaps of ids), and the trie of
 * the other tokens. */
static int build_slice(gram_vocab *v, int k) {
    gram_slice *sl = &v->slice[k];
    int *cnt = malloc((size_t)v->n_sorted * sizeof(int) + 4);
    if (!cnt || !(sl->rest = malloc((size_t)v->n_sorted * sizeof(int32_t) + 4))) { free(cnt); return SW_ERR_NOMEM; }
    int mx = 0;
    for (int i = 0; i < v->n_sorted; i++) {
        const unsigned char *t = (const unsigned char *)v->bytes + v->sorted_off[i];
        int len = (int)(v->sorted_off[i + 1] - v->sorted_off[i]);
        cnt[i] = k == GRAM_SLICE_STRING ? slice_chars(t, len) : alnum_chars(t, len);
        if (cnt[i] > GRAM_SLICE_CAP) cnt[i] = 0; /* long ones are walked: the chain stays short */
        if (cnt[i] > mx) mx = cnt[i];
        if (!cnt[i]) sl->rest[sl->n_rest++] = i;
    }
    sl->max = mx;
    sl->cum = calloc(((size_t)mx + 1) * (size_t)v->n_words, sizeof(uint32_t));
    if (!sl->cum) { free(cnt); return SW_ERR_NOMEM; }
    for (int i = 0; i < v->n_sorted; i++) {
        if (!cnt[i]) continue;
        uint32_t *row = sl->cum + (size_t)cnt[i] * (size_t)v->n_words;
        int32_t id = v->sorted_id[i];
        row[id >> 5] |= 1u << (id & 31);
    }
    for (int c = 1; c <= mx; c++) {
        uint32_t *row = sl->cum + (size_t)c * (size_t)v->n_words, *prev = row - v->n_words;
        for (int j = 0; j < v->n_words; j++) row[j] |= prev[j];
    }
    free(cnt);
    return build_trie(v, sl->rest, sl->n_rest, &sl->rnodes, &sl->n_rnodes);
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
    if (build_trie(v, NULL, v->n_sorted, &v->nodes, &v->n_nodes) != SW_OK || build_slice(v, GRAM_SLICE_STRING) != SW_OK ||
        build_slice(v, GRAM_SLICE_ALNUM) != SW_OK ||
        !(v->shared = gram_shared_create()))
        goto oom;
    *out = v;
    return SW_OK;
oom:
    free(s);
    gram_vocab_destroy(v);
    return sw_err_set(err, SW_ERR_NOMEM, "grammar vocab: out of memory");
}
