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
#include <unistd.h>

typedef struct kb_result {
    const char *dtype;
    int64_t n_in, n_out;
    bool valid;
    double gemv_ms, gemv_gbs, gemm_ms, gemm_gops;
} kb_result;

static const struct { uint32_t dtype; const char *name; } kb_dtypes[] = {
    {GGUF_DTYPE_Q8_0, "Q8_0"}, {GGUF_DTYPE_Q4_0, "Q4_0"}, {GGUF_DTYPE_Q5_0, "Q5_0"}, {GGUF_DTYPE_Q5_1, "Q5_1"},
    {GGUF_DTYPE_Q4_K, "Q4_K"}, {GGUF_DTYPE_Q5_K, "Q5_K"}, {GGUF_DTYPE_Q6_K, "Q6_K"}, {GGUF_DTYPE_F16, "F16"},
};
static const int64_t kb_shapes[][2] = {{896, 896}, {896, 4864}, {4864, 896}, {896, 151936}}; /* n_in, n_out */

static void usage(void) {
    fprintf(stderr, "usage: swiftlet kbench [--threads N] [--tokens N] [--dtype Q8_0|Q4_0|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K|F16] [--json FILE] [--quick]\n");
}

static uint64_t kb_rng = 0x2545f4914f6cdd1dull;
static float kb_rand(void) {
    kb_rng ^= kb_rng << 13;
    kb_rng ^= kb_rng >> 7;
    kb_rng ^= kb_rng << 17;
    return (float)((kb_rng >> 40) & 0xffffff) / 16777216.0f - 0.5f;
}

/* 3 × the last-level cache (at least 384 MiB, at most 2 GiB): machines with stacked L3
 * (hundreds of MiB) would otherwise serve "memory" reads from cache. */
static size_t big_buffer_bytes(void) {
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    size_t b = l3 > 0 ? (size_t)l3 * 3 : 0;
    if (b < ((size_t)384 << 20)) b = (size_t)384 << 20;
    if (b > ((size_t)2 << 30)) b = (size_t)2 << 30;
    return b;
}

/* Fills w (bytes) with valid blocks of dtype: random rows quantized once and tiled
 * (timings do not depend on the values, only on them being ordinary numbers). */
static int fill_weights(uint32_t dtype, uint8_t *w, size_t bytes) {
    const int64_t n = 64 * 4864; /* a multiple of every block size */
    const size_t pat = gguf_row_bytes(dtype, n);
    uint8_t *p = malloc(pat);
    float *f = malloc((size_t)n * sizeof(float));
    if (!p || !f || !pat) {
        free(p);
        free(f);
        return SW_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n; i++) f[i] = kb_rand() * 0.1f;
    kq_quantize_row(dtype, f, p, n);
    for (size_t off = 0; off < bytes; off += pat) memcpy(w + off, p, bytes - off < pat ? bytes - off : pat);
    free(p);
    free(f);
    return SW_OK;
}

/* GEMV over copies of the matrix laid end to end in w (wsize bytes, more than any cache),
 * then GEMM of n_tok_gemm tokens on the first copy; best time of repeated runs. */
static int bench_one(uint32_t dtype, const uint8_t *w, size_t wsize, int64_t n_in, int64_t n_out, int64_t n_tok_gemm,
                     double min_ms, kb_result *r) {
    const size_t rb = gguf_row_bytes(dtype, n_in);
    if (!rb) return SW_ERR_UNSUPPORTED;
    const size_t wbytes = rb * (size_t)n_out;
    int copies = (int)(wsize / wbytes);
    if (copies < 1) return SW_ERR_RANGE;
    float *x = malloc((size_t)n_in * n_tok_gemm * sizeof(float));
    float *y = malloc((size_t)n_out * n_tok_gemm * sizeof(float));
    size_t sb = kq_matmul_scratch_bytes(dtype, n_in, n_tok_gemm);
    void *scratch = aligned_alloc(64, (sb + 63) & ~(size_t)63);
    if (!x || !y || !scratch) {
        free(x); free(y); free(scratch);
        return SW_ERR_NOMEM;
    }
    for (int64_t i = 0; i < n_in * n_tok_gemm; i++) x[i] = kb_rand();

    double best = 1e30;
    int calls = 0;
    double t_start = sw_now_ms();
    /* each call reads another copy, so none is served from cache; the fastest call counts
     * (robust against other processes taking a core now and then) */
    do {
        for (int c = 0; c < copies; c++) {
            double t0 = sw_now_ms();
            kq_matmul(dtype, w + c * wbytes, n_out, n_in, x, 1, y, scratch);
            double ms = sw_now_ms() - t0;
            if (ms < best) best = ms;
        }
        calls += copies;
    } while (sw_now_ms() - t_start < min_ms || calls < 8);
    r->gemv_ms = best;
    r->gemv_gbs = (double)wbytes / (best * 1e6);

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
    free(x); free(y); free(scratch);
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
    if (only) {
        bool known = false;
        for (size_t d = 0; d < sizeof kb_dtypes / sizeof kb_dtypes[0]; d++) known |= !strcmp(only, kb_dtypes[d].name);
        if (!known) {
            fprintf(stderr, "kbench: unknown --dtype '%s'\n", only);
            usage();
            return 2;
        }
    }
    const double min_ms = quick ? 40 : 120;
    const int threads = sw_n_threads();
    printf("swiftlet kbench: isa %s, %d threads\n", kq_isa_name(), threads);
    double bw = kq_read_bandwidth(big_buffer_bytes());
    printf("read bandwidth: %.1f GB/s\n\n", bw);
    printf("%-5s %13s | %9s %8s %6s | %9s %8s\n", "dtype", "n_in x n_out", "gemv ms", "GB/s", "%bw", "gemm ms", "GOPS");
    kb_result res[32];
    int nres = 0;
    /* several copies of every shape, together far beyond the last-level cache; one buffer
     * refilled per dtype */
    const size_t wsize = big_buffer_bytes();
    uint8_t *w = malloc(wsize);
    if (!w) {
        fprintf(stderr, "kbench: out of memory\n");
        return 1;
    }
    for (size_t d = 0; d < sizeof kb_dtypes / sizeof kb_dtypes[0]; d++) {
        if (only && strcmp(only, kb_dtypes[d].name)) continue;
        if (fill_weights(kb_dtypes[d].dtype, w, wsize)) {
            fprintf(stderr, "kbench: out of memory\n");
            free(w);
            return 1;
        }
        for (size_t s = 0; s < sizeof kb_shapes / sizeof kb_shapes[0]; s++) {
            kb_result *r = &res[nres++];
            memset(r, 0, sizeof *r);
            r->dtype = kb_dtypes[d].name;
            r->n_in = kb_shapes[s][0];
            r->n_out = kb_shapes[s][1];
            char shape[32];
            snprintf(shape, sizeof shape, "%lldx%lld", (long long)r->n_in, (long long)r->n_out);
            int rc = bench_one(kb_dtypes[d].dtype, w, wsize, r->n_in, r->n_out, n_tok, min_ms, r);
            if (rc == SW_ERR_UNSUPPORTED) {
                printf("%-5s %13s | n/a (n_in not a multiple of the %s block)\n", r->dtype, shape, r->dtype);
                continue;
            }
            if (rc) {
                fprintf(stderr, "kbench: %s\n", sw_status_name(rc));
                free(w);
                return 1;
            }
            r->valid = true;
            printf("%-5s %13s | %9.3f %8.1f %5.0f%% | %9.2f %8.1f\n", r->dtype, shape, r->gemv_ms, r->gemv_gbs,
                   bw > 0 ? 100 * r->gemv_gbs / bw : 0, r->gemm_ms, r->gemm_gops);
            fflush(stdout);
        }
    }
    free(w);
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
