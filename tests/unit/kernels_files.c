/* kernels_files.c — the Q2_K / Q3_K / IQ4_NL / IQ4_XS block decoders on files the reference
 * wrote (../shared/models2/llama3-rope-kq.{q2_k,q3_k_m,iq4_nl,iq4_xs}.gguf), checked two
 * independent ways:
 *   1. every weight tensor is dequantized by kq_dequantize_row and by a second decoder
 *      written here in ggml's loop order (ggml-quants.c's dequantize_row_*): bit-exact;
 *   2. the files hold the same random weights quantized to different types, so each
 *      tensor is compared with the same tensor of the Q4_K_M file (Q4_K / Q5_K / Q6_K,
 *      whose decoding the golden tests already pin): a layout error (wrong bit, nibble or
 *      scale order) decorrelates them, while a right decoding differs from it only by the
 *      two quantization errors (bounds below, measured relative RMS in the comments).
 * Then every ISA's matmul on each real weight matrix is compared with the scalar
 * reference. Skips when ../shared is absent. */
#include "t.h"
#include "gguf/gguf.h"
#include "kernels/kq_internal.h"
#include <math.h>

static const int8_t iq4_levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ggml's half -> float, written out (not kq_f16_to_f32) */
static float half(const uint8_t *p) {
    const unsigned h = p[0] | p[1] << 8, e = (h >> 10) & 31, m = h & 1023;
    const float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(1024 + m), (int)e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Second decoders: byte offsets from ggml-common.h, loops as ggml-quants.c's. */
static void dec_q2_K(const uint8_t *blk, float *y) {
    const uint8_t *scales = blk, *q = blk + 16;
    const float d = half(blk + 80), min = half(blk + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half16 = 0; half16 < 2; half16++) {
                const uint8_t sc = scales[is++];
                for (int l = 0; l < 16; l++) *y++ = d * (sc & 0xF) * ((q[l + 16 * half16] >> shift) & 3) - min * (sc >> 4);
            }
}

static void dec_q3_K(const uint8_t *blk, float *y) {
    const uint8_t *hm = blk, *q = blk + 32, *s = blk + 96;
    const float d = half(blk + 108);
    uint32_t aux[4];
    memcpy(aux, s, 12);
    const uint32_t tmp = aux[2], k1 = 0x03030303, k2 = 0x0f0f0f0f;
    aux[2] = ((aux[0] >> 4) & k2) | (((tmp >> 4) & k1) << 4);
    aux[3] = ((aux[1] >> 4) & k2) | (((tmp >> 6) & k1) << 4);
    aux[0] = (aux[0] & k2) | (((tmp >> 0) & k1) << 4);
    aux[1] = (aux[1] & k2) | (((tmp >> 2) & k1) << 4);
    int8_t scales[16];
    memcpy(scales, aux, 16);
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int half16 = 0; half16 < 2; half16++) {
                const float dl = d * (scales[is++] - 32);
                for (int l = 16 * half16; l < 16 * half16 + 16; l++)
                    *y++ = dl * ((int8_t)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
            }
}

static void dec_iq4_nl(const uint8_t *blk, float *y) {
    const float d = half(blk);
    for (int j = 0; j < 16; j++) {
        y[j] = d * iq4_levels[blk[2 + j] & 0xF];
        y[j + 16] = d * iq4_levels[blk[2 + j] >> 4];
    }
}

static void dec_iq4_xs(const uint8_t *blk, float *y) {
    const float d = half(blk);
    const unsigned scales_h = blk[2] | blk[3] << 8;
    const uint8_t *scales_l = blk + 4, *qs = blk + 8;
    for (int ib = 0; ib < 8; ib++, y += 32, qs += 16) {
        const int ls = ((scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((scales_h >> 2 * ib) & 3) << 4);
        const float dl = d * (ls - 32);
        for (int j = 0; j < 16; j++) {
            y[j] = dl * iq4_levels[qs[j] & 0xF];
            y[j + 16] = dl * iq4_levels[qs[j] >> 4];
        }
    }
}

typedef struct file_case {
    const char *file;
    uint32_t dtype;           /* the type under test; tensors of other types are skipped */
    void (*dec)(const uint8_t *, float *);
    int64_t elems, bytes;     /* of one block */
    double max_rel;           /* bound of rel. RMS difference to the Q4_K_M file's tensor */
} file_case;

static float *dequant_tensor(const gguf_tensor *t) {
    const int64_t n = t->ne[0] * t->ne[1];
    float *y = malloc((size_t)n * sizeof *y);
    const uint64_t rb = gguf_row_bytes(t->dtype, t->ne[0]);
    for (int64_t r = 0; r < t->ne[1]; r++) kq_dequantize_row(t->dtype, (const uint8_t *)t->data + r * rb, y + r * t->ne[0], t->ne[0]);
    return y;
}

/* Every ISA's matmul of W (first min(rows, 96) rows) with random activations vs scalar. */
static void check_isas(const gguf_tensor *t, const char *tname) {
    const int64_t n_in = t->ne[0], n_out = t->ne[1] < 96 ? t->ne[1] : 96, n_tok = 5;
    float *x = malloc((size_t)(n_in * n_tok) * sizeof *x), *y = malloc((size_t)(n_out * n_tok) * sizeof *y);
    float *yr = malloc((size_t)(n_out * n_tok) * sizeof *yr);
    void *scratch = malloc(kq_matmul_scratch_bytes(t->dtype, n_in, n_tok));
    uint64_t s = 12345;
    for (int64_t i = 0; i < n_in * n_tok; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xffff) / 32768.0f - 1.0f;
    }
    kq_matmul_ref(t->dtype, t->data, n_out, n_in, x, n_tok, yr, scratch);
    const char *isas[] = {"avx2", "avx512", "neon"};
    for (int k = 0; k < 3; k++) {
        kq_ops ops;
        if (kq_ops_for_isa(isas[k], &ops) != SW_OK) continue;
        kq_matmul_ops(&ops, t->dtype, t->data, n_out, n_in, x, n_tok, y, scratch);
        float m = 0, worst = 0;
        for (int64_t i = 0; i < n_out * n_tok; i++) {
            m = fmaxf(m, fabsf(yr[i]));
            const float e = fabsf(y[i] - yr[i]);
            worst = isnan(e) ? INFINITY : fmaxf(worst, e);
        }
        T_CHECK(worst <= 2e-5f * m, "%s %s: %s matmul vs reference: max err %g (max |y| %g)", tname, gguf_dtype_name(t->dtype),
                isas[k], worst, m);
    }
    free(x); free(y); free(yr); free(scratch);
}

static void check_file(const file_case *fc, gguf_ctx *ref) {
    char path[256];
    snprintf(path, sizeof path, SHARED "/models2/%s", fc->file);
    gguf_ctx *g;
    sw_err err;
    if (gguf_open(path, &g, &err)) {
        T_CHECK(0, "%s: %s", fc->file, err.msg);
        return;
    }
    int n_checked = 0;
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        if (t->dtype != fc->dtype || t->n_dims != 2) continue;
        const int64_t n = t->ne[0] * t->ne[1], nb = n / fc->elems;
        float *y = dequant_tensor(t), *y2 = malloc((size_t)n * sizeof *y2);
        for (int64_t b = 0; b < nb; b++) fc->dec((const uint8_t *)t->data + b * fc->bytes, y2 + b * fc->elems);
        int64_t bad = 0;
        for (int64_t k = 0; k < n; k++) bad += y[k] != y2[k];
        T_CHECK(bad == 0, "%s %s: %lld values differ from the second decoder", fc->file, t->name, (long long)bad);
        const int64_t ri = gguf_find_tensor(ref, t->name);
        const gguf_tensor *rt = ri >= 0 ? gguf_tensor_at(ref, ri) : NULL;
        T_CHECK(rt && rt->ne[0] == t->ne[0] && rt->ne[1] == t->ne[1], "%s: %s not in the Q4_K_M file", fc->file, t->name);
        if (rt) {
            float *yr = dequant_tensor(rt);
            double se = 0, sr = 0;
            for (int64_t k = 0; k < n; k++) {
                se += ((double)y[k] - yr[k]) * ((double)y[k] - yr[k]);
                sr += (double)yr[k] * yr[k];
            }
            const double rel = sqrt(se / sr);
            if (n_checked == 0 || strstr(t->name, "token_embd"))
                fprintf(stderr, "%s %s vs %s: relative RMS difference %.4f\n", fc->file, t->name, gguf_dtype_name(rt->dtype), rel);
            T_CHECK(rel < fc->max_rel, "%s %s: relative RMS difference to the Q4_K_M file %g >= %g", fc->file, t->name, rel, fc->max_rel);
            free(yr);
        }
        check_isas(t, t->name);
        free(y);
        free(y2);
        n_checked++;
    }
    T_CHECK(n_checked >= 5, "%s: only %d tensors of the type", fc->file, n_checked);
    gguf_close(g);
}

int main(void) {
    if (t_shared_missing()) {
        T_SKIP("../shared not found: the reference's files are needed");
        return t_done();
    }
    gguf_ctx *ref;
    sw_err err;
    if (gguf_open(SHARED "/models2/llama3-rope-kq.q4_k_m.gguf", &ref, &err)) {
        T_SKIP("%s", err.msg);
        return t_done();
    }
    /* bounds: the quantization errors of both files added in quadrature, with margin
     * (random data: Q2_K ~0.28, Q3_K ~0.14, IQ4 ~0.075, Q4_K ~0.07 relative RMS; measured
     * here: Q2_K vs Q6_K 0.30, Q3_K vs Q4_K 0.17, IQ4 vs Q4_K 0.104); a wrong layout gives ~1.4 */
    const file_case cases[] = {
        {"llama3-rope-kq.q2_k.gguf", GGUF_DTYPE_Q2_K, dec_q2_K, 256, 84, 0.35},
        {"llama3-rope-kq.q3_k_m.gguf", GGUF_DTYPE_Q3_K, dec_q3_K, 256, 110, 0.20},
        {"llama3-rope-kq.iq4_nl.gguf", GGUF_DTYPE_IQ4_NL, dec_iq4_nl, 32, 18, 0.13},
        {"llama3-rope-kq.iq4_xs.gguf", GGUF_DTYPE_IQ4_XS, dec_iq4_xs, 256, 136, 0.13},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_file(&cases[i], ref);
    gguf_close(ref);
    return t_done();
}
