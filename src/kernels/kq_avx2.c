/* kq_avx2.c — AVX2 + FMA + F16C kernels (compiled with those flags; chosen at run time
 * only when cpuid reports them). Overrides entries of the scalar table.
 *
 * Matmul: activations in the standard formats (Q8_0 blocks for Q8_0/Q4_0/Q5_0/IQ4_NL
 * weights, Q8_1 for Q5_1, Q8_K for Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS, quantized bit-exactly
 * as the reference code does: SIMD for Q8_0 / Q8_K, kq_avx2_gemv.c), and a row kernel
 * that reads each weight block once for up to 4 tokens. Signed×signed byte products use
 * the usual sign transfer (|x| × sign(w, x) through vpmaddubsw), K-quant sub-block scales
 * are applied with vpmaddwd, IQ4 levels looked up with vpshufb. One token (decode) goes to
 * the 4-row GEMV kernels of kq_avx2_gemv.c, batches of Q8_0/Q4_0/Q4_K/Q6_K from
 * GEMM_MIN_TOK_* tokens on to the packed gemm path of kq_avx2_gemm.c. */
#include "kernels/kq_avx2.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define TOK 4

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* Σ over 32 bytes of w (s8) · x (s8) as 8 int32 lanes. */
static inline __m256i dot32_s8(__m256i w, __m256i x) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(w, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* ---- Q8_0 / Q4_0 ------------------------------------------------------------------ */

static inline __m256i wq_q8_0(const kq_block_q8_0 *b) { return _mm256_loadu_si256((const __m256i *)b->qs); }
static inline __m256i wq_q4_0(const kq_block_q4_0 *b) {
    const __m128i q = _mm_loadu_si128((const __m128i *)b->qs), m = _mm_set1_epi8(0x0F);
    const __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m)), _mm_and_si128(_mm_srli_epi16(q, 4), m), 1);
    return _mm256_sub_epi8(z, _mm256_set1_epi8(8));
}

/* 0xFF in byte i where bit i of x is set. */
static inline __m256i bits_to_bytes(uint32_t x) {
    const __m256i shuf = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    const __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    return _mm256_cmpeq_epi8(_mm256_and_si256(b, bit), bit);
}

/* The 32 unsigned 5-bit codes of a Q5_0 / Q5_1 block in element order. */
static inline __m256i codes_q5(const uint8_t *qs, const uint8_t *qh) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    const __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m)), _mm_and_si128(_mm_srli_epi16(q, 4), m), 1);
    uint32_t h;
    memcpy(&h, qh, 4);
    return _mm256_or_si256(z, _mm256_and_si256(bits_to_bytes(h), _mm256_set1_epi8(0x10)));
}
static inline __m256i wq_q5_0(const kq_block_q5_0 *b) { return _mm256_sub_epi8(codes_q5(b->qs, b->qh), _mm256_set1_epi8(16)); }

#define DEF_ROWS_Q80(NAME, BLK, WQ)                                                                   \
    static inline void NAME##_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {              \
        const int64_t nb = a->n_in / KQ_QK8_0;                                                        \
        const BLK *w = (const BLK *)(a->W + (size_t)o * a->w_row_bytes);                             \
        const kq_block_q8_0 *x[TOK];                                                                  \
        __m256 acc[TOK];                                                                              \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                        \
            x[t] = (const kq_block_q8_0 *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);               \
            acc[t] = _mm256_setzero_ps();                                                             \
        }                                                                                             \
        for (int64_t b = 0; b < nb; b++) {                                                            \
            const __m256i wv = WQ(w + b);                                                             \
            const float dw = _cvtsh_ss(w[b].d);                                                       \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                    \
                const __m256i s = dot32_s8(wv, _mm256_loadu_si256((const __m256i *)x[t][b].qs));      \
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * _cvtsh_ss(x[t][b].d)), acc[t]); \
            }                                                                                         \
        }                                                                                             \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]); \
    }
DEF_ROWS_Q80(rows_q8_0, kq_block_q8_0, wq_q8_0)
DEF_ROWS_Q80(rows_q4_0, kq_block_q4_0, wq_q4_0)
DEF_ROWS_Q80(rows_q5_0, kq_block_q5_0, wq_q5_0)

/* Q5_1 against Q8_1: codes are unsigned, so one vpmaddubsw; the min term m·s per block. */
static inline void rows_q5_1_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK4_0;
    const kq_block_q5_1 *w = (const kq_block_q5_1 *)(a->W + (size_t)o * a->w_row_bytes);
    const kq_block_q8_1 *x[TOK];
    __m256 acc[TOK];
    float accm[TOK];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        x[t] = (const kq_block_q8_1 *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm256_setzero_ps();
        accm[t] = 0;
    }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i wv = codes_q5(w[b].qs, w[b].qh);
        const float dw = _cvtsh_ss(w[b].d), mw = _cvtsh_ss(w[b].m);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const __m256i p = _mm256_maddubs_epi16(wv, _mm256_loadu_si256((const __m256i *)x[t][b].qs));
            const __m256i s = _mm256_madd_epi16(p, _mm256_set1_epi16(1));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set1_ps(dw * _cvtsh_ss(x[t][b].d)), acc[t]);
            accm[t] += mw * _cvtsh_ss(x[t][b].s);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]) + accm[t];
}

/* ---- Q4_K / Q6_K ------------------------------------------------------------------ */

/* Q4_K and Q5_K rows. */
#define DEF_ROWS_QK45(NAME, BLK, QH) \
static inline void NAME##_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) { \
    const int64_t nb = a->n_in / KQ_QK_K; \
    const BLK *w = (const BLK *)(a->W + (size_t)o * a->w_row_bytes); \
    const kq_block_q8_K *x[TOK]; \
    __m256 acc[TOK]; \
    float accm[TOK]; \
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) { \
        x[t] = (const kq_block_q8_K *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes); \
        acc[t] = _mm256_setzero_ps(); \
        accm[t] = 0; \
    } \
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1); \
    for (int64_t b = 0; b < nb; b++) { \
        uint8_t sm[16]; \
        kq_q4k_unpack(w[b].scales, sm); \
        __m256i lo[4], hi[4]; \
        const uint8_t *qh = QH(&w[b]); \
        for (int j = 0; j < 4; j++) { \
            const __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * j)); \
            lo[j] = _mm256_and_si256(q, m4); \
            hi[j] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4); \
            if (qh) { \
                const __m256i h = _mm256_loadu_si256((const __m256i *)qh); \
                lo[j] = _mm256_or_si256(lo[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * j), one), 4)); \
                hi[j] = _mm256_or_si256(hi[j], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * j + 1), one), 4)); \
            } \
        } \
        const float d = _cvtsh_ss(w[b].d), dmin = _cvtsh_ss(w[b].dmin); \
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) { \
            const int8_t *q8 = x[t][b].qs; \
            __m256i is = _mm256_setzero_si256(); \
            for (int j = 0; j < 4; j++) { \
                const __m256i p0 = _mm256_maddubs_epi16(lo[j], _mm256_loadu_si256((const __m256i *)(q8 + 64 * j))); \
                const __m256i p1 = _mm256_maddubs_epi16(hi[j], _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32))); \
                is = _mm256_add_epi32(is, _mm256_madd_epi16(p0, _mm256_set1_epi16(sm[2 * j]))); \
                is = _mm256_add_epi32(is, _mm256_madd_epi16(p1, _mm256_set1_epi16(sm[2 * j + 1]))); \
            } \
            int summ = 0; \
            for (int j = 0; j < 8; j++) summ += sm[8 + j] * (x[t][b].bsums[2 * j] + x[t][b].bsums[2 * j + 1]); \
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(d * x[t][b].d), acc[t]); \
            accm[t] += dmin * x[t][b].d * (float)summ; \
        } \
    } \
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]) - accm[t]; \
}
DEF_ROWS_QK45(rows_q4_K, kq_block_q4_K, qh_q4_K)
DEF_ROWS_QK45(rows_q5_K, kq_block_q5_K, qh_q5_K)

static inline void rows_q6_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q6_K *w = (const kq_block_q6_K *)(a->W + (size_t)o * a->w_row_bytes);
    const kq_block_q8_K *x[TOK];
    __m256 acc[TOK];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        x[t] = (const kq_block_q8_K *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    for (int64_t b = 0; b < nb; b++) {
        __m256i q[8], sc[8]; /* q[k]: elements 32k..32k+31; sc[k]: their two sub-block scales */
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(w[b].ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(w[b].qh + 32 * h));
            q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
            q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
            q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
            q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
        }
        for (int k = 0; k < 8; k++)
            sc[k] = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16(w[b].scales[2 * k])),
                                            _mm_set1_epi16(w[b].scales[2 * k + 1]), 1);
        const float d = _cvtsh_ss(w[b].d);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const int8_t *q8 = x[t][b].qs;
            __m256i is = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                const __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                is = _mm256_add_epi32(is, _mm256_madd_epi16(p, sc[k]));
            }
            int corr = 0;
            for (int j = 0; j < 16; j++) corr += w[b].scales[j] * x[t][b].bsums[j];
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(is, _mm256_setr_epi32(32 * corr, 0, 0, 0, 0, 0, 0, 0))),
                                     _mm256_set1_ps(d * x[t][b].d), acc[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]);
}

/* ---- Q2_K / Q3_K / IQ4_NL / IQ4_XS ---------------------------------------------------- */

/* The 2-bit fields of a Q2_K / Q3_K block as 8 vectors of 32 codes (c[k]: elements
 * 32k..32k+31, i.e. sub-blocks 2k and 2k+1), and per k its two sub-block scales as 16-bit
 * lanes (low 128 bits: sub-block 2k, high: 2k+1), for vpmaddwd. */
static inline void q2bits(const uint8_t *qs, __m256i c[8]) {
    const __m256i m3 = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; h++) {
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * h));
        c[4 * h + 0] = _mm256_and_si256(q, m3);
        c[4 * h + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 2), m3);
        c[4 * h + 2] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m3);
        c[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(q, 6), m3);
    }
}
static inline __m256i pair_scales(int s0, int s1) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)s0)), _mm_set1_epi16((short)s1), 1);
}

/* Q2_K: d·Σ scale·Σ code·q − dmin·Σ min·bsum16 per block. */
static inline void rows_q2_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q2_K *w = (const kq_block_q2_K *)(a->W + (size_t)o * a->w_row_bytes);
    const kq_block_q8_K *x[TOK];
    __m256 acc[TOK], accm[TOK];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        x[t] = (const kq_block_q8_K *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = accm[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        __m256i c[8], sc[8];
        q2bits(w[b].qs, c);
        for (int k = 0; k < 8; k++) sc[k] = pair_scales(w[b].scales[2 * k] & 0xF, w[b].scales[2 * k + 1] & 0xF);
        const __m128i s8 = _mm_loadu_si128((const __m128i *)w[b].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
        const float d = _cvtsh_ss(w[b].d), dmin = _cvtsh_ss(w[b].dmin);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const int8_t *q8 = x[t][b].qs;
            __m256i is = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                const __m256i p = _mm256_maddubs_epi16(c[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                is = _mm256_add_epi32(is, _mm256_madd_epi16(p, sc[k]));
            }
            const __m256i m = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)x[t][b].bsums));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(d * x[t][b].d), acc[t]);
            accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(dmin * x[t][b].d), accm[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]) - hsum8(accm[t]);
}

/* Q3_K: codes taken unsigned (2 low bits | hmask bit << 2, 0..7) and the -4 offset
 * removed as 4·Σ scale·bsum16. */
static inline void rows_q3_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q3_K *w = (const kq_block_q3_K *)(a->W + (size_t)o * a->w_row_bytes);
    const kq_block_q8_K *x[TOK] = {0}; /* (GCC cannot see that only [0, NT) is read) */
    __m256 acc[TOK];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        x[t] = (const kq_block_q8_K *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm256_setzero_ps();
    }
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        __m256i c[8], sc[8];
        q2bits(w[b].qs, c);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w[b].hmask);
        for (int k = 0; k < 8; k++) c[k] = _mm256_or_si256(c[k], _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, k), one), 2));
        int8_t s[16];
        kq_q3k_scales(w[b].scales, s);
        for (int k = 0; k < 8; k++) sc[k] = pair_scales(s[2 * k], s[2 * k + 1]);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)s));
        const float d = _cvtsh_ss(w[b].d);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const int8_t *q8 = x[t][b].qs;
            const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)x[t][b].bsums));
            __m256i is = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 2));
            for (int k = 0; k < 8; k++) {
                const __m256i p = _mm256_maddubs_epi16(c[k], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                is = _mm256_add_epi32(is, _mm256_madd_epi16(p, sc[k]));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(d * x[t][b].d), acc[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]);
}

/* The IQ4 levels of 16 bytes of nibbles (low nibbles = the first 16 elements) as 32 s8. */
static inline __m256i iq4_levels(const uint8_t *qs) {
    const __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0x0F);
    const __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m)), _mm_and_si128(_mm_srli_epi16(q, 4), m), 1);
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kq_iq4nl_values));
    return _mm256_shuffle_epi8(lut, z);
}
static inline __m256i wq_iq4_nl(const kq_block_iq4_nl *b) { return iq4_levels(b->qs); }
DEF_ROWS_Q80(rows_iq4_nl, kq_block_iq4_nl, wq_iq4_nl)

/* IQ4_XS: 8 sub-blocks of 32 levels (signed, so the sign transfer of dot32_s8 without its
 * final widening) with their 6-bit scales applied by vpmaddwd. */
static inline void rows_iq4_xs_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_iq4_xs *w = (const kq_block_iq4_xs *)(a->W + (size_t)o * a->w_row_bytes);
    const kq_block_q8_K *x[TOK];
    __m256 acc[TOK];
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
        x[t] = (const kq_block_q8_K *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        __m256i v[8], sc[8];
        for (int s = 0; s < 8; s++) {
            v[s] = iq4_levels(w[b].qs + 16 * s);
            sc[s] = _mm256_set1_epi16((short)kq_iq4xs_scale(&w[b], s));
        }
        const float d = _cvtsh_ss(w[b].d);
        _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {
            const int8_t *q8 = x[t][b].qs;
            __m256i is = _mm256_setzero_si256();
            for (int s = 0; s < 8; s++) {
                const __m256i xv = _mm256_loadu_si256((const __m256i *)(q8 + 32 * s));
                const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(xv, xv), _mm256_sign_epi8(v[s], xv));
                is = _mm256_add_epi32(is, _mm256_madd_epi16(p, sc[s]));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(d * x[t][b].d), acc[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = hsum8(acc[t]);
}

#define DEF_ROWS_LOOP(NAME) DEF_ROWS_LOOP_GEMV(NAME, NULL, 0)
/* GEMV: the single-token kernel (kq_avx2_gemv.c), or NULL; it takes n_tok == 1 when the
 * rows have at least MIN_ROW bytes. For Q8_0 / Q4_0 (bit-identical with the row tile) its
 * 4 interleaved row streams read short rows (~1 KiB) from memory more slowly than one
 * sequential stream (kbench, 2 threads: 896-column Q8_0 rows 0.05 ms vs 0.044 ms per
 * 896x896; 4864 columns 0.15-0.17 vs 0.24 ms per 4864x896). The K-quant GEMVs run on every
 * row length: their per-block subtraction of the mins / offset terms keeps single-token
 * logits within model_golden's 1e-4 of the batched (gemm) ones, which the row tile's one
 * subtraction of two large sums at the end does not (qwen3-kq.q4_k_m: 9.6e-4). */
#define DEF_ROWS_LOOP_GEMV(NAME, GEMV, MIN_ROW)                                         \
    static void NAME(const kq_mm_args *a, int64_t o0, int64_t o1) {                     \
        const kq_rows_fn gemv = GEMV;                                                   \
        if (gemv && a->n_tok == 1 && (int64_t)a->w_row_bytes >= (MIN_ROW)) {            \
            gemv(a, o0, o1);                                                            \
            return;                                                                     \
        }                                                                               \
        for (int64_t o = o0; o < o1; o++)                                               \
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += TOK) {                            \
                const int64_t nt = a->n_tok - t0 < TOK ? a->n_tok - t0 : TOK;           \
                switch (nt) {                                                           \
                case 1: NAME##_tile(a, o, t0, 1); break;                                \
                case 2: NAME##_tile(a, o, t0, 2); break;                                \
                case 3: NAME##_tile(a, o, t0, 3); break;                                \
                default: NAME##_tile(a, o, t0, 4); break;                               \
                }                                                                       \
            }                                                                           \
    }
DEF_ROWS_LOOP_GEMV(rows_q8_0, kq_avx2_gemv_q8_0, 4096)
DEF_ROWS_LOOP_GEMV(rows_q4_0, kq_avx2_gemv_q4_0, 4096)
DEF_ROWS_LOOP_GEMV(rows_q4_K, kq_avx2_gemv_q4_K, 0)
DEF_ROWS_LOOP(rows_q5_0)
DEF_ROWS_LOOP(rows_q5_1)
DEF_ROWS_LOOP(rows_q5_K)
DEF_ROWS_LOOP_GEMV(rows_q6_K, kq_avx2_gemv_q6_K, 0)
DEF_ROWS_LOOP(rows_q2_K)
DEF_ROWS_LOOP(rows_q3_K)
DEF_ROWS_LOOP(rows_iq4_nl)
DEF_ROWS_LOOP(rows_iq4_xs)

/* ---- F32 / F16 / BF16 ----------------------------------------------------------- */

static inline __m256 wl_f32(const uint8_t *w, int64_t i) { return _mm256_loadu_ps((const float *)w + i); }
static inline __m256 wl_f16(const uint8_t *w, int64_t i) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const kq_f16 *)w + i))); }
static inline __m256 wl_bf16(const uint8_t *w, int64_t i) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const kq_bf16 *)w + i))), 16));
}
static inline float ws_f32(const uint8_t *w, int64_t i) { return ((const float *)w)[i]; }
static inline float ws_f16(const uint8_t *w, int64_t i) { return kq_f16_to_f32(((const kq_f16 *)w)[i]); }
static inline float ws_bf16(const uint8_t *w, int64_t i) { return kq_bf16_to_f32(((const kq_bf16 *)w)[i]); }

/* 2 rows × up to 4 tokens per tile; columns past the last multiple of 8 scalar. */
#define DEF_ROWS_FLOAT(NAME, WL, WS)                                                                 \
    static inline void NAME##_tile(const kq_mm_args *a, int64_t o, int R, int64_t t0, int NT) {      \
        const int64_t n = a->n_in, n8 = n & ~(int64_t)7;                                             \
        const uint8_t *w[2] = {a->W + (size_t)o * a->w_row_bytes, a->W + (size_t)(o + R - 1) * a->w_row_bytes}; \
        const float *x[TOK];                                                                         \
        __m256 acc[2][TOK];                                                                          \
        _Pragma("GCC unroll 4") for (int t = 0; t < TOK; t++) {                                      \
            x[t] = (const float *)(a->xq + (size_t)(t0 + (t < NT ? t : 0)) * a->xq_row_bytes);       \
            acc[0][t] = acc[1][t] = _mm256_setzero_ps();                                             \
        }                                                                                            \
        for (int64_t i = 0; i < n8; i += 8) {                                                        \
            const __m256 w0 = WL(w[0], i), w1 = WL(w[1], i);                                         \
            _Pragma("GCC unroll 4") for (int t = 0; t < NT; t++) {                                   \
                const __m256 xv = _mm256_loadu_ps(x[t] + i);                                         \
                acc[0][t] = _mm256_fmadd_ps(w0, xv, acc[0][t]);                                      \
                acc[1][t] = _mm256_fmadd_ps(w1, xv, acc[1][t]);                                      \
            }                                                                                        \
        }                                                                                            \
        for (int r = 0; r < R; r++)                                                                  \
            for (int t = 0; t < NT; t++) {                                                           \
                float s = hsum8(acc[r][t]);                                                          \
                for (int64_t i = n8; i < n; i++) s += WS(w[r], i) * x[t][i];                         \
                a->Y[(t0 + t) * a->n_out + o + r] = s;                                               \
            }                                                                                        \
    }                                                                                                \
    static void NAME(const kq_mm_args *a, int64_t o0, int64_t o1) {                                  \
        for (int64_t o = o0; o < o1; o += 2) {                                                       \
            const int R = o1 - o >= 2 ? 2 : 1;                                                       \
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += TOK) {                                         \
                const int64_t nt = a->n_tok - t0 < TOK ? a->n_tok - t0 : TOK;                        \
                if (nt == TOK) NAME##_tile(a, o, R, t0, TOK);                                        \
                else if (nt == 1) NAME##_tile(a, o, R, t0, 1);                                       \
                else NAME##_tile(a, o, R, t0, (int)nt);                                              \
            }                                                                                        \
        }                                                                                            \
    }
DEF_ROWS_FLOAT(rows_f32, wl_f32, ws_f32)
DEF_ROWS_FLOAT(rows_f16, wl_f16, ws_f16)
DEF_ROWS_FLOAT(rows_bf16, wl_bf16, ws_bf16)

/* ---- vector ops ------------------------------------------------------------------ */

/* e^x as in kq_avx512.c (Cephes polynomial), 2^n built in the exponent bits. */
static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.3365478515625f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* n in [-126, 127]: 2^n fits a normal float; below the clamp e^x underflows to ~1e-38 */
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 res = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    /* exact zero for inputs far below the clamp (e.g. -inf from masking) */
    return _mm256_and_ps(res, _mm256_cmp_ps(x, _mm256_set1_ps(-87.3365478515625f), _CMP_GT_OQ));
}

static float v_dot_f32(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
static float v_dot_f16(const kq_f16 *k, const float *q, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i))), _mm256_loadu_ps(q + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(k + i + 8))), _mm256_loadu_ps(q + i + 8), s1);
    }
    float s = hsum8(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += kq_f16_to_f32(k[i]) * q[i];
    return s;
}
static void v_axpy_f32(float *y, float a, const float *v, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(v + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * v[i];
}
static void v_axpy_f16(float *y, float a, const kq_f16 *v, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + i))), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * kq_f16_to_f32(v[i]);
}
static void v_store_f16(kq_f16 *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = kq_f32_to_f16(src[i]);
}
/* 8 int8 at p as floats. */
static inline __m256 i8x8_ps(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
static float v_dot_q8_0(const kq_block_q8_0 *k, const float *q, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, q += KQ_QK8_0) {
        __m256 s0 = _mm256_mul_ps(i8x8_ps(k[b].qs), _mm256_loadu_ps(q));
        __m256 s1 = _mm256_mul_ps(i8x8_ps(k[b].qs + 8), _mm256_loadu_ps(q + 8));
        s0 = _mm256_fmadd_ps(i8x8_ps(k[b].qs + 16), _mm256_loadu_ps(q + 16), s0);
        s1 = _mm256_fmadd_ps(i8x8_ps(k[b].qs + 24), _mm256_loadu_ps(q + 24), s1);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(k[b].d)), _mm256_add_ps(s0, s1), acc);
    }
    return hsum8(acc);
}
static void v_axpy_q8_0(float *y, float a, const kq_block_q8_0 *v, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, y += KQ_QK8_0) {
        const __m256 ad = _mm256_set1_ps(a * _cvtsh_ss(v[b].d));
        _Pragma("GCC unroll 4") for (int i = 0; i < KQ_QK8_0; i += 8)
            _mm256_storeu_ps(y + i, _mm256_fmadd_ps(ad, i8x8_ps(v[b].qs + i), _mm256_loadu_ps(y + i)));
    }
}
static void v_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m256 s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        s = _mm256_fmadd_ps(v, v, s);
    }
    float ss = hsum8(s);
    for (; i < n; i++) ss += x[i] * x[i];
    const float scale = 1.0f / sqrtf(ss / (float)n + eps);
    const __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) out[i] = x[i] * scale * w[i];
}
static void v_softmax(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, x[i]);
    const __m256 vmax = _mm256_set1_ps(mx);
    __m256 s = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        s = _mm256_add_ps(s, e);
    }
    float sum = hsum8(s);
    for (; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.0f / sum;
}
static void v_silu_mul(float *out, const float *gate, const float *up, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_loadu_ps(gate + i);
        const __m256 sg = _mm256_div_ps(g, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(sg, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}
static void v_add(float *out, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) out[i] = a[i] + b[i];
}

/* From this many tokens on the batched (gemm) path beats 4-token row tiles (one 16-token
 * group padded with zeros costs what 16 tokens do). */
#define GEMM_MIN_TOK_Q8_0 10
#define GEMM_MIN_TOK_Q4_0 7
#define GEMM_MIN_TOK_Q4_K 6
#define GEMM_MIN_TOK_Q6_K 7

void kq_ops_avx2(kq_ops *ops) {
    ops->name = "avx2";
    ops->mm[GGUF_DTYPE_F32].rows = rows_f32;
    ops->mm[GGUF_DTYPE_F16].rows = rows_f16;
    ops->mm[GGUF_DTYPE_BF16].rows = rows_bf16;
    ops->mm[GGUF_DTYPE_Q8_0] = (kq_mm_impl){.prep = kq_avx2_prep_q8_0, .rows = rows_q8_0, .pack = kq_avx2_pack_q8_0,
                                      .gemm = kq_avx2_gemm_q8_0, .pack_bytes = kq_avx2_q80_pack_bytes,
                                      .pack_elems = KQ_QK8_0, .gemm_min_tok = GEMM_MIN_TOK_Q8_0};
    ops->mm[GGUF_DTYPE_Q4_0] = (kq_mm_impl){.prep = kq_avx2_prep_q8_0, .rows = rows_q4_0, .pack = kq_avx2_pack_q4_0,
                                      .gemm = kq_avx2_gemm_q4_0, .pack_bytes = kq_avx2_q80_pack_bytes,
                                      .pack_elems = KQ_QK8_0, .gemm_min_tok = GEMM_MIN_TOK_Q4_0};
    ops->mm[GGUF_DTYPE_Q4_K] = (kq_mm_impl){.prep = kq_avx2_prep_q8_K, .rows = rows_q4_K, .pack = kq_avx2_pack_qk,
                                      .gemm = kq_avx2_gemm_q4_K, .pack_bytes = kq_avx2_qk_pack_bytes,
                                      .pack_elems = KQ_QK_K, .gemm_min_tok = GEMM_MIN_TOK_Q4_K};
    ops->mm[GGUF_DTYPE_Q6_K] = (kq_mm_impl){.prep = kq_avx2_prep_q8_K, .rows = rows_q6_K, .pack = kq_avx2_pack_qk,
                                      .gemm = kq_avx2_gemm_q6_K, .pack_bytes = kq_avx2_qk_pack_bytes,
                                      .pack_elems = KQ_QK_K, .gemm_min_tok = GEMM_MIN_TOK_Q6_K};
    ops->mm[GGUF_DTYPE_Q5_0].rows = rows_q5_0;
    ops->mm[GGUF_DTYPE_Q5_1].rows = rows_q5_1;
    ops->mm[GGUF_DTYPE_Q5_K].rows = rows_q5_K;
    ops->mm[GGUF_DTYPE_Q2_K].rows = rows_q2_K;
    ops->mm[GGUF_DTYPE_Q3_K].rows = rows_q3_K;
    ops->mm[GGUF_DTYPE_IQ4_NL].rows = rows_iq4_nl;
    ops->mm[GGUF_DTYPE_IQ4_XS].rows = rows_iq4_xs;
    /* the other types' activation blocks, the reference's too, quantized with SIMD */
    const int q80[] = {GGUF_DTYPE_Q5_0, GGUF_DTYPE_IQ4_NL};
    const int q8k[] = {GGUF_DTYPE_Q5_K, GGUF_DTYPE_Q2_K, GGUF_DTYPE_Q3_K, GGUF_DTYPE_IQ4_XS};
    for (size_t i = 0; i < sizeof q80 / sizeof q80[0]; i++) ops->mm[q80[i]].prep = kq_avx2_prep_q8_0;
    for (size_t i = 0; i < sizeof q8k / sizeof q8k[0]; i++) ops->mm[q8k[i]].prep = kq_avx2_prep_q8_K;
    ops->dot_f32 = v_dot_f32;
    ops->dot_f16 = v_dot_f16;
    ops->axpy_f32 = v_axpy_f32;
    ops->axpy_f16 = v_axpy_f16;
    ops->store_f16 = v_store_f16;
    ops->dot_q8_0 = v_dot_q8_0;
    ops->axpy_q8_0 = v_axpy_q8_0;
    ops->rmsnorm = v_rmsnorm;
    ops->softmax = v_softmax;
    ops->silu_mul = v_silu_mul;
    ops->add = v_add;
}
#endif
