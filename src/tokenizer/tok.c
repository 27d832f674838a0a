/* tok.c — the tokenizer built from a GGUF file's `tokenizer.ggml.*` metadata: vocab and
 * text->id hash table, special-token rules (BOS/EOS/EOT, end-of-generation set, which
 * strings are split out before tokenizing: a trie walked once over the text), the
 * per-call word memo, SentencePiece-style BPE (the `llama` model: merge the adjacent pair
 * whose concatenation is the best-scored token, bigram priority queue, byte fallback),
 * and detokenization (pieces, streaming UTF-8 reassembly). Byte-level BPE (`gpt2`) lives
 * in bpe.c, WordPiece (`bert`) in wpm.c, NFC in nfc.c. Behaviour follows llama.cpp's
 * llama-vocab.cpp, and Hugging Face's tokenizers where they differ, so that ids match the
 * reference on every vocab test vector. */
#include "tokenizer/tok_impl.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* the short-string hash inlined into the lookups */
#include <xxhash.h>

#define TOK_MAX_VOCAB (1 << 24)
#define TOK_MAX_TOKEN_LEN (1 << 16)
#define TOK_MAX_TEXT ((size_t)1 << 28) /* 256 MiB: escaped SentencePiece text stays < 2^31 */

/* ---- small containers ---------------------------------------------------------- */

int tok_vec_push(tok_vec *o, int32_t id) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *v = realloc(o->v, cap * sizeof *v);
        if (!v) return SW_ERR_NOMEM;
        o->v = v; o->cap = cap;
    }
    o->v[o->n++] = id;
    return SW_OK;
}

int tok_memo_get(const tok_memo *m, const char *s, size_t n, uint64_t h, tok_vec *out) {
    if (!m->slot || n == 0 || n > TOK_MEMO_WORD) return 0;
    for (uint32_t i = (uint32_t)h & m->mask;; i = (i + 1) & m->mask) {
        const tok_memo_slot *e = &m->slot[i];
        if (e->len == 0) return 0;
        if (e->h == h && e->len == n && memcmp(m->bytes + e->off, s, n) == 0) {
            for (uint32_t k = 0; k < e->n; k++) {
                int rc = tok_vec_push(out, m->ids[e->ids + k]);
                if (rc) return rc;
            }
            return 1;
        }
    }
}

static int memo_grow(tok_memo *m) {
    uint32_t size = m->slot ? 2 * (m->mask + 1) : 1024;
    tok_memo_slot *ns = calloc(size, sizeof *ns);
    if (!ns) return SW_ERR_NOMEM;
    for (uint32_t i = 0; m->slot && i <= m->mask; i++) {
        if (m->slot[i].len == 0) continue;
        uint32_t j = (uint32_t)m->slot[i].h & (size - 1);
        while (ns[j].len) j = (j + 1) & (size - 1);
        ns[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = ns;
    m->mask = size - 1;
    return SW_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return SW_OK;
    size_t c = *cap ? *cap : 4096;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return SW_ERR_NOMEM;
    *p = q;
    *cap = c;
    return SW_OK;
}

int tok_memo_put(tok_memo *m, const char *s, size_t n, uint64_t h, const int32_t *ids, size_t k) {
    if (n == 0 || n > TOK_MEMO_WORD || m->used >= TOK_MEMO_MAX) return SW_OK;
    int rc = SW_OK;
    if (!m->slot || 2 * (m->used + 1) > m->mask + 1) rc = memo_grow(m);
    if (!rc) rc = grow((void **)&m->bytes, &m->bcap, m->nbytes + n, 1);
    if (!rc) rc = grow((void **)&m->ids, &m->icap, m->nids + k, sizeof *m->ids);
    if (rc) return rc;
    uint32_t i = (uint32_t)h & m->mask;
    while (m->slot[i].len) i = (i + 1) & m->mask;
    m->slot[i] = (tok_memo_slot){.h = h, .off = (uint32_t)m->nbytes, .len = (uint32_t)n, .ids = (uint32_t)m->nids, .n = (uint32_t)k};
    memcpy(m->bytes + m->nbytes, s, n);
    memcpy(m->ids + m->nids, ids, k * sizeof *ids);
    m->nbytes += n;
    m->nids += k;
    m->used++;
    return SW_OK;
}

void tok_memo_free(tok_memo *m) {
    free(m->slot); free(m->bytes); free(m->ids);
    memset(m, 0, sizeof *m);
}

static bool bigram_before(const tok_bigram *a, const tok_bigram *b) {
    return a->key < b->key || (a->key == b->key && a->left < b->left);
}

int tok_heap_push(tok_heap *h, tok_bigram b) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        tok_bigram *v = realloc(h->v, cap * sizeof *v);
        if (!v) return SW_ERR_NOMEM;
        h->v = v; h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return SW_OK;
}

tok_bigram tok_heap_pop(tok_heap *h) {
    tok_bigram top = h->v[0], last = h->v[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&h->v[c + 1], &h->v[c])) c++;
        if (!bigram_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n) h->v[i] = last;
    return top;
}

/* ---- vocab ------------------------------------------------------------------------ */

int32_t tok_lookup(const tok *t, const char *s, size_t n) {
    uint64_t hh = XXH3_64bits(s, n);
    uint32_t tag = (uint32_t)(hh >> 32);
    for (uint32_t h = (uint32_t)hh & t->hmask;; h = (h + 1) & t->hmask) {
        const struct tok_hslot *e = &t->hslot[h];
        if (e->id < 0) return -1;
        if (e->tag == tag && e->len == n && memcmp(t->blob + e->off, s, n) == 0) return e->id;
    }
}

/* Inserts every token; a text seen twice maps to its last id (as llama.cpp's map does). */
static int build_hash(tok *t) {
    uint32_t size = 1;
    while (size < 2u * (uint32_t)t->n_vocab) size <<= 1;
    t->hslot = malloc(size * sizeof *t->hslot);
    if (!t->hslot) return SW_ERR_NOMEM;
    for (uint32_t i = 0; i < size; i++) t->hslot[i].id = -1;
    t->hmask = size - 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = t->blob + t->off[id];
        uint64_t hh = XXH3_64bits(s, t->len[id]);
        struct tok_hslot e = {.id = id, .off = t->off[id], .len = t->len[id], .tag = (uint32_t)(hh >> 32)};
        for (uint32_t h = (uint32_t)hh & t->hmask;; h = (h + 1) & t->hmask) {
            struct tok_hslot *o = &t->hslot[h];
            if (o->id < 0 || (o->len == e.len && memcmp(t->blob + o->off, s, e.len) == 0)) {
                *o = e;
                break;
            }
        }
    }
    return SW_OK;
}

static int load_tokens(tok *t, const gguf_ctx *ctx, sw_err *err) {
    gguf_type et;
    uint64_t n;
    if (gguf_get_arr_info(ctx, "tokenizer.ggml.tokens", &et, &n) != SW_OK || et != GGUF_TYPE_STRING)
        return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens missing or not a string array");
    if (n < 1 || n > TOK_MAX_VOCAB)
        return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: vocab size %llu out of range", (unsigned long long)n);
    t->n_vocab = (int)n;
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    t->score = calloc(n, sizeof *t->score);
    t->ttype = malloc(n);
    t->flags = calloc(n, 1);
    if (!t->off || !t->len || !t->score || !t->ttype || !t->flags) return sw_err_set(err, SW_ERR_NOMEM, "tokenizer: out of memory");
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        if (!gguf_get_arr_str(ctx, "tokenizer.ggml.tokens", i, &l))
            return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: token %llu unreadable", (unsigned long long)i);
        if (l > TOK_MAX_TOKEN_LEN)
            return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: token %llu is %zu bytes long", (unsigned long long)i, l);
        t->off[i] = (uint32_t)total;
        t->len[i] = (uint32_t)l;
        if ((int)l > t->max_token_len) t->max_token_len = (int)l;
        total += l;
        if (total > UINT32_MAX) return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: token texts too large");
    }
    t->blob = malloc(total ? total : 1);
    if (!t->blob) return sw_err_set(err, SW_ERR_NOMEM, "tokenizer: out of memory");
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        const char *s = gguf_get_arr_str(ctx, "tokenizer.ggml.tokens", i, &l);
        memcpy(t->blob + t->off[i], s, l);
    }

    uint64_t m;
    if (gguf_get_arr_info(ctx, "tokenizer.ggml.scores", &et, &m) == SW_OK) {
        if (m != n) return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: %llu scores for %llu tokens", (unsigned long long)m, (unsigned long long)n);
        if (gguf_get_arr_f32(ctx, "tokenizer.ggml.scores", 0, n, t->score) != SW_OK)
            return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores is not numeric");
    }
    memset(t->ttype, TOK_TTYPE_NORMAL, n);
    if (gguf_get_arr_info(ctx, "tokenizer.ggml.token_type", &et, &m) == SW_OK) {
        if (m != n) return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: %llu token types for %llu tokens", (unsigned long long)m, (unsigned long long)n);
        int32_t buf[1024];
        for (uint64_t i = 0; i < n; i += 1024) {
            uint64_t k = n - i < 1024 ? n - i : 1024;
            if (gguf_get_arr_i32(ctx, "tokenizer.ggml.token_type", i, k, buf) != SW_OK)
                return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: tokenizer.ggml.token_type is not an integer array");
            for (uint64_t j = 0; j < k; j++)
                t->ttype[i + j] = (buf[j] >= TOK_TTYPE_NORMAL && buf[j] <= TOK_TTYPE_BYTE) ? (uint8_t)buf[j] : TOK_TTYPE_NORMAL;
        }
    }
    return SW_OK;
}

/* Reads an optional token-id key; absent -> def, out of range -> -1. */
static int32_t get_id(const tok *t, const gguf_ctx *ctx, const char *key, int32_t def) {
    uint32_t v;
    int rc = gguf_get_u32(ctx, key, &v);
    if (rc == SW_ERR_NOTFOUND) return def < t->n_vocab ? def : -1;
    if (rc != SW_OK || v >= (uint32_t)t->n_vocab) {
        sw_warn("tokenizer: %s is invalid or out of range; ignored", key);
        return -1;
    }
    return (int32_t)v;
}

static int cmp_special(const void *a, const void *b, void *arg) {
    const tok *t = arg;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->len[x] != t->len[y]) return t->len[x] > t->len[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static bool ieq_prefix(const char *s, const char *name) {
    for (; *name; s++, name++)
        if (tolower((unsigned char)*s) != *name) return false;
    return true;
}

static uint64_t edge_hash(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33;
    return k;
}

static int32_t trie_child(const tok *t, int32_t node, uint8_t b) {
    uint64_t k = ((uint64_t)node << 8 | b) + 1;
    for (uint64_t h = edge_hash(k) & t->trie_emask;; h = (h + 1) & t->trie_emask) {
        const struct tok_trie_edge *e = &t->trie_edge[h];
        if (e->key == k) return e->child;
        if (e->key == 0) return -1;
    }
}

/* Builds the trie of the special tokens' texts (in t->special order, so of two tokens with
 * the same text the first in that order is the one found). */
static int build_trie(tok *t) {
    size_t total = 1;
    for (int i = 0; i < t->n_special; i++) total += t->len[t->special[i]];
    if (total > INT32_MAX / 2) return SW_ERR_NOMEM; /* node ids are int32 */
    uint64_t size = 16;
    while (size < 2 * total) size <<= 1;
    t->trie_edge = calloc(size, sizeof *t->trie_edge);
    t->trie_term_all = malloc(total * sizeof *t->trie_term_all);
    t->trie_term_user = malloc(total * sizeof *t->trie_term_user);
    if (!t->trie_edge || !t->trie_term_all || !t->trie_term_user) return SW_ERR_NOMEM;
    t->trie_emask = size - 1;
    t->trie_term_all[0] = t->trie_term_user[0] = -1;
    int32_t n_nodes = 1;
    for (int i = 0; i < t->n_special; i++) {
        int32_t id = t->special[i], node = 0;
        const uint8_t *s = (const uint8_t *)t->blob + t->off[id];
        bool user = t->ttype[id] == TOK_TTYPE_USER_DEFINED;
        t->start_all[s[0] / 64] |= 1ull << (s[0] % 64);
        if (user) t->start_user[s[0] / 64] |= 1ull << (s[0] % 64);
        for (uint32_t j = 0; j < t->len[id]; j++) {
            int32_t c = trie_child(t, node, s[j]);
            if (c < 0) {
                uint64_t k = ((uint64_t)node << 8 | s[j]) + 1, h = edge_hash(k) & t->trie_emask;
                while (t->trie_edge[h].key) h = (h + 1) & t->trie_emask;
                c = n_nodes++;
                t->trie_edge[h] = (struct tok_trie_edge){.key = k, .child = c};
                t->trie_term_all[c] = t->trie_term_user[c] = -1;
            }
            node = c;
        }
        if (t->trie_term_all[node] < 0) t->trie_term_all[node] = id;
        if (user && t->trie_term_user[node] < 0) t->trie_term_user[node] = id;
    }
    return SW_OK;
}

/* Which tokens are split out of the text before tokenizing (longest first), and the
 * lstrip/rstrip attributes llama.cpp gives Phi-3's special tokens. */
static int setup_specials(tok *t, const gguf_ctx *ctx) {
    int n = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->ttype[i];
        if ((ty == TOK_TTYPE_CONTROL || ty == TOK_TTYPE_USER_DEFINED || ty == TOK_TTYPE_UNKNOWN) && t->len[i] > 0) n++;
    }
    t->special = malloc((n ? n : 1) * sizeof *t->special);
    if (!t->special) return SW_ERR_NOMEM;
    t->n_special = 0;
    for (int i = 0; i < t->n_vocab; i++) {
        uint8_t ty = t->ttype[i];
        if ((ty == TOK_TTYPE_CONTROL || ty == TOK_TTYPE_USER_DEFINED || ty == TOK_TTYPE_UNKNOWN) && t->len[i] > 0)
            t->special[t->n_special++] = i;
    }
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    int rc = build_trie(t);
    if (rc) return rc;

    const char *name = NULL;
    size_t nlen = 0;
    if (gguf_get_str(ctx, "general.name", &name, &nlen) == SW_OK) {
        bool phi3 = false;
        for (size_t i = 0; i < nlen && !phi3; i++)
            phi3 = (nlen - i >= 5 && ieq_prefix(name + i, "phi-3")) || (nlen - i >= 4 && ieq_prefix(name + i, "phi3"));
        if (phi3) {
            for (int i = 0; i < t->n_special; i++) t->flags[t->special[i]] |= TOK_FLAG_RSTRIP;
            int32_t id = tok_lookup(t, "</s>", 4);
            if (id >= 0) t->flags[id] |= TOK_FLAG_RSTRIP;
            static const char *keep[] = {"<unk>", "<s>", "<|endoftext|>"};
            for (int k = 0; k < 3; k++)
                if ((id = tok_lookup(t, keep[k], strlen(keep[k]))) >= 0) t->flags[id] &= (uint8_t)~TOK_FLAG_RSTRIP;
        }
    }
    return SW_OK;
}

/* End of generation: EOS, EOT, and the end-of-turn / end-of-text tokens of the families
 * (Llama 3 <|eot_id|> <|eom_id|> <|end_of_text|>, Qwen <|im_end|> <|endoftext|>, Gemma
 * <end_of_turn> <eos>, Phi-3 <|end|>, gpt-oss <|return|> <|call|>) when they are control
 * or user-defined tokens. gpt-oss (harmony) ends its analysis message with <|end|> and
 * goes on with the final one, so <|end|> is not EOG in a vocab with <|return|> and <|call|>. */
static void setup_eog(tok *t) {
    static const char *eog[] = {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|end|>",
                                "<end_of_turn>", "<eos>", "<|endoftext|>", "<|return|>", "<|call|>"};
    if (t->eos >= 0) t->flags[t->eos] |= TOK_FLAG_EOG;
    if (t->eot >= 0) t->flags[t->eot] |= TOK_FLAG_EOG;
    for (size_t k = 0; k < sizeof eog / sizeof eog[0]; k++) {
        int32_t id = tok_lookup(t, eog[k], strlen(eog[k]));
        if (id >= 0 && (t->ttype[id] == TOK_TTYPE_CONTROL || t->ttype[id] == TOK_TTYPE_USER_DEFINED))
            t->flags[id] |= TOK_FLAG_EOG;
    }
    int32_t end = tok_lookup(t, "<|end|>", 7);
    if (end >= 0 && end != t->eos && end != t->eot && tok_lookup(t, "<|return|>", 10) >= 0 && tok_lookup(t, "<|call|>", 8) >= 0)
        t->flags[end] &= (uint8_t)~TOK_FLAG_EOG;
}

static void spm_find_glue(tok *t);

int tok_create(const gguf_ctx *ctx, tok **out, sw_err *err) {
    *out = NULL;
    if (!ctx) return sw_err_set(err, SW_ERR_ARG, "tokenizer: no GGUF context");
    const char *model = NULL;
    size_t mlen = 0;
    if (gguf_get_str(ctx, "tokenizer.ggml.model", &model, &mlen) != SW_OK)
        return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: tokenizer.ggml.model missing (file has no vocab)");
    int kind;
    if (!strcmp(model, "llama")) kind = TOK_KIND_SPM;
    else if (!strcmp(model, "gpt2")) kind = TOK_KIND_BPE;
    else if (!strcmp(model, "bert")) kind = TOK_KIND_WPM;
    else return sw_err_set(err, SW_ERR_UNSUPPORTED, "tokenizer: model type '%.64s' not supported ('llama' SentencePiece, 'gpt2' byte-level BPE, 'bert' WordPiece)", model);

    tok *t = calloc(1, sizeof *t);
    if (!t) return sw_err_set(err, SW_ERR_NOMEM, "tokenizer: out of memory");
    t->kind = kind;
    int rc = load_tokens(t, ctx, err);
    if (rc) goto fail;
    if ((rc = build_hash(t)) || (rc = setup_specials(t, ctx))) {
        sw_err_set(err, rc, "tokenizer: out of memory");
        goto fail;
    }
    bool spm = kind == TOK_KIND_SPM, wpm = kind == TOK_KIND_WPM;
    t->bos = get_id(t, ctx, "tokenizer.ggml.bos_token_id", spm ? 1 : -1);
    if (wpm) t->bos = get_id(t, ctx, "tokenizer.ggml.cls_token_id", t->bos); /* BERT: [CLS] ... [SEP] */
    t->sep = wpm ? get_id(t, ctx, "tokenizer.ggml.seperator_token_id", -1) : -1;
    t->eos = get_id(t, ctx, "tokenizer.ggml.eos_token_id", spm ? 2 : -1);
    t->eot = get_id(t, ctx, "tokenizer.ggml.eot_token_id", -1);
    t->unk = get_id(t, ctx, "tokenizer.ggml.unknown_token_id", spm ? 0 : wpm ? 100 : -1);
    t->add_bos = spm || wpm;
    bool b;
    if (gguf_get_bool(ctx, "tokenizer.ggml.add_bos_token", &b) == SW_OK) t->add_bos = b;
    if (t->bos < 0) t->add_bos = false;
    t->add_space_prefix = spm || wpm; /* WordPiece words carry a ▁ too (dropped at the start of a decode) */
    if (gguf_get_bool(ctx, "tokenizer.ggml.add_space_prefix", &b) == SW_OK) t->add_space_prefix = b && (spm || wpm);
    setup_eog(t);

    for (int i = 0; i < 256; i++) t->byte_tok[i] = -1;
    if (spm) {
        spm_find_glue(t);
        for (int c = 0; c < 128; c++) {
            char ch = (char)c;
            t->ascii_tok[c] = tok_lookup(t, &ch, 1);
        }
        for (int i = 0; i < 256; i++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", i);
            t->byte_tok[i] = tok_lookup(t, name, 6);
        }
    } else if (kind == TOK_KIND_BPE && (rc = tok_bpe_init(t, ctx, err))) {
        goto fail;
    }
    *out = t;
    return SW_OK;
fail:
    tok_destroy(t);
    return rc;
}

void tok_destroy(tok *t) {
    if (!t) return;
    tok_bpe_free(t);
    free(t->blob); free(t->off); free(t->len); free(t->score); free(t->ttype); free(t->flags);
    free(t->hslot); free(t->special);
    free(t->trie_edge); free(t->trie_term_all); free(t->trie_term_user);
    free(t);
}

int tok_n_vocab(const tok *t) { return t->n_vocab; }
int32_t tok_bos(const tok *t) { return t->bos; }
int32_t tok_eos(const tok *t) { return t->eos; }
bool tok_add_bos(const tok *t) { return t->add_bos; }
bool tok_is_eog(const tok *t, int32_t id) { return id >= 0 && id < t->n_vocab && (t->flags[id] & TOK_FLAG_EOG); }

int32_t tok_find(const tok *t, const char *text, size_t len) { return tok_lookup(t, text, len); }

/* ---- SentencePiece BPE -------------------------------------------------------------- */

/* A symbol: text[off, off + n), the token it is (-1: none yet, e.g. a byte to fall back on). */
typedef struct spm_sym { uint32_t off, n; int32_t id, prev, next; } spm_sym;

static int spm_try_bigram(const tok *t, const char *text, const spm_sym *sym, int32_t l, int32_t r, tok_heap *h) {
    if (l < 0 || r < 0) return SW_OK;
    uint32_t size = sym[l].n + sym[r].n;
    int32_t id = tok_lookup(t, text + sym[l].off, size);
    if (id < 0) return SW_OK;
    tok_bigram b = {.key = -t->score[id], .left = l, .right = r, .id = id, .size = size};
    return tok_heap_push(h, b);
}

/* Scratch reused across the segments of one call. */
typedef struct spm_work { spm_sym *sym; size_t cap; tok_heap heap; } spm_work;

/* Tokenizes one segment of escaped text (spaces are U+2581) and appends ids to out. */
static int spm_segment(const tok *t, const char *text, size_t len, spm_work *w, tok_vec *out) {
    static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    if (len == 0) return SW_OK;
    if (len > w->cap) {
        spm_sym *s = realloc(w->sym, len * sizeof *s);
        if (!s) return SW_ERR_NOMEM;
        w->sym = s; w->cap = len;
    }
    spm_sym *sym = w->sym;
    tok_heap *h = &w->heap;
    h->n = 0;
    int rc = SW_OK;
    int32_t n = 0;
    for (size_t o = 0; o < len;) {
        size_t l = utf8_len[(uint8_t)text[o] >> 4];
        if (l > len - o) l = len - o;
        int32_t id = l == 1 && (uint8_t)text[o] < 0x80 ? t->ascii_tok[(uint8_t)text[o]] : tok_lookup(t, text + o, l);
        sym[n] = (spm_sym){.off = (uint32_t)o, .n = (uint32_t)l, .id = id, .prev = n - 1, .next = o + l == len ? -1 : n + 1};
        o += l;
        n++;
    }
    for (int32_t i = 1; i < n && !rc; i++) rc = spm_try_bigram(t, text, sym, i - 1, i, h);
    while (h->n && !rc) {
        tok_bigram b = tok_heap_pop(h);
        spm_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue; /* stale */
        l->n += r->n;
        l->id = b.id;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        rc = spm_try_bigram(t, text, sym, l->prev, b.left, h);
        if (!rc) rc = spm_try_bigram(t, text, sym, b.left, l->next, h);
    }
    for (int32_t i = 0; i != -1 && !rc; i = sym[i].next) {
        if (sym[i].id >= 0) { rc = tok_vec_push(out, sym[i].id); continue; }
        for (uint32_t j = 0; j < sym[i].n && !rc; j++) { /* byte fallback, else <unk> */
            int32_t bid = t->byte_tok[(uint8_t)text[sym[i].off + j]];
            if (bid < 0) bid = t->unk;
            if (bid >= 0) rc = tok_vec_push(out, bid);
        }
    }
    return rc;
}

static bool is_sp(const char *s) { return memcmp(s, "\xe2\x96\x81", 3) == 0; }

static bool glued(const tok *t, uint8_t b) { return t->spm_glue[b / 64] >> (b % 64) & 1; }

/* Tokenizes escaped text. No merge can cross the start of a run of ▁ that follows a byte
 * b unless some token holds b followed by ▁ (spm_glue), so the text is cut there and each
 * piece (about a word) is merged on its own: the same result as one queue over the whole
 * text, but cache-sized and fast. */
static int spm_encode(const tok *t, const char *text, size_t len, tok_memo *memo, tok_vec *out) {
    spm_work w = {0};
    int rc = SW_OK;
    for (size_t seg = 0, i = 3; seg < len && !rc; i++) {
        if (i + 3 <= len && !(is_sp(text + i) && !is_sp(text + i - 3) && !glued(t, (uint8_t)text[i - 1]))) continue;
        size_t end = i + 3 <= len ? i : len, n = end - seg, start = out->n;
        uint64_t h = n <= TOK_MEMO_WORD ? XXH3_64bits(text + seg, n) : 0;
        rc = tok_memo_get(memo, text + seg, n, h, out);
        if (rc == 0) {
            rc = spm_segment(t, text + seg, n, &w, out);
            if (!rc) rc = tok_memo_put(memo, text + seg, n, h, out->v + start, out->n - start);
        } else if (rc > 0) {
            rc = SW_OK;
        }
        seg = end;
    }
    free(w.sym);
    free(w.heap.v);
    return rc;
}

/* Collects the bytes that some token has right before a ▁ that does not continue a run of ▁
 * (Gemma 3: only '>' of ">▁</"; Llama 2: none). */
static void spm_find_glue(tok *t) {
    for (int id = 0; id < t->n_vocab; id++) {
        const uint8_t *s = (const uint8_t *)t->blob + t->off[id];
        for (uint32_t i = 1; i + 3 <= t->len[id]; i++)
            if (is_sp((const char *)s + i) && (i < 3 || !is_sp((const char *)s + i - 3)))
                t->spm_glue[s[i - 1] / 64] |= 1ull << (s[i - 1] % 64);
    }
}

/* Prepends " " when asked, replaces every ' ' by U+2581 and runs spm_encode. */
static int spm_encode_raw(const tok *t, const char *text, size_t len, bool prefix, tok_memo *memo, tok_vec *out) {
    size_t n_sp = prefix;
    for (size_t i = 0; i < len; i++) n_sp += text[i] == ' ';
    size_t n = len + prefix + 2 * n_sp;
    char *esc = malloc(n ? n : 1);
    if (!esc) return SW_ERR_NOMEM;
    size_t o = 0;
    if (prefix) { memcpy(esc, "\xe2\x96\x81", 3); o = 3; }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') { memcpy(esc + o, "\xe2\x96\x81", 3); o += 3; }
        else esc[o++] = text[i];
    }
    int rc = spm_encode(t, esc, o, memo, out);
    free(esc);
    return rc;
}

/* ---- special-token partition and encode ------------------------------------------ */

/* A piece of the input: a token already decided (id >= 0) or raw text [off, off+len). */
typedef struct frag { int32_t id; uint32_t off, len; } frag;
typedef struct frag_vec { frag *v; size_t n, cap; } frag_vec;

static int frag_push(frag_vec *f, frag x) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *v = realloc(f->v, cap * sizeof *v);
        if (!v) return SW_ERR_NOMEM;
        f->v = v; f->cap = cap;
    }
    f->v[f->n++] = x;
    return SW_OK;
}

/* Splits the special tokens out of the text in one pass: at each position the longest
 * special text that starts there (leftmost-longest, as Hugging Face's added-token
 * matcher), then on after it. Control/unknown tokens only when parse_special;
 * user-defined tokens always (llama.cpp does the same, and its test vectors rely on it).
 * LSTRIP/RSTRIP tokens (Phi-3) swallow the whitespace before/after them. */
static int partition(const tok *t, const char *text, size_t len, bool parse_special, frag_vec *out) {
    const uint64_t *start = parse_special ? t->start_all : t->start_user;
    const int32_t *term = parse_special ? t->trie_term_all : t->trie_term_user;
    const uint8_t *s = (const uint8_t *)text;
    size_t raw = 0; /* start of the pending raw text */
    int rc = SW_OK;
    for (size_t p = 0; p < len && !rc;) {
        if (!(start[s[p] / 64] >> (s[p] % 64) & 1)) { p++; continue; }
        int32_t node = 0, id = -1;
        size_t end = p;
        for (size_t q = p; q < len && (node = trie_child(t, node, s[q])) >= 0; q++)
            if (term[node] >= 0) { id = term[node]; end = q + 1; }
        if (id < 0) { p++; continue; }
        size_t re = p;
        if (t->flags[id] & TOK_FLAG_LSTRIP)
            while (re > raw && isspace(s[re - 1])) re--;
        if (re > raw) rc = frag_push(out, (frag){.id = -1, .off = (uint32_t)raw, .len = (uint32_t)(re - raw)});
        if (!rc) rc = frag_push(out, (frag){.id = id});
        if (t->flags[id] & TOK_FLAG_RSTRIP)
            while (end < len && isspace(s[end])) end++;
        p = raw = end;
    }
    if (!rc && raw < len) rc = frag_push(out, (frag){.id = -1, .off = (uint32_t)raw, .len = (uint32_t)(len - raw)});
    return rc;
}

int tok_encode(const tok *t, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t *ids, int cap) {
    if (!t || (!text && len) || (!ids && cap > 0) || cap < 0) return SW_ERR_ARG;
    if (len > TOK_MAX_TEXT) return SW_ERR_RANGE;
    tok_vec out = {0};
    frag_vec fr = {0};
    tok_memo memo = {0};
    int rc = SW_OK;
    if (add_bos && t->add_bos) rc = tok_vec_push(&out, t->bos);
    if (len > 0 && !rc) rc = partition(t, text, len, parse_special, &fr);
    bool prev_special = true; /* SentencePiece: space prefix at the start and after a special token */
    for (size_t i = 0; i < fr.n && !rc; i++) {
        if (fr.v[i].id >= 0) {
            rc = tok_vec_push(&out, fr.v[i].id);
            prev_special = true;
            continue;
        }
        if (t->kind == TOK_KIND_SPM)
            rc = spm_encode_raw(t, text + fr.v[i].off, fr.v[i].len, t->add_space_prefix && prev_special, &memo, &out);
        else if (t->kind == TOK_KIND_WPM)
            rc = tok_wpm_encode(t, text + fr.v[i].off, fr.v[i].len, &out);
        else
            rc = tok_bpe_encode(t, text + fr.v[i].off, fr.v[i].len, &memo, &out);
        prev_special = false;
    }
    if (add_bos && t->add_bos && t->sep >= 0 && !rc) rc = tok_vec_push(&out, t->sep);
    free(fr.v);
    tok_memo_free(&memo);
    if (!rc && out.n > (size_t)INT32_MAX) rc = SW_ERR_RANGE;
    if (!rc) {
        size_t k = out.n < (size_t)cap ? out.n : (size_t)cap;
        if (k) memcpy(ids, out.v, k * sizeof *ids);
        rc = (int)out.n;
    }
    free(out.v);
    return rc;
}

int tok_encode_alloc(const tok *t, const char *text, size_t len, bool add_bos, bool parse_special, int32_t **out) {
    *out = NULL;
    if (len > (size_t)INT32_MAX / 2) return SW_ERR_RANGE;
    int cap = (int)len + 2; /* one id per byte + BOS covers every vocab with byte fallback */
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return SW_ERR_NOMEM;
    int n = tok_encode(t, text, len, add_bos, parse_special, ids, cap);
    if (n > cap) {
        int32_t *bigger = realloc(ids, (size_t)n * sizeof *ids);
        if (!bigger) { free(ids); return SW_ERR_NOMEM; }
        ids = bigger;
        n = tok_encode(t, text, len, add_bos, parse_special, ids, n);
    }
    if (n < 0) { free(ids); return n; }
    *out = ids;
    return n;
}

/* ---- detokenization ------------------------------------------------------------------ */

static int put(char *buf, int cap, int n, const char *s, size_t k) {
    for (size_t i = 0; i < k; i++, n++)
        if (n < cap) buf[n] = s[i];
    return n;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Writes up to cap bytes of the piece; returns its full length. */
static int piece(const tok *t, int32_t id, bool render_special, char *buf, int cap) {
    const char *s = t->blob + t->off[id];
    size_t n = t->len[id];
    switch (t->ttype[id]) {
    case TOK_TTYPE_CONTROL:
    case TOK_TTYPE_UNKNOWN:
        return render_special ? put(buf, cap, 0, s, n) : 0;
    case TOK_TTYPE_UNUSED:
        return 0;
    case TOK_TTYPE_USER_DEFINED:
        return put(buf, cap, 0, s, n);
    case TOK_TTYPE_BYTE:
        if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
            char c = (char)(hexval(s[3]) * 16 + hexval(s[4]));
            return put(buf, cap, 0, &c, 1);
        }
        return put(buf, cap, 0, s, n);
    default:
        break;
    }
    if (t->kind == TOK_KIND_BPE) return tok_bpe_decode_text(s, n, buf, cap);
    int o = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= 3 && memcmp(s + i, "\xe2\x96\x81", 3) == 0) { o = put(buf, cap, o, " ", 1); i += 3; }
        else o = put(buf, cap, o, s + i++, 1);
    }
    return o;
}

int tok_piece(const tok *t, int32_t id, bool render_special, char *buf, int cap) {
    if (!t || id < 0 || id >= t->n_vocab) return SW_ERR_RANGE;
    if (cap < 0 || (!buf && cap > 0)) return SW_ERR_ARG;
    return piece(t, id, render_special, buf, cap);
}

void tok_stream_init(tok_stream *s, const tok *t) {
    memset(s, 0, sizeof *s);
    s->t = t;
    s->first = true;
}

/* Length of the UTF-8 sequence a lead byte starts (0 = never valid as a lead), and
 * whether c may follow lead as the second byte (rejects overlongs, surrogates, > U+10FFFF). */
static int lead_len(uint8_t c) {
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}
static bool second_ok(uint8_t lead, uint8_t c) {
    if ((c & 0xc0) != 0x80) return false;
    if (lead == 0xe0) return c >= 0xa0;
    if (lead == 0xed) return c <= 0x9f;
    if (lead == 0xf0) return c >= 0x90;
    if (lead == 0xf4) return c <= 0x8f;
    return true;
}

static const char fffd[3] = {(char)0xef, (char)0xbf, (char)0xbd};

/* Runs bytes through the UTF-8 assembler of (pend, *np): complete characters go to out
 * (count returned, writes past cap dropped), an impossible byte or broken prefix becomes
 * U+FFFD, an incomplete tail stays pending. */
static int utf8_run(char *pend, int *np, const char *in, size_t n, char *out, int cap) {
    int o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)in[i];
        if (*np == 0) {
            int l = lead_len(c);
            if (l == 1) o = put(out, cap, o, (const char *)&in[i], 1);
            else if (l == 0) o = put(out, cap, o, fffd, 3);
            else pend[(*np)++] = (char)c;
            i++;
            continue;
        }
        uint8_t lead = (uint8_t)pend[0];
        bool ok = *np == 1 ? second_ok(lead, c) : (c & 0xc0) == 0x80;
        if (!ok) { /* broken sequence: replace it, then look at c again as a fresh byte */
            o = put(out, cap, o, fffd, 3);
            *np = 0;
            continue;
        }
        pend[(*np)++] = (char)c;
        i++;
        if (*np == lead_len(lead)) {
            o = put(out, cap, o, pend, (size_t)*np);
            *np = 0;
        }
    }
    return o;
}

int tok_stream_feed(tok_stream *s, int32_t id, char *out, int cap) {
    const tok *t = s->t;
    if (!t || id < 0 || id >= t->n_vocab) return SW_ERR_RANGE;
    if (cap < 0 || (!out && cap > 0)) return SW_ERR_ARG;
    char small[512], *pb = small;
    int n = piece(t, id, false, small, sizeof small);
    if (n > (int)sizeof small) {
        if (!(pb = malloc((size_t)n))) return SW_ERR_NOMEM;
        piece(t, id, false, pb, n);
    }
    const char *p = pb;
    if (n > 0 && s->first && t->add_space_prefix && p[0] == ' ') { p++; n--; }
    /* run on a copy of the state; keep it only when everything fit (the snprintf rule) */
    char pend[8];
    int np = s->n_pending;
    memcpy(pend, s->pending, sizeof pend);
    int need = utf8_run(pend, &np, p, (size_t)n, out, cap);
    if (need <= cap) {
        memcpy(s->pending, pend, sizeof pend);
        s->n_pending = np;
        if (n > 0 || pb != p) s->first = false;
    }
    if (pb != small) free(pb);
    return need;
}

int tok_stream_flush(tok_stream *s, char *out, int cap) {
    if (cap < 0 || (!out && cap > 0)) return SW_ERR_ARG;
    if (s->n_pending == 0) return 0;
    put(out, cap, 0, fffd, 3);
    if (cap >= 3) s->n_pending = 0;
    return 3;
}

int tok_text_max(const tok *t) { return 3 * (t->max_token_len + 4); }

int tok_max_token_bytes(const tok *t) { return t->max_token_len > 0 ? t->max_token_len : 1; }
