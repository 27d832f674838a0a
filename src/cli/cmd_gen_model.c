/* cmd_gen_model.c — `swiftlet gen-model` (write a random-weight model with a real
 * tokenizer) and `swiftlet quantize` (convert a model's F32/F16 weights), thin argument
 * parsers over model_gen_write / model_gen_quantize. */
#include "cli/cli.h"
#include "model/model_gen.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gen_usage(void) {
    fprintf(stderr,
            "usage: swiftlet gen-model [--vocab VOCAB.gguf|builtin] -o OUT.gguf [--preset NAME] [--arch llama|qwen2]\n"
            "         [--type f32|f16|q8_0|q4_0|q5_0|q4_k_m|q5_k_m] [--seed S] [--name NAME]\n"
            "         [--embd N] [--layers N] [--heads N] [--kv-heads N] [--ffn N] [--vocab-size N]\n"
            "         [--ctx N] [--theta F] [--tied 0|1] [--head-dim N]\n"
            "--arch also takes qwen3, gemma3, phi3 (each with its family's tensors and metadata).\n"
            "presets: smollm2-135m, qwen2.5-0.5b, llama-3.2-1b (with rope_freqs), qwen3-0.6b, gemma3-1b,\n"
            "         phi-4-mini, tiny (default; 64/2/4/2/128, the vocab's size)\n"
            "--preset none takes the shape from the flags alone.\n");
}

/* Parses a positive integer flag value. */
static int parse_i64(const char *flag, const char *s, int64_t *out) {
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0) {
        fprintf(stderr, "gen-model: %s expects a non-negative integer, got '%s'\n", flag, s);
        return 1;
    }
    *out = v;
    return 0;
}

int cli_gen_model(int argc, char **argv) {
    model_gen_params p;
    model_gen_params_init(&p);
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            gen_usage();
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gen-model: %s needs a value\n", a);
            gen_usage();
            return 2;
        }
        const char *v = argv[++i];
        int64_t n = 0;
        int bad = 0;
        if (!strcmp(a, "--vocab")) p.vocab_path = strcmp(v, "builtin") ? v : NULL;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--preset")) p.preset = strcmp(v, "none") ? v : NULL;
        else if (!strcmp(a, "--arch")) p.arch = v;
        else if (!strcmp(a, "--type")) p.type = v;
        else if (!strcmp(a, "--name")) p.name = v;
        else if (!strcmp(a, "--seed")) { bad = parse_i64(a, v, &n); p.seed = (uint64_t)n; }
        else if (!strcmp(a, "--embd")) bad = parse_i64(a, v, &p.n_embd);
        else if (!strcmp(a, "--layers")) bad = parse_i64(a, v, &p.n_layer);
        else if (!strcmp(a, "--heads")) bad = parse_i64(a, v, &p.n_head);
        else if (!strcmp(a, "--kv-heads")) bad = parse_i64(a, v, &p.n_head_kv);
        else if (!strcmp(a, "--head-dim")) bad = parse_i64(a, v, &p.head_dim);
        else if (!strcmp(a, "--ffn")) bad = parse_i64(a, v, &p.n_ff);
        else if (!strcmp(a, "--vocab-size")) bad = parse_i64(a, v, &p.n_vocab);
        else if (!strcmp(a, "--ctx")) bad = parse_i64(a, v, &p.n_ctx);
        else if (!strcmp(a, "--tied")) { bad = parse_i64(a, v, &n) || n > 1; p.tied = (int)n; }
        else if (!strcmp(a, "--theta")) {
            char *end;
            p.rope_theta = strtof(v, &end);
            bad = !*v || *end || !(p.rope_theta > 0);
        } else {
            fprintf(stderr, "gen-model: unknown option %s\n", a);
            gen_usage();
            return 2;
        }
        if (bad) {
            fprintf(stderr, "gen-model: bad value for %s: '%s'\n", a, v);
            return 2;
        }
    }
    if (!out) {
        fprintf(stderr, "gen-model: -o is required\n");
        gen_usage();
        return 2;
    }
    sw_err err = {0};
    int rc = model_gen_write(&p, out, &err);
    if (rc) {
        fprintf(stderr, "gen-model: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "gen-model: wrote %s\n", out);
    return 0;
}

int cli_quantize(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: swiftlet quantize IN.gguf OUT.gguf f16|q8_0|q4_0|q5_0|q4_k_m|q5_k_m\n");
        return 2;
    }
    sw_err err = {0};
    int rc = model_gen_quantize(argv[1], argv[2], argv[3], &err);
    if (rc) {
        fprintf(stderr, "quantize: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "quantize: wrote %s\n", argv[2]);
    return 0;
}
