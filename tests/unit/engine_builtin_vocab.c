/* engine_builtin_vocab.c — the demo model without any vocab file (what `make serve` uses
 * on a machine without ../shared): model_gen's built-in byte-level vocab loads as a
 * tokenizer, maps bytes to their own ids, round-trips text, renders ChatML, and the
 * model runs a forward pass. */
#include "model/model.h"
#include "model/model_gen.h"
#include "tokenizer/tok.h"
#include <math.h>
#include "t.h"

int main(void) {
    char path[] = "/tmp/swiftlet-builtin-XXXXXX";
    int fd = mkstemp(path);
    T_OK(fd >= 0);
    close(fd);
    model_gen_params p;
    model_gen_params_init(&p);
    p.type = "q8_0";
    sw_err err = {0};
    T_CHECK(model_gen_write(&p, path, &err) == SW_OK, "%s", err.msg);
    gguf_ctx *g = NULL;
    T_CHECK(gguf_open(path, &g, &err) == SW_OK, "%s", err.msg);
    tok *t = NULL;
    if (g) T_CHECK(tok_create(g, &t, &err) == SW_OK, "%s", err.msg);
    if (t) {
        T_EQ_INT(tok_n_vocab(t), 259);
        const char *text = "Hi w\xc3\xb6rld\n";
        int32_t ids[64];
        int n = tok_encode(t, text, strlen(text), true, false, ids, 64);
        T_EQ_INT(n, (int)strlen(text)); /* one token per byte, no BOS */
        for (int i = 0; i < n && i < 64; i++) T_EQ_INT(ids[i], (unsigned char)text[i]);
        tok_stream s;
        tok_stream_init(&s, t);
        s.first = false;
        char out[256];
        int len = 0;
        for (int i = 0; i < n; i++) len += tok_stream_feed(&s, ids[i], out + len, (int)sizeof out - len);
        len += tok_stream_flush(&s, out + len, (int)sizeof out - len);
        T_CHECK(len == (int)strlen(text) && !memcmp(out, text, (size_t)len), "round trip gave %.*s", len, out);
        n = tok_encode(t, "<|im_end|>", 10, false, true, ids, 64);
        T_CHECK(n == 1 && tok_is_eog(t, ids[0]), "im_end is one end-of-generation token (n=%d)", n);
        const char *tmpl = NULL;
        size_t tl;
        T_OK(gguf_get_str(g, "tokenizer.chat_template", &tmpl, &tl) == SW_OK && tok_chat_detect(tmpl) == TOK_CHAT_CHATML);
        tok_destroy(t);
    }
    gguf_close(g);
    model *m = NULL;
    T_CHECK(model_load(path, &m, &err) == SW_OK, "%s", err.msg);
    if (m) {
        model_kv *kv = NULL;
        model_ws *ws = NULL;
        T_OK(model_kv_create(model_get_config(m), GGUF_DTYPE_F32, 16, 1, &kv, &err) == SW_OK);
        T_OK(model_ws_create(m, 4, 16, &ws, &err) == SW_OK);
        int32_t toks[2] = {72, 105}, pos[2] = {0, 1}, seq[2] = {0, 0}, table[1] = {0};
        const int32_t *tables[1] = {table};
        model_batch b = {.n_tokens = 2, .tokens = toks, .pos = pos, .seq = seq, .logits = NULL,
                         .n_seqs = 1, .block_tables = tables};
        float logits[259];
        if (kv && ws) T_CHECK(model_forward(m, ws, kv, &b, logits, &err) == SW_OK, "%s", err.msg);
        float mx = 0;
        for (int i = 0; i < 259; i++) mx = fmaxf(mx, fabsf(logits[i]));
        T_CHECK(mx > 1 && mx < 1000, "logits are O(10): max |logit| %g", mx);
        model_ws_destroy(ws);
        model_kv_destroy(kv);
        model_free(m);
    }
    unlink(path);
    return t_done();
}
