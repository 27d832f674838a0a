/* tokenizer_roundtrip.c — libFuzzer target: arbitrary bytes -> encode -> decode with the
 * vocabs of ../shared/vocab, loaded once: byte-level BPE (gpt-2, llama3, gptoss) must give
 * back the input bytes exactly (control tokens rendered, so parse_special round-trips
 * too); qwen3 normalizes to NFC first, so its decode must re-encode to the same ids (NFC
 * is idempotent); SentencePiece without a space prefix (gemma3) must give back any valid
 * UTF-8 without U+2581 exactly; llama-spm, bert-bge and the streaming decoder must not
 * crash and must return ids inside the vocab. The same bytes also go through the
 * chat-template renderer and detector. The first input byte picks the options. */
#include "tokenizer/tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok *bpe, *spm, *wpm, *llama3, *gptoss, *qwen3, *gemma3;

static tok *load(const char *name) {
    char path[256];
    snprintf(path, sizeof path, "../shared/vocab/ggml-vocab-%s.gguf", name);
    gguf_ctx *ctx = NULL;
    tok *t = NULL;
    sw_err err = {0};
    if (gguf_open(path, &ctx, &err) != SW_OK || tok_create(ctx, &t, &err) != SW_OK) {
        fprintf(stderr, "tokenizer_roundtrip: cannot load %s: %s\n", path, err.msg);
        exit(1);
    }
    gguf_close(ctx);
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    bpe = load("gpt-2");
    spm = load("llama-spm");
    wpm = load("bert-bge");
    llama3 = load("llama3");
    gptoss = load("gptoss");
    qwen3 = load("qwen3");
    gemma3 = load("gemma3");
    return 0;
}

static void check_ids(const tok *t, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) abort();
}

/* Encodes text (aborting on an error or an out-of-vocab id) and decodes every id with
 * control tokens rendered; returns the decoded length (in out, cap bytes), ids in *ids. */
static size_t encode_decode(const tok *t, const char *text, size_t len, bool bos, bool special,
                            int32_t **ids, int *n_ids, char *out, size_t cap) {
    int n = tok_encode_alloc(t, text, len, bos, special, ids);
    if (n < 0) abort();
    check_ids(t, *ids, n);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int k = tok_piece(t, (*ids)[i], true, out + o, (int)(cap - o));
        if (k < 0 || (size_t)k > cap - o) abort();
        o += (size_t)k;
    }
    *n_ids = n;
    return o;
}

/* Byte-level BPE without normalization: decode(encode(x)) == x. */
static void exact_roundtrip(const tok *t, const char *text, size_t len, bool special, char *out, size_t cap) {
    int32_t *ids;
    int n;
    size_t o = encode_decode(t, text, len, false, special, &ids, &n, out, cap);
    if (o != len || memcmp(out, text, len) != 0) abort();
    free(ids);
}

static bool valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t l = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (l == 0 || l > n - i) return false;
        for (size_t j = 1; j < l; j++)
            if ((s[i + j] & 0xc0) != 0x80) return false;
        if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] > 0x9f) || (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] > 0x8f))
            return false;
        i += l;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    bool special = data[0] & 1, bos = data[0] & 2;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids = malloc((len + 2) * sizeof *ids);
    char *out = malloc(len * 4 + 64);

    /* byte-level BPE: exact round trip (every id's piece, control tokens rendered) */
    int n = tok_encode(bpe, text, len, bos, special, ids, (int)len + 2);
    if (n < 0 || n > (int)len + 1) abort();
    check_ids(bpe, ids, n);
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int k = tok_piece(bpe, ids[i], true, out + o, (int)(len * 4 + 64 - o));
        if (k < 0) abort();
        o += (size_t)k;
    }
    if (o != len || memcmp(out, text, len) != 0) abort();

    exact_roundtrip(llama3, text, len, special, out, len * 4 + 64);
    exact_roundtrip(gptoss, text, len, special, out, len * 4 + 64);

    /* qwen3 (NFC first): the decoded text encodes to the same ids */
    int32_t *a, *b;
    int na, nb;
    o = encode_decode(qwen3, text, len, false, special, &a, &na, out, len * 4 + 64);
    char *again = malloc(len * 4 + 64);
    encode_decode(qwen3, out, o, false, special, &b, &nb, again, len * 4 + 64);
    if (na != nb || memcmp(a, b, (size_t)na * sizeof *a) != 0) abort();
    free(a); free(b); free(again);

    /* gemma3 (SentencePiece, no space prefix, byte fallback): exact on valid UTF-8 without ▁ */
    o = encode_decode(gemma3, text, len, false, special, &a, &na, out, len * 4 + 64);
    if (valid_utf8(data + 1, len) && !memmem(text, len, "\xe2\x96\x81", 3) && (o != len || memcmp(out, text, len) != 0)) abort();
    free(a);

    /* SentencePiece + streaming decoder: no crash, sane ids, bounded output */
    n = tok_encode(spm, text, len, bos, special, ids, (int)len + 2);
    if (n < 0) abort();
    if (n > (int)len + 2) n = (int)len + 2; /* only the ids that fit were written */
    check_ids(spm, ids, n);
    tok_stream s;
    tok_stream_init(&s, spm);
    int ccap = tok_text_max(spm); /* always enough for one call (tok.h) */
    char *chunk = malloc((size_t)ccap);
    for (int i = 0; chunk && i < n; i++) {
        int k = tok_stream_feed(&s, ids[i], chunk, ccap);
        if (k < 0 || k > ccap) abort();
    }
    if (chunk && tok_stream_flush(&s, chunk, ccap) > 3) abort();
    free(chunk);

    /* WordPiece: no crash, sane ids */
    n = tok_encode(wpm, text, len, bos, special, ids, (int)len + 2);
    if (n < 0) abort();
    check_ids(wpm, ids, n < (int)len + 2 ? n : (int)len + 2);

    /* chat templates: render the bytes as a message, detect them as a template */
    char *z = malloc(len + 1);
    memcpy(z, text, len);
    z[len] = 0;
    tok_chat_msg msgs[2] = {{"system", z}, {"user", z}};
    char *r = NULL;
    if (tok_chat_render((tok_chat_family)(data[0] % TOK_CHAT_UNKNOWN), msgs, 2, true, &r, NULL) != SW_OK) abort();
    free(r);
    (void)tok_chat_detect(z);
    free(z);
    free(out);
    free(ids);
    return 0;
}
