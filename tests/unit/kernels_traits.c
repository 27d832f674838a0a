/* kernels_traits.c — checks the kernels' per-dtype traits table (kq_traits_of) against the
 * GGUF module's own dtype table (names, block sizes and bytes as ggml defines them) and
 * against the formats' arithmetic: which dtypes are supported, that each dtype's
 * activation format matches its blocks, that the standard activation prep writes exactly
 * kq_act_row_bytes, that each scalar reference dot equals a double-precision dot of the
 * dequantized weights and activations, the K/V row sizes, and that every ISA table has a
 * matmul kernel for exactly the supported dtypes. */
#include "t.h"
#include "kernels/kq_internal.h"
#include <math.h>
#include <stdint.h>

static const uint32_t supported[] = {GGUF_DTYPE_F32,  GGUF_DTYPE_F16,  GGUF_DTYPE_BF16,   GGUF_DTYPE_Q8_0,  GGUF_DTYPE_Q4_0,
                                     GGUF_DTYPE_Q5_0, GGUF_DTYPE_Q5_1, GGUF_DTYPE_Q2_K,   GGUF_DTYPE_Q3_K,  GGUF_DTYPE_Q4_K,
                                     GGUF_DTYPE_Q5_K, GGUF_DTYPE_Q6_K, GGUF_DTYPE_IQ4_NL, GGUF_DTYPE_IQ4_XS};
#define N_SUPPORTED (int)(sizeof supported / sizeof supported[0])

static bool is_supported(uint32_t dt) {
    for (int i = 0; i < N_SUPPORTED; i++)
        if (supported[i] == dt) return true;
    return false;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static float rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* Activation row in the standard format of tr back to floats (what the dot sees). */
static void act_to_float(const kq_traits *tr, const void *xq, const float *x, float *out, int64_t n) {
    const char *f = tr->act->name;
    if (!strcmp(f, "F32") || !strcmp(f, "F16") || !strcmp(f, "BF16")) {
        memcpy(out, tr->act->prep ? xq : x, (size_t)n * sizeof *out);
    } else if (!strcmp(f, "Q8_0")) {
        const kq_block_q8_0 *b = xq;
        for (int64_t i = 0; i < n; i++) out[i] = kq_f16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
    } else if (!strcmp(f, "Q8_1")) {
        const kq_block_q8_1 *b = xq;
        for (int64_t i = 0; i < n; i++) out[i] = kq_f16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
    } else if (!strcmp(f, "Q8_K")) {
        const kq_block_q8_K *b = xq;
        for (int64_t i = 0; i < n; i++) out[i] = b[i / 256].d * b[i / 256].qs[i % 256];
    } else {
        memset(out, 0, (size_t)n * sizeof *out);
    }
}

int main(void) {
    /* the table agrees with the file format's table, for every dtype number */
    for (uint32_t dt = 0; dt < 64; dt++) {
        const kq_traits *tr = kq_traits_of(dt);
        T_CHECK((tr != NULL) == is_supported(dt), "dtype %u (%s): traits %s", dt, gguf_dtype_name(dt), tr ? "present" : "absent");
        T_CHECK(kq_dtype_supported(dt) == is_supported(dt), "dtype %u", dt);
        if (!tr) {
            T_EQ_INT(kq_block_elems(dt), 0);
            T_EQ_INT(kq_quantize_row(dt, NULL, NULL, 0), SW_ERR_UNSUPPORTED);
            continue;
        }
        T_EQ_INT(tr->dtype, dt);
        T_CHECK(!strcmp(tr->name, gguf_dtype_name(dt)), "%s vs %s", tr->name, gguf_dtype_name(dt));
        T_EQ_INT(tr->blck, gguf_dtype_block_elems(dt));
        T_EQ_INT(tr->bytes, gguf_dtype_block_bytes(dt));
        T_EQ_INT(kq_block_elems(dt), tr->blck);
        T_EQ_INT(kq_block_bytes(dt), tr->bytes);
        T_CHECK(tr->quantized == (tr->blck > 1), "%s: quantized %d", tr->name, tr->quantized);
        /* integer blocks meet activation blocks of their own size; float weights meet floats */
        T_CHECK(tr->act && tr->act->blck == tr->blck, "%s: activation %s blocks of %lld", tr->name, tr->act ? tr->act->name : "?",
                tr->act ? (long long)tr->act->blck : 0);
        T_CHECK(tr->from_float && tr->to_float && tr->vec_dot, "%s: scalar functions", tr->name);
        if (tr->blck > 1) T_EQ_INT(kq_quantize_row(dt, NULL, NULL, tr->blck + 1), SW_ERR_ARG);
    }
    T_OK(kq_traits_of(UINT32_MAX) == NULL);

    /* each dtype: prep writes exactly kq_act_row_bytes; the scalar dot equals the double dot
     * of what its operands dequantize to */
    for (int i = 0; i < N_SUPPORTED; i++) {
        const uint32_t dt = supported[i];
        const kq_traits *tr = kq_traits_of(dt);
        const int64_t n = 3 * 256;
        float *x = malloc((size_t)n * sizeof *x), *wf = malloc((size_t)n * sizeof *wf), *xf = malloc((size_t)n * sizeof *xf);
        for (int64_t j = 0; j < n; j++) x[j] = rnd() * 2.5f;
        uint8_t *w = malloc((size_t)(n / tr->blck) * tr->bytes);
        T_EQ_INT(kq_quantize_row(dt, x, w, n), SW_OK);
        kq_dequantize_row(dt, w, wf, n);
        for (int64_t j = 0; j < n; j++) x[j] = rnd();
        const size_t rb = kq_act_row_bytes(dt, n), canary = 64;
        uint8_t *xq = malloc(rb + canary);
        memset(xq, 0xA5, rb + canary);
        if (tr->act->prep) tr->act->prep(x, xq, n);
        bool intact = true;
        for (size_t j = rb; j < rb + canary; j++) intact &= xq[j] == 0xA5;
        T_CHECK(intact, "%s: prep wrote past kq_act_row_bytes = %zu", tr->name, rb);
        T_CHECK((rb == 0) == (tr->act->prep == NULL), "%s: %zu activation bytes, prep %p", tr->name, rb, (void *)tr->act->prep);
        act_to_float(tr, xq, x, xf, n);
        double ref = 0, mag = 0;
        for (int64_t j = 0; j < n; j++) {
            ref += (double)wf[j] * xf[j];
            mag += fabs((double)wf[j] * xf[j]);
        }
        const float got = tr->vec_dot(w, tr->act->prep ? (const void *)xq : (const void *)x, n / tr->blck);
        /* Q8_1 carries its Σ as an fp16 of the unrounded scale (ggml's), which the
         * dequantized dot cannot see: its min term may differ by an fp16 rounding */
        const double tol = !strcmp(tr->act->name, "Q8_1") ? 1e-3 : 1e-5;
        T_CHECK(fabs(got - ref) <= tol * mag + 1e-6, "%s: vec_dot %.7g, dequantized dot %.7g (Σ|.| %.4g)", tr->name, got, ref, mag);
        free(x);
        free(wf);
        free(xf);
        free(w);
        free(xq);
    }

    /* K/V rows: F32, F16 and Q8_0 only, whole blocks */
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_F32, 40), 160);
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_F16, 40), 80);
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_Q8_0, 64), 68);
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_Q8_0, 40), 0);
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_BF16, 64), 0);
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_Q4_0, 64), 0);
    T_EQ_INT(kq_kv_row_bytes(GGUF_DTYPE_F16, -1), 0);

    /* every ISA of this CPU has a matmul kernel for exactly the supported dtypes */
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    for (int k = 0; k < 4; k++) {
        kq_ops ops;
        if (kq_ops_for_isa(isas[k], &ops) != SW_OK) continue;
        for (uint32_t dt = 0; dt < KQ_DTYPE_COUNT; dt++)
            T_CHECK((ops.mm[dt].rows != NULL) == is_supported(dt), "%s: dtype %u (%s)", isas[k], dt, gguf_dtype_name(dt));
    }
    return t_done();
}
