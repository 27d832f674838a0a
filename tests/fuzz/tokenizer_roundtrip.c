/* tokenizer_roundtrip.c — libFuzzer target: arbitrary bytes -> encode -> decode with the
 * gpt-2 (byte-level BPE), llama-spm (SentencePiece) and bert-bge (WordPiece) vocabs
 * from ../shared/vocab, loaded once. Byte-level BPE must give back the input bytes exactly (control tokens
 * rendered, so parse_special round-trips too); the others and the streaming decoder
 * must not crash and must return ids inside the vocab. The same bytes also go through
 * the chat-template renderer and detector. The first input byte picks the options. */
#include "tokenizer/tok.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok *bpe, *spm, *wpm;

static tok *load(const char *path) {
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
    bpe = load("../shared/vocab/ggml-vocab-gpt-2.gguf");
    spm = load("../shared/vocab/ggml-vocab-llama-spm.gguf");
    wpm = load("../shared/vocab/ggml-vocab-bert-bge.gguf");
    return 0;
}

static void check_ids(const tok *t, const int32_t *ids, int n) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) abort();
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
