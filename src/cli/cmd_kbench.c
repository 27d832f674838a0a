/* cmd_kbench.c — `swiftlet kbench`: kernel throughput against the machine's roofline.
 * Measures the streaming read bandwidth (all threads, a buffer far larger than L3), then
 * for each weight dtype and each Qwen2.5-0.5B matmul shape (n_in x n_out) times
 *   GEMV (n_tok = 1): ms per call, GB/s of weight bytes read and % of the read bandwidth
 *     (the weights rotate through copies larger than L3, as in a real decode step), and
 *   GEMM (n_tok = --tokens, default 128): GOPS (2 ops per multiply-add).
 * Weights are random floats quantized once. Options: --threads N, --json FILE,
 * --tokens N, --dtype NAME (only that one), --quick (shorter timing). */
#include "cli/cli.h"
#include "kernels/kq.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct kb_result {
    const char *dtype;
    int64_t n_in, n_out;
    bool valid;
    double gemv_ms, gemv_gbs, gemm_ms, gemm_gops;
} kb_result;

static const struct { uint32_t dtype; const char *name; } kb_dtypes[] = {
    {GGUF_DTYPE_Q8_0, "Q8_0"}, {GGUF_DTYPE_Q4_0, "Q4_0"}, {GGUF_DTYPE_Q4_K, "Q4_K"},
    {GGUF_DTYPE_Q6_K, "Q6_K"}, {GGUF_DTYPE_F16, "F16"},
};
static const int64_t kb_shapes[][2] = {{896, 896}, {896, 4864}, {4864, 896}, {896, 151936}}; /* n_in, n_out */

static void usage(void) {
    fprintf(stderr, "usage: swiftlet kbench [--threads N] [--tokens N] [--dtype Q8_0|Q4_0|Q4_K|Q6_K|F16] [--json FILE] [--quick]\n");
}

static uint64_t kb_rng = 0x2545f4914f6cdd1dull;
static float kb_rand(void) {
    kb_rng ^= kb_rng << 13;
    kb_rng ^= kb_rng >> 7;
    kb_rng ^= kb_rng << 17;
    return (float)((kb_rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

/* Times fn over reps, returns the best ms of a few rounds. */
static int bench_one(uint32_t dtype, int64_t n_in, int64_t n_out, int64_t n_tok_gemm, double min_ms, kb_result *r) {
    const size_t rb = gguf_row_bytes(dtype, n_in);
    if (!rb) return SW_ERR_UNSUPPORTED;
    const size_t wbytes = rb * (size_t)n_out;
    /* enough copies that one pass over them does not fit in any cache */
    const size_t target = (size_t)512 << 20;
    int copies = (int)((target + wbytes - 1) / wbytes);
    if (copies < 2) copies = 2;
    uint8_t *w = malloc(wbytes * copies);
    float *row = malloc((size_t)n_in * sizeof(float));
    float *x = malloc((size_t)n_in * n_tok_gemm * sizeof(float));
    float *y = malloc((size_t)n_out * n_tok_gemm * sizeof(float));
    size_t sb = kq_matmul_scratch_bytes(dtype, n_in, n_tok_gemm);
    void *scratch = aligned_alloc(64, (sb + 63) & ~(size_t)63);
    if (!w || !row || !x || !y || !scratch) {
        free(w); free(row); free(x); free(y); free(scratch);
        return SW_ERR_NOMEM;
    }
    /* quantize a handful of distinct rows and tile them (quantizing 150k rows is slow) */
    const int64_t distinct = n_out < 64 ? n_out : 64;
    for (int64_t o = 0; o < distinct; o++) {
        for (int64_t i = 0; i < n_in; i++) row[i] = kb_rand() * 0.1f;
        kq_quantize_row(dtype, row, w + o * rb, n_in);
    }
    for (int64_t o = distinct; o < n_out; o++) memcpy(w + o * rb, w + (o % distinct) * rb, rb);
    for (int c = 1; c < copies; c++) memcpy(w + c * wbytes, w, wbytes);
    for (int64_t i = 0; i < n_in * n_tok_gemm; i++) x[i] = kb_rand();

    /* GEMV: cycle through the copies */
    double best = 1e30;
    int calls = 0;
    double t_start = sw_now_ms();
    do {
        double t0 = sw_now_ms();
        for (int c = 0; c < copies; c++) kq_matmul(dtype, w + c * wbytes, n_out, n_in, x, 1, y, scratch);
        double ms = (sw_now_ms() - t0) / copies;
        if (ms < best) best = ms;
        calls += copies;
    } while (sw_now_ms() - t_start < min_ms || calls < 8);
    r->gemv_ms = best;
    r->gemv_gbs = (double)wbytes / (best * 1e6);

    /* GEMM: same weights (copy 0), n_tok_gemm tokens */
    best = 1e30;
    calls = 0;
    t_start = sw_now_ms();
    do {
        double t0 = sw_now_ms();
        kq_matmul(dtype, w, n_out, n_in, x, n_tok_gemm, y, scratch);
        double ms = sw_now_ms() - t0;
        if (ms < best) best = ms;
        calls++;
    } while ((sw_now_ms() - t_start < min_ms || calls < 2) && calls < 1000);
    r->gemm_ms = best;
    r->gemm_gops = 2.0 * (double)n_in * (double)n_out * (double)n_tok_gemm / (best * 1e6);
    free(w); free(row); free(x); free(y); free(scratch);
    return SW_OK;
}

int cli_kbench(int argc, char **argv) {
    const char *json_path = NULL, *only = NULL;
    int64_t n_tok = 128;
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            int n = atoi(argv[++i]);
            if (n <= 0) { usage(); return 2; }
            char buf[16];
            snprintf(buf, sizeof buf, "%d", n);
            setenv("SWIFTLET_THREADS", buf, 1);
        } else if (!strcmp(argv[i], "--json") && i + 1 < argc) {
            json_path = argv[++i];
        } else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) {
            n_tok = atoll(argv[++i]);
            if (n_tok <= 0 || n_tok > 4096) { usage(); return 2; }
        } else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            only = argv[++i];
        } else if (!strcmp(argv[i], "--quick")) {
            quick = true;
        } else {
            usage();
            return !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ? 0 : 2;
        }
    }
    const double min_ms = quick ? 60 : 250;
    const int threads = sw_n_threads();
    printf("swiftlet kbench: isa %s, %d threads\n", kq_isa_name(), threads);
    double bw = kq_read_bandwidth((size_t)1 << 30);
    printf("read bandwidth: %.1f GB/s\n\n", bw);
    printf("%-5s %13s | %9s %8s %6s | %9s %8s\n", "dtype", "n_in x n_out", "gemv ms", "GB/s", "%bw", "gemm ms", "GOPS");
    kb_result res[32];
    int nres = 0;
    for (size_t d = 0; d < sizeof kb_dtypes / sizeof kb_dtypes[0]; d++) {
        if (only && strcmp(only, kb_dtypes[d].name)) continue;
        for (size_t s = 0; s < sizeof kb_shapes / sizeof kb_shapes[0]; s++) {
            kb_result *r = &res[nres++];
            memset(r, 0, sizeof *r);
            r->dtype = kb_dtypes[d].name;
            r->n_in = kb_shapes[s][0];
            r->n_out = kb_shapes[s][1];
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)r->n_in, (long long)r->n_out);
            int rc = bench_one(kb_dtypes[d].dtype, r->n_in, r->n_out, n_tok, min_ms, r);
            if (rc == SW_ERR_UNSUPPORTED) {
                printf("%-5s %13s | n/a (n_in not a multiple of the %s block)\n", r->dtype, shape, r->dtype);
                continue;
            }
            if (rc) {
                fprintf(stderr, "kbench: %s\n", sw_status_name(rc));
                return 1;
            }
            r->valid = true;
            printf("%-5s %13s | %9.3f %8.1f %5.0f%% | %9.2f %8.1f\n", r->dtype, shape, r->gemv_ms, r->gemv_gbs,
                   bw > 0 ? 100 * r->gemv_gbs / bw : 0, r->gemm_ms, r->gemm_gops);
            fflush(stdout);
        }
    }
    printf("\n(gemv: n_tok=1, weights cycled through copies > L3; gemm: n_tok=%lld, GOPS = 2*n_in*n_out*n_tok/s)\n",
           (long long)n_tok);
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            fprintf(stderr, "kbench: cannot write %s\n", json_path);
            return 1;
        }
        fprintf(f, "{\n  \"isa\": \"%s\",\n  \"threads\": %d,\n  \"read_bandwidth_gbs\": %.2f,\n  \"gemm_tokens\": %lld,\n  \"results\": [",
                kq_isa_name(), threads, bw, (long long)n_tok);
        bool first = true;
        for (int i = 0; i < nres; i++) {
            if (!res[i].valid) continue;
            fprintf(f, "%s\n    {\"dtype\": \"%s\", \"n_in\": %lld, \"n_out\": %lld, \"gemv_ms\": %.4f, \"gemv_gbs\": %.2f, "
                       "\"gemv_bw_pct\": %.1f, \"gemm_ms\": %.3f, \"gemm_gops\": %.2f}",
                    first ? "" : ",", res[i].dtype, (long long)res[i].n_in, (long long)res[i].n_out, res[i].gemv_ms,
                    res[i].gemv_gbs, bw > 0 ? 100 * res[i].gemv_gbs / bw : 0, res[i].gemm_ms, res[i].gemm_gops);
            first = false;
        }
        fprintf(f, "\n  ]\n}\n");
        fclose(f);
    }
    return 0;
}
