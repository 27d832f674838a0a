/* tokenizer_vocab.c — tokenizer tests against the reference (llama.cpp) data in
 * ../shared: every vector of vocab/ggml-vocab-NAME.gguf.inp/.out, the prompt_tokens of
 * the golden model cases (with BOS); then edge cases (empty and invalid UTF-8 input,
 * random-byte round trips, streaming detokenization of characters split over tokens,
 * special tokens on/off, EOG, WordPiece's [CLS]/[SEP]), chat-template rendering
 * compared with strings written from the real templates, the BOS/EOG ids and chat
 * markers of the newer vocabs (llama3, qwen3, gptoss, gemma3), the token-text output rule
 * of tok.h on a crafted vocabulary of 300-byte tokens, and the encode speed on ~1 MB of
 * text (printed, not asserted; `swiftlet tokenize --bench` is the benchmark). */
#include "t.h"
#include "tokenizer/tok.h"
#include <jansson.h>
#include <stdint.h>

static tok *load(const char *path) {
    gguf_ctx *ctx = NULL;
    tok *t = NULL;
    sw_err err = {0};
    int rc = gguf_open(path, &ctx, &err);
    if (rc == SW_OK) rc = tok_create(ctx, &t, &err);
    gguf_close(ctx);
    T_CHECK(rc == SW_OK, "%s: %s", path, err.msg);
    return t;
}

static tok *load_vocab(const char *name) {
    char p[256];
    snprintf(p, sizeof p, SHARED "/vocab/ggml-vocab-%s.gguf", name);
    return load(p);
}

/* Encodes into a malloc'd array (*n ids); NULL on error. */
static int32_t *enc(const tok *t, const char *s, size_t len, bool bos, bool special, int *n) {
    *n = tok_encode(t, s, len, bos, special, NULL, 0);
    if (*n < 0) return NULL;
    int32_t *ids = malloc(((size_t)*n + 1) * sizeof *ids);
    int m = tok_encode(t, s, len, bos, special, ids, *n);
    T_EQ_INT(m, *n);
    return ids;
}

/* Concatenation of the pieces (render_special = false); malloc'd, length in *len. */
static char *dec(const tok *t, const int32_t *ids, int n, size_t *len) {
    size_t cap = 64, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++) {
        int k = tok_piece(t, ids[i], false, NULL, 0);
        T_CHECK(k >= 0, "tok_piece(%d) = %d", ids[i], k);
        if (k < 0) continue;
        while (o + (size_t)k + 1 > cap) s = realloc(s, cap *= 2);
        T_EQ_INT(tok_piece(t, ids[i], false, s + o, k), k);
        o += (size_t)k;
    }
    s[o] = 0;
    *len = o;
    return s;
}

/* Test strings of a .inp file: separated (and ended) by "\n__ggml_vocab_test__\n". */
static int split_inp(char *inp, char **str, size_t *len, int max) {
    static const char sep[] = "\n__ggml_vocab_test__\n";
    int n = 0;
    char *s = inp, *m;
    while (n < max && (m = strstr(s, sep))) {
        str[n] = s;
        len[n] = (size_t)(m - s);
        n++;
        s = m + sizeof sep - 1;
    }
    return n;
}

static void test_vectors(const char *name) {
    char p[256];
    snprintf(p, sizeof p, SHARED "/vocab/ggml-vocab-%s.gguf", name);
    tok *t = load(p);
    if (!t) return;
    char q[300], *inp = NULL, *out = NULL;
    size_t il, ol;
    sw_err err;
    snprintf(q, sizeof q, "%s.inp", p);
    int rc = sw_read_file(q, &inp, &il, &err);
    snprintf(q, sizeof q, "%s.out", p);
    if (rc == SW_OK) rc = sw_read_file(q, &out, &ol, &err);
    T_CHECK(rc == SW_OK, "%s", err.msg);
    if (rc) { free(inp); tok_destroy(t); return; }
    char *str[256];
    size_t len[256];
    int n = split_inp(inp, str, len, 256), pass = 0;
    char *line = out;
    for (int i = 0; i < n; i++) {
        char *eol = strchr(line, '\n');
        T_CHECK(eol != NULL, "%s.out has fewer lines than tests", name);
        if (!eol) break;
        *eol = 0;
        int32_t exp[4096];
        int ne = 0;
        for (char *x = line, *y; ne < 4096; x = y) {
            long v = strtol(x, &y, 10);
            if (y == x) break;
            exp[ne++] = (int32_t)v;
        }
        int ng;
        int32_t *got = enc(t, str[i], len[i], false, false, &ng);
        bool ok = got && ng == ne;
        for (int k = 0; ok && k < ng; k++) ok = got[k] == exp[k];
        T_CHECK(ok, "vocab %s vector %d [%.*s]: expected '%s', got %d ids", name, i, (int)len[i], str[i], line, ng);
        pass += ok;
        free(got);
        line = eol + 1;
    }
    printf("vocab %s: %d/%d passed\n", name, pass, n);
    free(inp);
    free(out);
    tok_destroy(t);
}

/* gpt-neox and baichuan ship no vectors: they must load and round-trip text. */
static void test_roundtrip_only(const char *name) {
    tok *t = load_vocab(name);
    if (!t) return;
    static const char *texts[] = {"Hello world", " Hello, y'all! How are you 😁 ?", "нещо на Български",
                                  "    Hello\n    Hello", "3333333 3.3 3..3", "我想在apple工作1314151天～"};
    int pass = 0, n = (int)(sizeof texts / sizeof texts[0]);
    for (int i = 0; i < n; i++) {
        int k;
        int32_t *ids = enc(t, texts[i], strlen(texts[i]), true, false, &k);
        tok_stream s;
        tok_stream_init(&s, t);
        char out[4096];
        int o = 0;
        for (int j = 0; ids && j < k; j++) o += tok_stream_feed(&s, ids[j], out + o, (int)sizeof out - o);
        o += tok_stream_flush(&s, out + o, (int)sizeof out - o);
        bool ok = ids && k > 0 && (size_t)o == strlen(texts[i]) && !memcmp(out, texts[i], (size_t)o);
        T_CHECK(ok, "vocab %s: round trip of '%s' gave '%.*s'", name, texts[i], o, out);
        pass += ok;
        free(ids);
    }
    printf("vocab %s: loads, %d/%d round trips\n", name, pass, n);
    tok_destroy(t);
}

/* The golden cases' prompt_tokens (BOS added per vocab) from the reference run. */
static void test_golden(const char *model) {
    char p[256];
    snprintf(p, sizeof p, SHARED "/models/%s.gguf", model);
    tok *t = load(p);
    snprintf(p, sizeof p, SHARED "/golden/%s/cases.json", model);
    json_error_t je;
    json_t *root = json_load_file(p, 0, &je);
    T_CHECK(root != NULL, "%s: %s", p, je.text);
    json_t *cases = json_object_get(root, "cases");
    size_t i;
    json_t *c;
    int pass = 0;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *pt = json_object_get(c, "prompt_tokens");
        int n;
        int32_t *ids = t && text ? enc(t, text, strlen(text), true, false, &n) : NULL;
        bool ok = ids && (size_t)n == json_array_size(pt);
        for (int k = 0; ok && k < n; k++) ok = ids[k] == json_integer_value(json_array_get(pt, (size_t)k));
        T_CHECK(ok, "%s case %zu: prompt tokens differ from the reference", model, i);
        pass += ok;
        free(ids);
    }
    printf("golden %s: %d/%zu prompts match\n", model, pass, json_array_size(cases));
    json_decref(root);
    tok_destroy(t);
}

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
    return *s;
}

static void test_edges(void) {
    tok *g = load_vocab("gpt-2"), *l = load_vocab("llama-spm");
    if (!g || !l) { tok_destroy(g); tok_destroy(l); return; }
    int32_t ids[64];
    /* empty input: nothing, or just BOS */
    T_EQ_INT(tok_encode(g, "", 0, false, false, ids, 64), 0);
    T_EQ_INT(tok_encode(l, "", 0, false, false, ids, 64), 0);
    T_EQ_INT(tok_encode(l, "", 0, true, false, ids, 64), 1);
    T_EQ_INT(ids[0], 1);
    T_EQ_INT(tok_encode(l, NULL, 0, true, false, ids, 64), 1);
    T_CHECK(tok_encode(l, NULL, 5, true, false, ids, 64) < 0, "NULL text with a length must fail");
    /* a too-small buffer: the full count comes back, the buffer holds the first ids */
    int n = tok_encode(g, "Hello world, this is a test", 27, false, false, ids, 2);
    T_CHECK(n > 2, "n = %d", n);
    T_EQ_INT(ids[0], 15496); /* "Hello" */
    T_CHECK(tok_piece(g, 50257, false, NULL, 0) < 0 && tok_piece(g, -1, false, NULL, 0) < 0, "bad ids rejected");
    T_EQ_INT(tok_n_vocab(g), 50257);
    T_EQ_INT(tok_bos(l), 1);
    T_EQ_INT(tok_eos(l), 2);
    T_CHECK(tok_add_bos(l) && !tok_add_bos(g), "add_bos defaults: spm yes, gpt2 no");

    /* invalid UTF-8: byte-level BPE keeps every byte; SentencePiece uses byte tokens */
    static const char bad[] = "ab\xff\xfe c\xc3 \xe4\xbd\xa0\xed\xa0\x80z\xf0\x9f";
    size_t blen = sizeof bad - 1, dl;
    int32_t *v = enc(g, bad, blen, false, false, &n);
    char *d = dec(g, v, n, &dl);
    T_CHECK(v && dl == blen && !memcmp(d, bad, blen), "gpt-2 invalid UTF-8 round trip");
    free(v); free(d);
    /* (SentencePiece reads a lead byte's whole sequence length, as llama.cpp does, so an
     * invalid lead byte before a space swallows part of the ▁: keep spaces away from them) */
    static const char bad2[] = "ab\xff\xfe c\xe4\xbd\xa0\xed\xa0\x80z\xc3\xf0\x9f";
    blen = sizeof bad2 - 1;
    v = enc(l, bad2, blen, false, false, &n);
    bool has_ff = false;
    for (int i = 0; v && i < n; i++) has_ff |= v[i] == 3 + 0xff; /* <0xFF> */
    T_CHECK(v && n > 0 && has_ff, "llama-spm invalid UTF-8 -> byte tokens");
    d = dec(l, v, n, &dl);
    T_CHECK(dl == blen + 1 && d[0] == ' ' && !memcmp(d + 1, bad2, blen), "llama-spm bytes round trip (after the space prefix)");
    free(v); free(d);

    /* random bytes round-trip exactly through byte-level BPE */
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    int rt_ok = 0, rt_n = 300;
    for (int it = 0; it < rt_n; it++) {
        char buf[96];
        size_t len = rng_next(&seed) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            uint64_t r = rng_next(&seed);
            buf[i] = (char)(r % 3 ? 32 + (r >> 8) % 95 : (r >> 8) & 0xff); /* mostly ASCII, some any-byte */
        }
        v = enc(g, buf, len, false, false, &n);
        d = dec(g, v, n, &dl);
        rt_ok += v && dl == len && !memcmp(d, buf, len);
        free(v); free(d);
    }
    T_EQ_INT(rt_ok, rt_n);

    /* streaming: a character split over tokens is held back until complete */
    static const char cjk[] = "你好🙂";
    v = enc(g, cjk, strlen(cjk), false, false, &n);
    T_CHECK(n > 3, "gpt-2 splits these characters over %d tokens", n);
    tok_stream s;
    tok_stream_init(&s, g);
    char out[256];
    int o = 0;
    bool partial_ok = true;
    for (int i = 0; v && i < n; i++) {
        int k = tok_stream_feed(&s, v[i], out + o, 64);
        /* every chunk starts on a character boundary (so the one before ended on one) */
        if (k > 0 && ((unsigned char)out[o] & 0xc0) == 0x80) partial_ok = false;
        o += k;
    }
    o += tok_stream_flush(&s, out + o, 64);
    T_CHECK(partial_ok && (size_t)o == strlen(cjk) && !memcmp(out, cjk, (size_t)o), "gpt-2 stream gave '%.*s'", o, out);
    free(v);
    /* SentencePiece: 🙂 is four byte tokens; nothing comes out until the fourth */
    v = enc(l, "🙂", 4, false, false, &n); /* ▁ + <0xF0> <0x9F> <0x99> <0x82> */
    T_EQ_INT(n, 5);
    tok_stream_init(&s, l);
    int k0 = tok_stream_feed(&s, v[0], out, 64), k1 = tok_stream_feed(&s, v[1], out, 64);
    int k2 = tok_stream_feed(&s, v[2], out, 64), k3 = tok_stream_feed(&s, v[3], out, 64);
    int k4 = tok_stream_feed(&s, v[4], out, 64);
    T_CHECK(k0 == 0 && k1 == 0 && k2 == 0 && k3 == 0 && k4 == 4 && !memcmp(out, "🙂", 4),
            "stream 🙂: %d %d %d %d %d", k0, k1, k2, k3, k4);
    /* an incomplete character at the end becomes U+FFFD at flush */
    tok_stream_init(&s, l);
    T_EQ_INT(tok_stream_feed(&s, v[1], out, 64), 0);
    T_EQ_INT(tok_stream_feed(&s, v[2], out, 64), 0);
    T_EQ_INT(tok_stream_flush(&s, out, 64), 3);
    T_CHECK(!memcmp(out, "\xef\xbf\xbd", 3), "flush gives U+FFFD");
    /* a byte that can never start a character: U+FFFD right away, then normal text */
    tok_stream_init(&s, l);
    T_EQ_INT(tok_stream_feed(&s, 3 + 0xff, out, 64), 3);
    free(v);
    /* the SentencePiece leading space: dropped at the start, kept for a continuation */
    v = enc(l, "Hello world", 11, true, false, &n);
    tok_stream_init(&s, l);
    o = 0;
    for (int i = 0; v && i < n; i++) o += tok_stream_feed(&s, v[i], out + o, 64);
    T_CHECK(o == 11 && !memcmp(out, "Hello world", 11), "spm stream gave '%.*s'", o, out);
    tok_stream_init(&s, l);
    s.first = false;
    o = 0;
    for (int i = 1; v && i < n; i++) o += tok_stream_feed(&s, v[i], out + o, 64);
    T_CHECK(o == 12 && !memcmp(out, " Hello world", 12), "continuation gave '%.*s'", o, out);
    /* a buffer that is too small: nothing consumed, the needed size returned */
    tok_stream_init(&s, g);
    T_EQ_INT(tok_stream_feed(&s, 15496, out, 2), 5);
    T_EQ_INT(tok_stream_feed(&s, 15496, out, 64), 5);
    T_CHECK(!memcmp(out, "Hello", 5), "retry after a short buffer");
    free(v);

    /* special tokens: parsed only when asked (gpt-2's <|endoftext|> is CONTROL) */
    static const char eot[] = "a<|endoftext|>b";
    T_EQ_INT(tok_encode(g, eot, strlen(eot), false, true, ids, 64), 3);
    T_EQ_INT(ids[1], 50256);
    n = tok_encode(g, eot, strlen(eot), false, false, ids, 64);
    T_CHECK(n > 3, "plain text gives %d ids", n);
    for (int i = 0; i < n && i < 64; i++) T_CHECK(ids[i] != 50256, "no special id in plain text");
    T_EQ_INT(tok_piece(g, 50256, false, out, 64), 0);
    T_EQ_INT(tok_piece(g, 50256, true, out, 64), 13);
    /* EOG */
    T_CHECK(tok_is_eog(g, 50256) && !tok_is_eog(g, 15496), "gpt-2 EOG");
    T_CHECK(tok_is_eog(l, 2) && !tok_is_eog(l, 1) && !tok_is_eog(l, -1) && !tok_is_eog(l, 1 << 20), "llama EOG");
    tok_destroy(g);
    tok_destroy(l);

    tok *p = load_vocab("phi-3");
    if (p) {
        static const char chat[] = "<|user|>\nHi<|end|>\n<|assistant|>\n";
        n = tok_encode(p, chat, strlen(chat), true, true, ids, 64);
        T_CHECK(n > 4 && ids[0] == 1 && ids[1] == 32010 && ids[n - 1] == 32001, "phi-3 special parse: n=%d", n);
        bool has_end = false;
        for (int i = 0; i < n && i < 64; i++) has_end |= ids[i] == 32007;
        T_CHECK(has_end, "<|end|> parsed");
        n = tok_encode(p, chat, strlen(chat), true, false, ids, 64);
        for (int i = 0; i < n && i < 64; i++) T_CHECK(ids[i] != 32010 && ids[i] != 32007, "plain text: no control ids");
        /* Phi-3's special tokens swallow the whitespace after them (rstrip), as in llama.cpp */
        int32_t a[16], b[16];
        int na = tok_encode(p, "<|user|>Hi", 10, false, true, a, 16), nb = tok_encode(p, "<|user|>  \nHi", 13, false, true, b, 16);
        T_CHECK(na == nb && na > 0 && !memcmp(a, b, (size_t)na * sizeof *a), "rstrip");
        T_CHECK(tok_is_eog(p, 32000) && tok_is_eog(p, 32007) && !tok_is_eog(p, 32010), "phi-3 EOG: <|endoftext|>, <|end|>");
        tok_destroy(p);
    }
    /* a chat prompt rendered by the ChatML template and tokenized with specials */
    tok *q = load(SHARED "/models/qwen2-gpt2-tiny.f32.gguf");
    if (q) {
        T_CHECK(tok_is_eog(q, 50256), "qwen2-gpt2 EOS is EOG");
        tok_destroy(q);
    }
}

/* The newer vocabularies' special tokens: BOS rule, end-of-generation set (the ids of
 * each model's generation_config eos_token_id list; harmony's <|end|> is not one), and
 * chat markers parsed only with parse_special. */
typedef struct vocab_specials {
    const char *name;
    int32_t bos; bool add_bos;
    int32_t eog[4], not_eog[4]; /* -1 terminated */
    const char *chat; int32_t first, last; /* chat text: first and last id when parsed */
} vocab_specials;

static void test_specials(const vocab_specials *v) {
    tok *t = load_vocab(v->name);
    if (!t) return;
    T_EQ_INT(tok_bos(t), v->bos);
    T_CHECK(tok_add_bos(t) == v->add_bos, "%s: add_bos", v->name);
    for (int i = 0; i < 4 && v->eog[i] >= 0; i++) T_CHECK(tok_is_eog(t, v->eog[i]), "%s: %d is EOG", v->name, v->eog[i]);
    for (int i = 0; i < 4 && v->not_eog[i] >= 0; i++) T_CHECK(!tok_is_eog(t, v->not_eog[i]), "%s: %d is not EOG", v->name, v->not_eog[i]);
    int n_eog = 0;
    for (int32_t id = 0; id < tok_n_vocab(t); id++) n_eog += tok_is_eog(t, id);
    int want = 0;
    while (want < 4 && v->eog[want] >= 0) want++;
    T_CHECK(n_eog == want, "%s: %d EOG ids, want %d", v->name, n_eog, want);
    int n;
    int32_t *ids = enc(t, v->chat, strlen(v->chat), false, true, &n);
    T_CHECK(ids && n > 2 && ids[0] == v->first && ids[n - 1] == v->last, "%s: chat markers parsed", v->name);
    free(ids);
    ids = enc(t, v->chat, strlen(v->chat), false, false, &n);
    for (int i = 0; ids && i < n; i++) T_CHECK(ids[i] != v->first && ids[i] != v->last, "%s: plain text has no marker ids", v->name);
    free(ids);
    tok_destroy(t);
}

/* User-defined tokens are split out of plain text, the longest one starting leftmost
 * winning (gemma3 has tokens for runs of 1-31 newlines and 2-31 spaces, and HTML tags). */
static void test_user_defined(void) {
    tok *t = load_vocab("gemma3");
    if (!t) return;
    int32_t nl3 = tok_find(t, "\n\n\n", 3), tr = tok_find(t, "<tr>", 4), td = tok_find(t, "<td>", 4);
    char sp[40];
    memset(sp, ' ', sizeof sp);
    int32_t sp31 = tok_find(t, sp, 31), sp4 = tok_find(t, sp, 4);
    T_CHECK(nl3 >= 0 && tr >= 0 && td >= 0 && sp31 >= 0 && sp4 >= 0, "gemma3 has these user-defined tokens");
    int n;
    int32_t *ids = enc(t, "a\n\n\nb<tr><td>", 13, false, false, &n);
    T_CHECK(ids && n == 5 && ids[1] == nl3 && ids[3] == tr && ids[4] == td, "gemma3: newline run and tags split out (%d ids)", n);
    free(ids);
    memcpy(sp + 35, "x", 1);
    ids = enc(t, sp, 36, false, false, &n); /* 35 spaces + x: 31 spaces, 4 spaces, then "x" */
    T_CHECK(ids && n == 3 && ids[0] == sp31 && ids[1] == sp4, "gemma3: 35 spaces -> 31 + 4 (%d ids)", n);
    free(ids);
    tok_destroy(t);
}

/* WordPiece: BOS is [CLS] and comes with a closing [SEP]; pieces decode lowercased. */
static void test_wordpiece(void) {
    tok *t = load_vocab("bert-bge");
    if (!t) return;
    int32_t ids[16];
    T_EQ_INT(tok_encode(t, "Hello World!", 12, true, false, ids, 16), 5);
    T_CHECK(ids[0] == 101 && ids[1] == 7592 && ids[2] == 2088 && ids[3] == 999 && ids[4] == 102, "[CLS] hello world ! [SEP]");
    tok_stream s;
    tok_stream_init(&s, t);
    char out[64];
    int o = 0;
    for (int i = 0; i < 5; i++) o += tok_stream_feed(&s, ids[i], out + o, 64 - o);
    T_CHECK(o == 13 && !memcmp(out, "hello world !", 13), "bert decode gave '%.*s'", o, out);
    T_EQ_INT(tok_encode(t, "", 0, true, false, ids, 16), 2);
    tok_destroy(t);
}

static void check_render(tok_chat_family f, const tok_chat_msg *m, int n, bool gen, const char *want) {
    char *got = NULL;
    sw_err err = {0};
    int rc = tok_chat_render(f, m, n, gen, &got, &err);
    T_CHECK(rc == SW_OK && got && !strcmp(got, want), "%s: got '%s' want '%s' (%s)", tok_chat_family_name(f),
            got ? got : "(null)", want, err.msg);
    free(got);
}

static void test_chat(void) {
    const tok_chat_msg conv[] = {
        {"system", "You are terse."}, {"user", " Hi there \n"}, {"assistant", "Hello!"}, {"user", "2+2?"}};
    check_render(TOK_CHAT_CHATML, conv, 4, true,
                 "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\n Hi there \n<|im_end|>\n"
                 "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
    check_render(TOK_CHAT_LLAMA3, conv, 4, true,
                 "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
    check_render(TOK_CHAT_LLAMA2, conv, 4, true,
                 "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n Hi there [/INST] Hello! </s><s>[INST] 2+2? [/INST]");
    check_render(TOK_CHAT_LLAMA2, conv + 1, 1, true, "[INST] Hi there [/INST]");
    check_render(TOK_CHAT_PHI3, conv, 4, true,
                 "<|system|>\nYou are terse.<|end|>\n<|user|>\n Hi there \n<|end|>\n<|assistant|>\nHello!<|end|>\n"
                 "<|user|>\n2+2?<|end|>\n<|assistant|>\n");
    check_render(TOK_CHAT_GEMMA, conv, 4, true,
                 "<start_of_turn>user\nYou are terse.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
                 "<start_of_turn>user\n2+2?<end_of_turn>\n<start_of_turn>model\n");
    check_render(TOK_CHAT_CHATML, conv + 3, 1, false, "<|im_start|>user\n2+2?<|im_end|>\n");
    check_render(TOK_CHAT_CHATML, NULL, 0, true, "<|im_start|>assistant\n");

    char *out = (char *)1;
    const tok_chat_msg bad[] = {{"tool", "x"}};
    T_CHECK(tok_chat_render(TOK_CHAT_GEMMA, bad, 1, true, &out, NULL) == SW_ERR_ARG && out == NULL, "gemma rejects role 'tool'");
    const tok_chat_msg nul[] = {{"user", NULL}};
    T_CHECK(tok_chat_render(TOK_CHAT_CHATML, nul, 1, true, &out, NULL) == SW_ERR_ARG, "NULL content rejected");
    T_CHECK(tok_chat_render(TOK_CHAT_UNKNOWN, conv, 1, true, &out, NULL) == SW_ERR_ARG, "unknown family rejected");

    /* detection from (excerpts of) the real templates */
    T_EQ_INT(tok_chat_detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"), TOK_CHAT_CHATML);
    T_EQ_INT(tok_chat_detect("{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}"), TOK_CHAT_LLAMA3);
    T_EQ_INT(tok_chat_detect("{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"), TOK_CHAT_LLAMA2);
    T_EQ_INT(tok_chat_detect("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"), TOK_CHAT_GEMMA);
    T_EQ_INT(tok_chat_detect(NULL), TOK_CHAT_UNKNOWN);
    T_EQ_INT(tok_chat_detect("{{ messages }}"), TOK_CHAT_UNKNOWN);
    gguf_ctx *ctx = NULL;
    if (gguf_open(SHARED "/vocab/ggml-vocab-phi-3.gguf", &ctx, NULL) == SW_OK) {
        const char *tmpl = NULL;
        size_t len;
        T_CHECK(gguf_get_str(ctx, "tokenizer.chat_template", &tmpl, &len) == SW_OK, "phi-3 has a template");
        T_EQ_INT(tok_chat_detect(tmpl), TOK_CHAT_PHI3);
        gguf_close(ctx);
    }
    static const char *names[] = {"chatml", "llama3", "llama2", "mistral", "phi3", "gemma"};
    static const tok_chat_family fams[] = {TOK_CHAT_CHATML, TOK_CHAT_LLAMA3, TOK_CHAT_LLAMA2, TOK_CHAT_LLAMA2, TOK_CHAT_PHI3, TOK_CHAT_GEMMA};
    for (int i = 0; i < 6; i++) {
        tok_chat_family f = TOK_CHAT_UNKNOWN;
        T_CHECK(tok_chat_family_from_name(names[i], &f) == SW_OK && f == fams[i], "name %s", names[i]);
    }
    tok_chat_family f;
    T_CHECK(tok_chat_family_from_name("vicuna", &f) == SW_ERR_NOTFOUND, "unknown name");
}

/* ~1 MB of English-like text from the .inp sentences; prints MB/s (not asserted). */
static void test_speed(const char *name) {
    char p[256], *inp = NULL;
    size_t il;
    snprintf(p, sizeof p, SHARED "/vocab/ggml-vocab-%s.gguf.inp", name);
    if (sw_read_file(p, &inp, &il, NULL) != SW_OK) return;
    char *str[256];
    size_t len[256];
    int n = split_inp(inp, str, len, 256);
    size_t want = 1 << 20, o = 0;
    char *text = malloc(want + 4096);
    for (int i = 0; o < want; i = (i + 1) % n) {
        if (len[i] < 8) continue; /* the sentences, not the whitespace probes */
        memcpy(text + o, str[i], len[i]);
        o += len[i];
        text[o++] = i % 5 ? ' ' : '\n';
    }
    tok *t = load_vocab(name);
    if (t) {
        double t0 = sw_now_ms();
        int k = tok_encode(t, text, o, true, false, NULL, 0);
        double ms = sw_now_ms() - t0;
        T_CHECK(k > (int)(o / 16), "%s: %d tokens for %zu bytes", name, k, o);
        printf("speed %s: %.2f MB in %.1f ms = %.1f MB/s (%d tokens)\n", name, o / 1048576.0, ms, o / 1048576.0 / (ms / 1000.0), k);
        tok_destroy(t);
    }
    free(text);
    free(inp);
}

/* A vocab of 300-byte tokens (issue 11: a 256-byte buffer was sent uninitialised when a
 * token did not fit): <unk> <s> </s>, then A = 299 x 'a' + the lead byte of 'é',
 * B = its continuation byte + 299 x 'b', and C = 100 x '€' (300 bytes). */
static tok *long_vocab(char texts[6][301]) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/swiftlet_tok_long_%d.gguf", (int)getpid());
    memset(texts, 0, 6 * 301);
    strcpy(texts[0], "<unk>");
    strcpy(texts[1], "<s>");
    strcpy(texts[2], "</s>");
    memset(texts[3], 'a', 299);
    texts[3][299] = (char)0xc3;
    texts[4][0] = (char)0xa9;
    memset(texts[4] + 1, 'b', 299);
    for (int i = 0; i < 100; i++) memcpy(texts[5] + 3 * i, "\xe2\x82\xac", 3);
    const char *toks[6] = {texts[0], texts[1], texts[2], texts[3], texts[4], texts[5]};
    int32_t types[6] = {2, 3, 3, 1, 1, 1};
    float scores[6] = {0, 0, 0, -1, -2, -3};
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 6);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 6);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, 6);
    gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", false);
    sw_err e = {0};
    int rc = gguf_writer_write(w, path, &e);
    gguf_writer_destroy(w);
    T_CHECK(rc == SW_OK, "%s", e.msg);
    tok *t = rc == SW_OK ? load(path) : NULL;
    unlink(path);
    return t;
}

/* tok.h's one rule for token text: at most cap bytes written (a prefix), the full length
 * returned, a streaming call that did not fit consumes nothing; tok_text_max suffices. */
static void test_long_tokens(void) {
    char texts[6][301];
    tok *t = long_vocab(texts);
    if (!t) return;
    int max = tok_text_max(t);
    T_CHECK(max >= 300, "tok_text_max %d", max);
    char small[64], *big = malloc((size_t)max);
    /* pieces: prefix written, full length returned */
    memset(small, 0x55, sizeof small);
    T_EQ_INT(tok_piece(t, 5, false, small, sizeof small), 300);
    T_OK(memcmp(small, texts[5], sizeof small) == 0);
    T_EQ_INT(tok_piece(t, 3, false, big, max), 300);
    T_OK(memcmp(big, texts[3], 300) == 0);
    /* streaming: too small a buffer consumes nothing; then the same token with room */
    tok_stream s;
    tok_stream_init(&s, t);
    T_EQ_INT(tok_stream_feed(&s, 3, small, sizeof small), 299); /* 'é' held back */
    T_OK(memcmp(small, texts[3], sizeof small) == 0);
    T_EQ_INT(s.n_pending, 0);
    T_EQ_INT(tok_stream_feed(&s, 3, big, max), 299);
    T_OK(memcmp(big, texts[3], 299) == 0);
    T_EQ_INT(s.n_pending, 1);
    T_EQ_INT(tok_stream_feed(&s, 4, small, sizeof small), 301); /* "é" + 299 x 'b' */
    T_EQ_INT(s.n_pending, 1);
    T_EQ_INT(tok_stream_feed(&s, 4, big, max), 301);
    T_OK(memcmp(big, "\xc3\xa9", 2) == 0 && memcmp(big + 2, texts[4] + 1, 299) == 0);
    T_EQ_INT(tok_stream_feed(&s, 5, big, max), 300);
    T_OK(memcmp(big, texts[5], 300) == 0);
    T_EQ_INT(tok_stream_feed(&s, 2, big, max), 0); /* control token: nothing */
    /* a lone lead byte at the end: flush follows the same rule */
    T_EQ_INT(tok_stream_feed(&s, 3, big, max), 299);
    T_EQ_INT(tok_stream_flush(&s, small, 2), 3);
    T_EQ_INT(s.n_pending, 1);
    T_EQ_INT(tok_stream_flush(&s, small, sizeof small), 3);
    T_OK(memcmp(small, "\xef\xbf\xbd", 3) == 0);
    T_EQ_INT(s.n_pending, 0);
    free(big);
    tok_destroy(t);
}

int main(void) {
    test_long_tokens();
    if (t_shared_missing()) {
        T_SKIP("../shared is missing: no vocab files to test against");
        return t_done();
    }
    static const char *vocabs[] = {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder",
                                   "falcon", "starcoder", "mpt", "refact", "bert-bge",
                                   "llama3", "qwen3", "gptoss", "gemma3"};
    for (size_t i = 0; i < sizeof vocabs / sizeof vocabs[0]; i++) test_vectors(vocabs[i]);
    test_roundtrip_only("gpt-neox");
    test_roundtrip_only("baichuan");
    test_wordpiece();
    static const vocab_specials specials[] = {
        {"llama3", 128000, true, {128001, 128009, -1}, {128000, 128006, 128008, -1},
         "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", 128006, 128009},
        {"qwen3", 151643, false, {151643, 151645, -1}, {151644, 151667, -1}, "<|im_start|>user\nHi<|im_end|>", 151644, 151645},
        {"gptoss", 199998, false, {199999, 200002, 200012, -1}, {200006, 200007, 200005, -1},
         "<|start|>assistant<|channel|>final<|message|>Hi<|return|>", 200006, 200002},
        {"gemma3", 2, true, {1, 106, -1}, {2, 105, 0, -1}, "<start_of_turn>user\nHi<end_of_turn>", 105, 106},
    };
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) test_specials(&specials[i]);
    test_user_defined();
    test_golden("llama-spm-tiny.f32");
    test_golden("qwen2-gpt2-tiny.f32");
    test_edges();
    test_chat();
    static const char *speed[] = {"gpt-2", "llama-spm", "llama3", "qwen3", "gptoss", "gemma3"};
    for (size_t i = 0; i < sizeof speed / sizeof speed[0]; i++) test_speed(speed[i]);
    return t_done();
}
