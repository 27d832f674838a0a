/* kq_neon.c — ARM NEON (AArch64 baseline) kernels; the whole file is empty elsewhere.
 * Overrides entries of the scalar table: Q8_0 / Q4_0 row kernels (int8 products widened
 * with vmull_s8 and pairwise-accumulated; the sdot instruction is used when the compiler
 * targets it, __ARM_FEATURE_DOTPROD), F32 / F16 weight rows, and the F32/F16 K/V dot and
 * axpy helpers. K-quants and the remaining vector ops use the scalar reference. Only
 * compile-checked (aarch64-linux-gnu-gcc); no ARM machine ran these paths yet. */
#include "kernels/kq_internal.h"
#if defined(__ARM_NEON) && defined(__aarch64__)
#include <arm_neon.h>

#define TOK 4

/* Σ w[i]·x[i] over 16 signed bytes as 4 int32 lanes added to acc. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t w, int8x16_t x) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, w, x);
#else
    const int16x8_t lo = vmull_s8(vget_low_s8(w), vget_low_s8(x));
    const int16x8_t hi = vmull_high_s8(w, x);
    return vpadalq_s16(vpadalq_s16(acc, lo), hi);
#endif
}

static inline void wq_q8_0(const kq_block_q8_0 *b, int8x16_t *w0, int8x16_t *w1) {
    *w0 = vld1q_s8(b->qs);
    *w1 = vld1q_s8(b->qs + 16);
}
static inline void wq_q4_0(const kq_block_q4_0 *b, int8x16_t *w0, int8x16_t *w1) {
    const uint8x16_t q = vld1q_u8(b->qs);
    *w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
    *w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
}

#define DEF_ROWS_Q80(NAME, BLK, WQ)                                                                   \
    static inline void NAME##_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {              \
        const int64_t nb = a->n_in / KQ_QK8_0;                                                        \
        const BLK *w = (const BLK *)(a->W + (size_t)o * a->w_row_bytes);                             \
        const kq_block_q8_0 *x[TOK];                                                                  \
        float32x4_t acc[TOK];                                                                         \
        for (int t = 0; t < NT; t++) {                                                                \
            x[t] = (const kq_block_q8_0 *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);               \
            acc[t] = vdupq_n_f32(0);                                                                  \
        }                                                                                             \
        for (int64_t b = 0; b < nb; b++) {                                                            \
            int8x16_t w0, w1;                                                                         \
            WQ(w + b, &w0, &w1);                                                                      \
            const float dw = kq_f16_to_f32(w[b].d);                                                   \
            for (int t = 0; t < NT; t++) {                                                            \
                int32x4_t s = dot16(vdupq_n_s32(0), w0, vld1q_s8(x[t][b].qs));                        \
                s = dot16(s, w1, vld1q_s8(x[t][b].qs + 16));                                          \
                acc[t] = vmlaq_n_f32(acc[t], vcvtq_f32_s32(s), dw * kq_f16_to_f32(x[t][b].d));        \
            }                                                                                         \
        }                                                                                             \
        for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = vaddvq_f32(acc[t]);              \
    }                                                                                                 \
    static void NAME(const kq_mm_args *a, int64_t o0, int64_t o1) {                                   \
        for (int64_t o = o0; o < o1; o++)                                                             \
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += TOK) {                                          \
                const int64_t nt = a->n_tok - t0 < TOK ? a->n_tok - t0 : TOK;                         \
                if (nt == TOK) NAME##_tile(a, o, t0, TOK);                                            \
                else NAME##_tile(a, o, t0, (int)nt);                                                  \
            }                                                                                         \
    }
DEF_ROWS_Q80(rows_q8_0, kq_block_q8_0, wq_q8_0)
DEF_ROWS_Q80(rows_q4_0, kq_block_q4_0, wq_q4_0)

static inline float32x4_t wl_f32(const uint8_t *w, int64_t i) { return vld1q_f32((const float *)w + i); }
static inline float32x4_t wl_f16(const uint8_t *w, int64_t i) {
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const kq_f16 *)w + i)));
}
static inline float ws_f32(const uint8_t *w, int64_t i) { return ((const float *)w)[i]; }
static inline float ws_f16(const uint8_t *w, int64_t i) { return kq_f16_to_f32(((const kq_f16 *)w)[i]); }

#define DEF_ROWS_FLOAT(NAME, WL, WS)                                                                  \
    static void NAME(const kq_mm_args *a, int64_t o0, int64_t o1) {                                   \
        const int64_t n = a->n_in, n4 = n & ~(int64_t)3;                                              \
        for (int64_t o = o0; o < o1; o++) {                                                           \
            const uint8_t *w = a->W + (size_t)o * a->w_row_bytes;                                     \
            for (int64_t t = 0; t < a->n_tok; t++) {                                                  \
                const float *x = (const float *)(a->xq + (size_t)t * a->xq_row_bytes);                \
                float32x4_t acc = vdupq_n_f32(0);                                                     \
                for (int64_t i = 0; i < n4; i += 4) acc = vfmaq_f32(acc, WL(w, i), vld1q_f32(x + i)); \
                float s = vaddvq_f32(acc);                                                            \
                for (int64_t i = n4; i < n; i++) s += WS(w, i) * x[i];                                \
                a->Y[t * a->n_out + o] = s;                                                           \
            }                                                                                         \
        }                                                                                             \
    }
DEF_ROWS_FLOAT(rows_f32, wl_f32, ws_f32)
DEF_ROWS_FLOAT(rows_f16, wl_f16, ws_f16)

static float v_dot_f32(const float *a, const float *b, int64_t n) {
    float32x4_t s = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) s = vfmaq_f32(s, vld1q_f32(a + i), vld1q_f32(b + i));
    float r = vaddvq_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}
static float v_dot_f16(const kq_f16 *k, const float *q, int64_t n) {
    float32x4_t s = vdupq_n_f32(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) s = vfmaq_f32(s, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(k + i))), vld1q_f32(q + i));
    float r = vaddvq_f32(s);
    for (; i < n; i++) r += kq_f16_to_f32(k[i]) * q[i];
    return r;
}
static void v_axpy_f32(float *y, float a, const float *v, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(v + i), a));
    for (; i < n; i++) y[i] += a * v[i];
}
static void v_axpy_f16(float *y, float a, const kq_f16 *v, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(v + i))), a));
    for (; i < n; i++) y[i] += a * kq_f16_to_f32(v[i]);
}

void kq_ops_neon(kq_ops *ops) {
    ops->name = "neon";
    ops->mm[GGUF_DTYPE_F32].rows = rows_f32;
    ops->mm[GGUF_DTYPE_F16].rows = rows_f16;
    ops->mm[GGUF_DTYPE_Q8_0].rows = rows_q8_0;
    ops->mm[GGUF_DTYPE_Q4_0].rows = rows_q4_0;
    ops->dot_f32 = v_dot_f32;
    ops->dot_f16 = v_dot_f16;
    ops->axpy_f32 = v_axpy_f32;
    ops->axpy_f16 = v_axpy_f16;
}
#endif
