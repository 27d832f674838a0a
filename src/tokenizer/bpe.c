/* bpe.c — byte-level BPE (`tokenizer.ggml.model = gpt2`): the pre-tokenizer chosen by
 * `tokenizer.ggml.pre` (llama.cpp's list of regexes, run with PCRE2 in UTF + Unicode
 * property mode with JIT; each regex splits every piece left by the previous one into
 * its matches and the gaps between them), GPT-2's byte-to-unicode map, and the merge
 * loop (ranks from `tokenizer.ggml.merges`, lowest rank first via a priority queue over
 * a linked list of symbols, so long words stay O(n log n)); a word already seen in this
 * encode call comes from the call's memo. Qwen's vocabs NFC-normalize first (nfc.c).
 * Invalid UTF-8 in the input is kept byte for byte (PCRE2_MATCH_INVALID_UTF: such bytes
 * never match and end up in gap pieces), so decode(encode(x)) == x for any bytes (for
 * Qwen: == NFC(x)). */
#include "tokenizer/tok_impl.h"
#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#define TOK_MAX_MERGES (1 << 24)

/* ---- GPT-2 byte <-> unicode map ------------------------------------------------------ */

/* Bytes that stand for themselves; the other 68 map to U+0100.. in byte order. */
static bool byte_direct(int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174; }

static uint32_t byte_to_cp(int b) {
    if (byte_direct(b)) return (uint32_t)b;
    if (b <= 32) return 256 + (uint32_t)b;
    if (b >= 127 && b <= 160) return 256 + 33 + (uint32_t)(b - 127);
    return 256 + 67; /* 173 */
}

static int cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_direct((int)cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    if (k < 33) return (int)k;
    if (k < 67) return 127 + (int)(k - 33);
    if (k == 67) return 173;
    return -1;
}

/* UTF-8 of a code point below U+0800 (all the map produces). */
static int cp_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
}

int tok_bpe_decode_text(const char *s, size_t n, char *buf, int cap) {
    int o = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c = (uint8_t)s[i];
        int b = -1;
        size_t l = 1;
        if (c < 0x80) b = cp_to_byte(c);
        else if ((c & 0xe0) == 0xc0 && i + 1 < n && ((uint8_t)s[i + 1] & 0xc0) == 0x80) {
            b = cp_to_byte(((uint32_t)(c & 0x1f) << 6) | ((uint8_t)s[i + 1] & 0x3f));
            l = 2;
        }
        if (b >= 0) {
            if (o < cap) buf[o] = (char)b;
            o++;
        } else { /* not a mapped character: copy its bytes */
            for (size_t j = 0; j < l; j++, o++)
                if (o < cap) buf[o] = s[i + j];
        }
        i += l;
    }
    return o;
}

/* ---- merges ------------------------------------------------------------------------------ */

static uint64_t merge_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)b; }

static uint32_t merge_hash(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33;
    return (uint32_t)k;
}

static const tok_merge *merge_find(const tok *t, int32_t a, int32_t b) {
    uint64_t k = merge_key(a, b);
    for (uint32_t h = merge_hash(k) & t->mmask;; h = (h + 1) & t->mmask) {
        const tok_merge *m = &t->merges[h];
        if (m->key == k) return m;
        if (m->key == 0) return NULL;
    }
}

static int load_merges(tok *t, const gguf_ctx *ctx, sw_err *err) {
    gguf_type et;
    uint64_t n;
    if (gguf_get_arr_info(ctx, "tokenizer.ggml.merges", &et, &n) != SW_OK || et != GGUF_TYPE_STRING)
        return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: gpt2 vocab without tokenizer.ggml.merges string array");
    if (n > TOK_MAX_MERGES) return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: %llu merges is too many", (unsigned long long)n);
    uint32_t size = 16;
    while (size < 2 * n) size <<= 1;
    t->merges = calloc(size, sizeof *t->merges);
    if (!t->merges) return sw_err_set(err, SW_ERR_NOMEM, "tokenizer: out of memory");
    t->mmask = size - 1;
    char *cat = NULL;
    size_t cat_cap = 0;
    int skipped = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l;
        const char *s = gguf_get_arr_str(ctx, "tokenizer.ggml.merges", i, &l);
        const char *sp = s && l > 1 ? memchr(s + 1, ' ', l - 1) : NULL;
        if (!sp) {
            free(cat);
            return sw_err_set(err, SW_ERR_FORMAT, "tokenizer: merge %llu is not 'left right'", (unsigned long long)i);
        }
        size_t ll = (size_t)(sp - s), rl = l - ll - 1;
        if (l > cat_cap) {
            char *c = realloc(cat, l);
            if (!c) { free(cat); return sw_err_set(err, SW_ERR_NOMEM, "tokenizer: out of memory"); }
            cat = c; cat_cap = l;
        }
        memcpy(cat, s, ll);
        memcpy(cat + ll, sp + 1, rl);
        int32_t a = tok_lookup(t, s, ll), b = tok_lookup(t, sp + 1, rl), r = tok_lookup(t, cat, ll + rl);
        if (a < 0 || b < 0 || r < 0) { skipped++; continue; } /* cannot apply to token ids */
        uint64_t k = merge_key(a, b);
        for (uint32_t h = merge_hash(k) & t->mmask;; h = (h + 1) & t->mmask) {
            tok_merge *m = &t->merges[h];
            if (m->key == k) break; /* first rank wins */
            if (m->key == 0) { *m = (tok_merge){.key = k, .rank = (int32_t)i, .result = r}; break; }
        }
    }
    free(cat);
    if (skipped) sw_warn("tokenizer: %d merges name pieces that are not tokens; ignored", skipped);
    return SW_OK;
}

/* ---- pre-tokenizer regexes (as llama.cpp maps tokenizer.ggml.pre to them) --------------- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* o200k (tiktoken; the gpt-oss tokenizer.json Split pattern): combining marks \p{M} stay inside words */
#define RE_GPT4O "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?" \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?" \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_CJK "[一-龥ࠀ-一가-퟿]+"

/* ignore_merges: a word that is a whole token is that token (llama3, tiktoken vocabs);
 * nfc: the text is NFC-normalized first (Qwen's tokenizer.json normalizer). */
typedef struct pre_def { const char *names; bool ignore_merges, nfc; const char *re[TOK_MAX_REGEX]; } pre_def;

/* names: '|'-separated values of tokenizer.ggml.pre. */
static const pre_def pre_defs[] = {
    {"default", false, false, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"llama3|llama-v3|llama-bpe|falcon3", true, false, {RE_LLAMA3}},
    {"dbrx|smaug-bpe|chatglm-bpe", false, false, {RE_LLAMA3}},
    {"deepseek-llm", false, false, {"[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\\x{1F7D}ᾀ-ᾴᾶ-ᾼ\\x{1FBE}ῂ-ῄῆ-ῌῐ-\\x{1FD3}ῖ-\\x{1FDB}ῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\\x{2126}ℨ\\x{212A}-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", RE_CJK, "\\p{N}+"}},
    {"deepseek-v3", false, false, {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
        "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {"deepseek-coder", false, false, {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_CJK, "\\p{N}"}},
    {"falcon", false, false, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", false, false, {"\\p{N}", RE_GPT2}},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v1-en|jina-v2-es|jina-v2-de|jina-v2-code|roberta-bpe|mpt|olmo|jais",
        false, false, {RE_GPT2}},
    {"qwen2|deepseek-r1-qwen", false, true, {RE_QWEN2}},
    {"stablelm2|megrez", false, false, {RE_QWEN2}},
    {"gpt-4o", true, false, {RE_GPT4O}},
    {"poro-chat|bloom|gpt3-finnish", false, false, {" ?[^(\\s|.,!?…。，、।۔،)]+"}},
    {"viking", false, false, {" ?[^(\\s|.,!?…。，、।۔،)]+", "\\p{N}"}},
};

static bool name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && memcmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

static int load_regexes(tok *t, const gguf_ctx *ctx, sw_err *err) {
    const char *pre = "default";
    size_t plen;
    if (gguf_get_str(ctx, "tokenizer.ggml.pre", &pre, &plen) != SW_OK) {
        sw_warn("tokenizer: no tokenizer.ggml.pre; using the default pre-tokenizer");
        pre = "default";
    }
    const pre_def *d = NULL;
    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0] && !d; i++)
        if (name_in(pre_defs[i].names, pre)) d = &pre_defs[i];
    if (!d) return sw_err_set(err, SW_ERR_UNSUPPORTED, "tokenizer: unknown pre-tokenizer '%.64s' (tokenizer.ggml.pre)", pre);
    t->ignore_merges = d->ignore_merges;
    t->nfc = d->nfc;
    for (int i = 0; i < TOK_MAX_REGEX && d->re[i]; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)d->re[i], PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
                                       &ec, &eo, NULL);
        if (!re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return sw_err_set(err, SW_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer '%s' regex %d: %s at %zu", pre, i, (char *)msg, (size_t)eo);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
        t->re[t->n_re++] = re;
    }
    return SW_OK;
}

int tok_bpe_init(tok *t, const gguf_ctx *ctx, sw_err *err) {
    int rc = load_merges(t, ctx, err);
    if (rc) return rc;
    for (int b = 0; b < 256; b++) {
        char u[2];
        int n = cp_utf8(byte_to_cp(b), u);
        t->byte_tok[b] = tok_lookup(t, u, (size_t)n);
    }
    return load_regexes(t, ctx, err);
}

void tok_bpe_free(tok *t) {
    for (int i = 0; i < t->n_re; i++) pcre2_code_free(t->re[i]);
    t->n_re = 0;
    free(t->merges);
    t->merges = NULL;
}

/* ---- encode --------------------------------------------------------------------------- */

typedef struct span { uint32_t off, len; } span;
typedef struct span_vec { span *v; size_t n, cap; } span_vec;

static int span_push(span_vec *s, uint32_t off, uint32_t len) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return SW_ERR_NOMEM;
        s->v = v; s->cap = cap;
    }
    s->v[s->n++] = (span){off, len};
    return SW_OK;
}

typedef struct bpe_sym { int32_t id; uint32_t n; int32_t prev, next; } bpe_sym;

/* Scratch reused across the words of one call. */
typedef struct bpe_work {
    bpe_sym *sym; size_t cap;
    tok_heap heap;
    char *mapped; size_t mcap; /* the word in mapped characters (ignore_merges lookup) */
} bpe_work;

static int bpe_try(const tok *t, bpe_sym *sym, int32_t l, int32_t r, tok_heap *h) {
    if (l < 0 || r < 0 || sym[l].id < 0 || sym[r].id < 0) return SW_OK;
    const tok_merge *m = merge_find(t, sym[l].id, sym[r].id);
    if (!m) return SW_OK;
    tok_bigram b = {.key = (float)m->rank, .left = l, .right = r, .id = m->result, .size = sym[l].n + sym[r].n};
    return tok_heap_push(h, b);
}

static int bpe_word(const tok *t, const uint8_t *w, size_t n, bpe_work *wk, tok_vec *out) {
    if (t->ignore_merges) {
        if (2 * n > wk->mcap) {
            char *m = realloc(wk->mapped, 2 * n);
            if (!m) return SW_ERR_NOMEM;
            wk->mapped = m; wk->mcap = 2 * n;
        }
        size_t o = 0;
        for (size_t i = 0; i < n; i++) o += (size_t)cp_utf8(byte_to_cp(w[i]), wk->mapped + o);
        int32_t id = tok_lookup(t, wk->mapped, o);
        if (id >= 0) return tok_vec_push(out, id);
    }
    if (n > wk->cap) {
        bpe_sym *s = realloc(wk->sym, n * sizeof *s);
        if (!s) return SW_ERR_NOMEM;
        wk->sym = s; wk->cap = n;
    }
    bpe_sym *sym = wk->sym;
    for (size_t i = 0; i < n; i++)
        sym[i] = (bpe_sym){.id = t->byte_tok[w[i]], .n = 1, .prev = (int32_t)i - 1, .next = i + 1 == n ? -1 : (int32_t)i + 1};
    tok_heap *h = &wk->heap;
    h->n = 0;
    int rc = SW_OK;
    for (size_t i = 1; i < n && !rc; i++) rc = bpe_try(t, sym, (int32_t)i - 1, (int32_t)i, h);
    while (h->n && !rc) {
        tok_bigram b = tok_heap_pop(h);
        bpe_sym *l = &sym[b.left], *r = &sym[b.right];
        if (l->n == 0 || r->n == 0 || l->next != b.right || l->n + r->n != b.size) continue; /* stale */
        l->id = b.id;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) sym[r->next].prev = b.left;
        rc = bpe_try(t, sym, l->prev, b.left, h);
        if (!rc) rc = bpe_try(t, sym, b.left, l->next, h);
    }
    for (int32_t i = 0; n && i != -1 && !rc; i = sym[i].next) {
        int32_t id = sym[i].id >= 0 ? sym[i].id : t->unk; /* a byte the vocab cannot spell */
        if (id >= 0) rc = tok_vec_push(out, id);
    }
    return rc;
}

/* Splits each span of cur by re into matches and the gaps between them. */
static int split_spans(const pcre2_code *re, const char *text, const span_vec *cur, span_vec *nxt,
                       pcre2_match_data *md, pcre2_match_context **mctx, pcre2_jit_stack **js) {
    nxt->n = 0;
    int rc = SW_OK;
    for (size_t i = 0; i < cur->n && !rc; i++) {
        PCRE2_SPTR subj = (PCRE2_SPTR)(text + cur->v[i].off);
        PCRE2_SIZE len = cur->v[i].len, start = 0, last = 0;
        while (start < len && !rc) {
            int m = pcre2_match(re, subj, len, start, 0, md, *mctx);
            if (m == PCRE2_ERROR_JIT_STACKLIMIT && !*js) { /* deep pattern: retry with a bigger JIT stack */
                if (!(*mctx = pcre2_match_context_create(NULL)) || !(*js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL)))
                    return SW_ERR_NOMEM;
                pcre2_jit_stack_assign(*mctx, NULL, *js);
                continue;
            }
            if (m == PCRE2_ERROR_NOMATCH) break;
            if (m < 0) return SW_ERR_RANGE; /* match/depth limit on a pathological input */
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            PCRE2_SIZE ms = ov[0], me = ov[1];
            if (ms > last) rc = span_push(nxt, cur->v[i].off + (uint32_t)last, (uint32_t)(ms - last));
            if (me > ms && !rc) rc = span_push(nxt, cur->v[i].off + (uint32_t)ms, (uint32_t)(me - ms));
            if (me > ms) last = me;
            start = me > start ? me : start + 1;
        }
        if (last < len && !rc) rc = span_push(nxt, cur->v[i].off + (uint32_t)last, (uint32_t)(len - last));
    }
    return rc;
}

int tok_bpe_encode(const tok *t, const char *text, size_t len, tok_memo *memo, tok_vec *out) {
    if (len == 0) return SW_OK;
    char *norm = NULL;
    if (t->nfc) {
        size_t nlen;
        int rc = tok_nfc(text, len, &norm, &nlen);
        if (rc) return rc;
        if (norm) { text = norm; len = nlen; }
    }
    span_vec a = {0}, b = {0};
    bpe_work wk = {0};
    pcre2_match_context *mctx = NULL;
    pcre2_jit_stack *js = NULL;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? span_push(&a, 0, (uint32_t)len) : SW_ERR_NOMEM;
    for (int r = 0; r < t->n_re && !rc; r++) {
        rc = split_spans(t->re[r], text, &a, &b, md, &mctx, &js);
        span_vec tmp = a; a = b; b = tmp;
    }
    for (size_t i = 0; i < a.n && !rc; i++) {
        const char *w = text + a.v[i].off;
        size_t n = a.v[i].len, start = out->n;
        uint64_t h = n <= TOK_MEMO_WORD ? XXH3_64bits(w, n) : 0;
        rc = tok_memo_get(memo, w, n, h, out);
        if (rc > 0) { rc = SW_OK; continue; }
        if (!rc) rc = bpe_word(t, (const uint8_t *)w, n, &wk, out);
        if (!rc) rc = tok_memo_put(memo, w, n, h, out->v + start, out->n - start);
    }
    free(a.v); free(b.v);
    free(wk.sym); free(wk.heap.v); free(wk.mapped);
    pcre2_match_data_free(md);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(js);
    free(norm);
    return rc;
}
