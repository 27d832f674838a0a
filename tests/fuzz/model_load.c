/* model_load.c — libFuzzer target past the GGUF parser: the input is a whole model file
 * image; when it parses, model_load_gguf reads the config and every tensor, tok_create
 * builds the tokenizer from the same metadata, and a model that loads runs a one-token
 * forward pass (token 0 at position 0, plus a second token at position 1 when the vocab
 * has one) into a small paged K/V store; a tokenizer that builds encodes a short text and
 * decodes it back through the streaming detokenizer. A length, shape or optional tensor
 * the loader failed to check shows up as an ASan/UBSan report or a crash.
 * Seeds (tests/fuzz/run.sh): small generated llama/qwen2 files (tests/fuzz/seeds/model_load)
 * and the smaller ../shared models as they are. */
#include "model/model.h"
#include "tokenizer/tok.h"
#include <stdlib.h>
#include <string.h>

static void run_forward(model *m) {
    const model_config *c = model_get_config(m);
    sw_err err = {0};
    model_kv *kv = NULL;
    model_ws *ws = NULL;
    float *logits = malloc((size_t)c->n_vocab * 2 * sizeof *logits);
    if (logits && model_kv_create(c, GGUF_DTYPE_F16, 16, 1, &kv, &err) == SW_OK &&
        model_ws_create(m, 2, 16, &ws, &err) == SW_OK) {
        int32_t tokens[2] = {0, c->n_vocab > 1 ? 1 : 0}, pos[2] = {0, 1}, seq[2] = {0, 0}, bt[1] = {0};
        const int32_t *tables[1] = {bt};
        uint8_t want[2] = {1, 1};
        model_batch b = {.n_tokens = 2, .tokens = tokens, .pos = pos, .seq = seq, .logits = want,
                         .n_seqs = 1, .block_tables = tables};
        if (model_forward(m, ws, kv, &b, logits, &err) == SW_OK) {
            volatile float acc = logits[0] + logits[(size_t)c->n_vocab * 2 - 1];
            (void)acc;
        }
    }
    model_ws_destroy(ws);
    model_kv_destroy(kv);
    free(logits);
}

static void run_tokenizer(const tok *t) {
    static const char text[] = "Hello world! \xc3\xa9t\xc3\xa9 <|im_end|> 12345\n";
    int32_t *ids = NULL;
    int n = tok_encode_alloc(t, text, sizeof text - 1, true, true, &ids);
    if (n > 0) {
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) abort();
        tok_stream s;
        tok_stream_init(&s, t);
        int cap = tok_text_max(t);
        char *out = malloc((size_t)cap);
        for (int i = 0; out && i < n; i++)
            if (tok_stream_feed(&s, ids[i], out, cap) > cap) abort(); /* tok_text_max always suffices */
        if (out && tok_stream_flush(&s, out, cap) > cap) abort();
        free(out);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_ctx *g;
    sw_err err = {0};
    if (gguf_parse(data, size, &g, &err)) return 0;
    tok *t = NULL;
    if (tok_create(g, &t, &err) == SW_OK) run_tokenizer(t);
    tok_destroy(t);
    model *m;
    if (model_load_gguf(g, &m, &err) != SW_OK) return 0; /* g closed */
    run_forward(m);
    model_free(m);
    return 0;
}
