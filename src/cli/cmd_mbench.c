/* cmd_mbench.c — `swiftlet mbench`: single-stream speed of a model through model_forward.
 * Prompt processing: one --prompt-token prefill (chunks of up to 512 tokens, logits for
 * the last row only), after one untimed warm-up pass that pages the weights in. Decode:
 * --gen steps of one token each continuing from that prompt. Reports tok/s, the GB/s of
 * matmul weights the decode reads (weight bytes per token x tok/s; K/V reads excluded)
 * next to the machine's streaming read bandwidth (kq_read_bandwidth), and peak RSS.
 * Batch scaling goes through the engine and is measured by `swiftlet bench`. */
#include "cli/cli.h"
#include "kernels/kq.h"
#include "model/model.h"
#include <errno.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MB_CHUNK 512
#define MB_BLOCK 64

static void usage(void) {
    fprintf(stderr,
            "usage: swiftlet mbench -m MODEL.gguf [--threads N] [--prompt 512] [--gen 128] [--json FILE]\n"
            "  prompt processing and decode tok/s of one sequence, decode GB/s of weights\n"
            "  vs. the machine's read bandwidth, peak RSS\n");
}

int cli_mbench(int argc, char **argv) {
    const char *path = NULL, *json = NULL;
    long threads = 0, n_prompt = 512, n_gen = 128;
    for (int i = 1; i < argc; i += 2) { /* OPTION VALUE pairs */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        if (!v) { fprintf(stderr, "mbench: option '%s' needs a value (or is unknown)\n", a); usage(); return 2; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) path = v;
        else if (!strcmp(a, "--json")) json = v;
        else if (!strcmp(a, "--threads")) bad = cli_parse_long(v, 1, 1024, &threads);
        else if (!strcmp(a, "--prompt")) bad = cli_parse_long(v, 1, 1 << 20, &n_prompt);
        else if (!strcmp(a, "--gen")) bad = cli_parse_long(v, 1, 1 << 20, &n_gen);
        else { fprintf(stderr, "mbench: unknown option '%s'\n", a); usage(); return 2; }
        if (bad) { fprintf(stderr, "mbench: bad value '%s' for %s\n", v, a); return 2; }
    }
    if (!path) { fprintf(stderr, "mbench: -m MODEL is required\n"); usage(); return 2; }
    omp_set_num_threads(threads > 0 ? (int)threads : sw_n_threads());

    sw_err e = {0};
    model *m = NULL;
    model_ws *ws = NULL;
    model_kv *kv = NULL;
    int32_t *toks = NULL, *bt = NULL, *pos = NULL, *seq = NULL;
    float *logits = NULL;
    int status = 1;
    if (model_load(path, &m, &e)) { fprintf(stderr, "mbench: %s\n", e.msg); goto out; }
    const model_config *c = model_get_config(m);
    int total = (int)(n_prompt + n_gen);
    if (total > c->n_ctx_train) {
        fprintf(stderr, "mbench: --prompt %ld + --gen %ld exceed the model's context of %d\n", n_prompt, n_gen, c->n_ctx_train);
        goto out;
    }
    int chunk = n_prompt < MB_CHUNK ? (int)n_prompt : MB_CHUNK;
    int n_blocks = (total + MB_BLOCK - 1) / MB_BLOCK;
    toks = malloc((size_t)total * sizeof *toks);
    bt = malloc((size_t)n_blocks * sizeof *bt);
    pos = malloc((size_t)chunk * sizeof *pos);
    seq = calloc((size_t)chunk, sizeof *seq);
    logits = malloc((size_t)c->n_vocab * sizeof *logits);
    if (!toks || !bt || !pos || !seq || !logits) { fprintf(stderr, "mbench: out of memory\n"); goto out; }
    uint32_t r = 12345;
    for (int i = 0; i < total; i++) { r = r * 1664525u + 1013904223u; toks[i] = (int32_t)((r >> 8) % (uint32_t)c->n_vocab); }
    for (int i = 0; i < n_blocks; i++) bt[i] = i;
    if (model_ws_create(m, chunk, total, &ws, &e) || model_kv_create(c, GGUF_DTYPE_F16, MB_BLOCK, n_blocks, &kv, &e)) {
        fprintf(stderr, "mbench: %s\n", e.msg);
        goto out;
    }
    const int32_t *tables[1] = {bt};
    double t_pp = 0;
    for (int pass = 0; pass < 2; pass++) { /* pass 0 warms up (pages in the weights) */
        double t0 = sw_now_ms();
        for (int s = 0; s < n_prompt; s += chunk) {
            int n = (int)n_prompt - s < chunk ? (int)n_prompt - s : chunk;
            for (int j = 0; j < n; j++) pos[j] = s + j;
            model_batch b = {.n_tokens = n, .tokens = toks + s, .pos = pos, .seq = seq, .n_seqs = 1, .block_tables = tables};
            if (model_forward(m, ws, kv, &b, logits, &e)) { fprintf(stderr, "mbench: %s\n", e.msg); goto out; }
        }
        t_pp = sw_now_ms() - t0;
    }
    double t0 = sw_now_ms();
    for (int i = 0; i < n_gen; i++) {
        int32_t p = (int32_t)n_prompt + i;
        model_batch b = {.n_tokens = 1, .tokens = toks + p, .pos = &p, .seq = seq, .n_seqs = 1, .block_tables = tables};
        if (model_forward(m, ws, kv, &b, logits, &e)) { fprintf(stderr, "mbench: %s\n", e.msg); goto out; }
    }
    double t_tg = sw_now_ms() - t0;
    double pp = n_prompt * 1000.0 / t_pp, tg = n_gen * 1000.0 / t_tg;
    double wbytes = (double)model_weight_bytes(m), gbs = wbytes * tg / 1e9;
    struct rusage ru; /* before the bandwidth test, whose 1 GiB buffer would count */
    getrusage(RUSAGE_SELF, &ru);
    double bw = kq_read_bandwidth((size_t)1 << 30);
    double rss_mb = ru.ru_maxrss / 1024.0, file_mb = gguf_file_size(model_gguf(m)) / 1048576.0;
    int nt = omp_get_max_threads();

    printf("model      %s (%s, %s weights, %d layers, dim %d, vocab %d)\n", path, model_arch_name(c->arch),
           gguf_dtype_name(c->weight_dtype), c->n_layer, c->n_embd, c->n_vocab);
    printf("kernels    %s, %d threads\n", kq_isa_name(), nt);
    printf("%-28s %12s\n", "measure", "value");
    printf("%-28s %12.1f\n", "prompt tok/s", pp);
    printf("%-28s %12.1f\n", "decode tok/s", tg);
    printf("%-28s %12.1f\n", "decode weight GB/s", gbs);
    printf("%-28s %12.1f\n", "machine read GB/s", bw);
    printf("%-28s %11.0f%%\n", "decode % of read bandwidth", bw > 0 ? 100 * gbs / bw : 0);
    printf("%-28s %12.1f\n", "weights MB read per token", wbytes / 1048576.0);
    printf("%-28s %12.1f\n", "peak RSS MB", rss_mb);
    printf("%-28s %12.1f\n", "file MB", file_mb);
    printf("(prompt %ld tokens in %.1f ms, decode %ld tokens in %.1f ms)\n", n_prompt, t_pp, n_gen, t_tg);
    if (json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f}",
                              "model", path, "weight_type", gguf_dtype_name(c->weight_dtype), "isa", kq_isa_name(),
                              "threads", nt, "prompt_tokens", (json_int_t)n_prompt, "gen_tokens", (json_int_t)n_gen,
                              "prompt_tok_s", pp, "decode_tok_s", tg, "decode_weight_gbs", gbs, "read_bandwidth_gbs", bw,
                              "weight_bytes_per_token", wbytes, "peak_rss_mb", rss_mb, "file_mb", file_mb);
        int bad = !o || json_dump_file(o, json, JSON_INDENT(2)) != 0;
        json_decref(o);
        if (bad) { fprintf(stderr, "mbench: cannot write %s\n", json); goto out; }
    }
    status = 0;
out:
    model_kv_destroy(kv);
    model_ws_destroy(ws);
    model_free(m);
    free(toks); free(bt); free(pos); free(seq); free(logits);
    return status;
}
