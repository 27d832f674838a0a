/* cmd_info.c — `swiftlet info -m MODEL`: what a user wants to know about a GGUF file
 * before serving it — architecture, parameter count, tensor types (count per type),
 * shape, RoPE and attention variant, context length, chat template family, end-of-turn
 * tokens and K/V cache bytes per token. Tensor types and metadata come from the GGUF
 * reader, so a file the model loader refuses is still described, with the loader's
 * one-line reason. */
#include "cli/cli.h"
#include "model/model.h"
#include "tokenizer/tok.h"
#include <stdio.h>
#include <string.h>

static const char *const ROPE_NAMES[] = {"none", "linear", "yarn", "rope_freqs (Llama 3.1)", "LongRoPE (short/long factors)"};

/* "F32 x 5, Q4_K x 12" in tensor order of first appearance. */
static void print_types(FILE *out, const gguf_ctx *g) {
    uint32_t types[64];
    int counts[64], n = 0;
    uint64_t params = 0;
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        params += (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
        int k = 0;
        while (k < n && types[k] != t->dtype) k++;
        if (k == n && n < 64) { types[n] = t->dtype; counts[n++] = 0; }
        if (k < n) counts[k]++;
    }
    if (params >= 1000000000ull) fprintf(out, "parameters      %.2f B (%llu)\n", (double)params / 1e9, (unsigned long long)params);
    else fprintf(out, "parameters      %.2f M (%llu)\n", (double)params / 1e6, (unsigned long long)params);
    fprintf(out, "tensor types    ");
    for (int k = 0; k < n; k++) {
        const char *name = gguf_dtype_name(types[k]);
        if (!strcmp(name, "?")) fprintf(out, "%stype %u x %d", k ? ", " : "", types[k], counts[k]);
        else fprintf(out, "%s%s x %d", k ? ", " : "", name, counts[k]);
    }
    fprintf(out, " (%lld tensors)\n", (long long)gguf_n_tensors(g));
}

static void print_model(FILE *out, const model *m) {
    const model_config *c = model_get_config(m);
    fprintf(out, "architecture    %s\n", model_arch_name(c->arch));
    fprintf(out, "shape           embd %d, layers %d, heads %d (kv %d, head dim %d), ffn %d, vocab %d, %s output\n",
            c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->head_dim, c->n_ff, c->n_vocab, c->tied_output ? "tied" : "separate");
    fprintf(out, "main weights    %s (%.1f MiB read per decoded token)\n", gguf_dtype_name(c->weight_dtype),
            (double)model_weight_bytes(m) / (1 << 20));
    fprintf(out, "rope            %s pairs, base %g, %d of %d dims rotated, scaling %s", c->rope_neox ? "NEOX" : "adjacent",
            c->rope_theta, c->n_rot, c->head_dim, ROPE_NAMES[c->rope_scaling]);
    if (c->rope_scaling == MODEL_ROPE_LINEAR || c->rope_scaling == MODEL_ROPE_YARN) fprintf(out, " x%g", c->rope_factor);
    if (c->sliding_window && c->rope_scaling != MODEL_ROPE_NONE) fprintf(out, " on global layers");
    if (c->rope_scaling == MODEL_ROPE_YARN || c->rope_scaling == MODEL_ROPE_LONGROPE)
        fprintf(out, " (original context %d)", c->rope_ctx_orig);
    fprintf(out, "\n");
    if (c->sliding_window)
        fprintf(out, "attention       sliding window %d on local layers, every %dth layer global (local RoPE base %g)\n",
                c->sliding_window, c->swa_pattern, c->rope_theta_local);
    if (c->logit_softcap > 0) fprintf(out, "logit softcap   %g\n", c->logit_softcap);
    fprintf(out, "context         %d tokens (from the file)\n", c->n_ctx_train);
    char q8[64] = "no Q8_0: head dim not a multiple of 32";
    uint64_t q8_bytes = model_kv_bytes_per_token(m, GGUF_DTYPE_Q8_0);
    if (q8_bytes) snprintf(q8, sizeof q8, "%llu in Q8_0", (unsigned long long)q8_bytes);
    fprintf(out, "KV cache        %llu bytes per token in F16 (%llu in F32, %s); full context %.1f MiB in F16\n",
            (unsigned long long)model_kv_bytes_per_token(m, GGUF_DTYPE_F16),
            (unsigned long long)model_kv_bytes_per_token(m, GGUF_DTYPE_F32), q8,
            (double)model_kv_bytes_per_token(m, GGUF_DTYPE_F16) * c->n_ctx_train / (1 << 20));
}

static void print_tokenizer(FILE *out, const gguf_ctx *g) {
    const char *tmpl = NULL;
    size_t len = 0;
    bool has = gguf_get_str(g, "tokenizer.chat_template", &tmpl, &len) == SW_OK;
    tok_chat_family f = has ? tok_chat_detect(tmpl) : TOK_CHAT_UNKNOWN;
    if (!has) fprintf(out, "chat template   none in the file (serve --chat-template NAME to pick one)\n");
    else fprintf(out, "chat template   %s (%zu bytes in the file)\n", f == TOK_CHAT_UNKNOWN ? "present, family not recognised" : tok_chat_family_name(f), len);
    tok *t = NULL;
    sw_err e = {0};
    if (tok_create(g, &t, &e)) {
        fprintf(out, "tokenizer       unusable: %s\n", e.msg);
        return;
    }
    fprintf(out, "end of turn     ");
    int shown = 0, total = 0;
    for (int32_t id = 0; id < tok_n_vocab(t); id++) {
        if (!tok_is_eog(t, id)) continue;
        total++;
        if (shown == 8) continue;
        char piece[64];
        int n = tok_piece(t, id, true, piece, (int)sizeof piece - 1);
        if (n < 0 || n >= (int)sizeof piece) n = 0;
        piece[n] = 0;
        fprintf(out, "%s%d \"%s\"", shown++ ? ", " : "", id, piece);
    }
    if (total > shown) fprintf(out, " (+%d more)", total - shown);
    fprintf(out, "%s\n", total ? "" : "none");
    tok_destroy(t);
}

int cli_info_print(FILE *out, const char *path) {
    gguf_ctx *g = NULL;
    sw_err e = {0};
    if (gguf_open(path, &g, &e)) {
        fprintf(out, "info: %s\n", e.msg);
        return 1;
    }
    const char *arch = "?", *name = NULL;
    size_t len;
    gguf_get_str(g, "general.architecture", &arch, &len);
    fprintf(out, "file            %s (%.1f MiB, GGUF v%u)\n", path, (double)gguf_file_size(g) / (1 << 20), gguf_version(g));
    if (gguf_get_str(g, "general.name", &name, &len) == SW_OK) fprintf(out, "name            %s\n", name);
    print_types(out, g);
    model *m = NULL;
    int rc = model_load(path, &m, &e);
    if (rc) fprintf(out, "architecture    %s — not loadable: %s\n", arch, e.msg);
    else print_model(out, m);
    print_tokenizer(out, g);
    model_free(m);
    gguf_close(g);
    return rc ? 1 : 0;
}

int cli_info(int argc, char **argv) {
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if ((!strcmp(argv[i], "-m") || !strcmp(argv[i], "--model")) && i + 1 < argc) { path = argv[++i]; continue; }
        bool help = !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help");
        if (!help) fprintf(stderr, "info: unknown option %s\n", argv[i]);
        fprintf(stderr, "usage: swiftlet info -m MODEL.gguf\n");
        return help ? 0 : 2;
    }
    if (!path) {
        fprintf(stderr, "usage: swiftlet info -m MODEL.gguf\n");
        return 2;
    }
    return cli_info_print(stdout, path);
}
