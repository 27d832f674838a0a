/* kq_avx512.c — AVX-512 (F/BW/VL/DQ + VNNI + BF16) kernels (compiled with those flags;
 * chosen at run time only when cpuid reports them). Overrides entries of the avx2 table.
 *
 * Integer dot products use vpdpbusd (u8 × s8 -> s32). Activations keep their sign (s8)
 * and the weights are made unsigned: Q8_0 weights by w ^ 0x80 (= w + 128), Q4_0/Q4_K/Q6_K
 * nibbles/6-bit codes already are. The offset this adds, off × Σx per block, is removed
 * by starting the accumulator at -off × Σx, which the activation prep precomputes.
 *
 * Two layouts of the activations:
 *  - GEMV (few tokens, decode): one row per token: int8 values, then per block pair a
 *    16-lane int32 start vector and a 16-lane float scale vector (lanes 0-7 block 2p,
 *    8-15 block 2p+1), so a zmm of 64 weight bytes (two blocks) is one vpdpbusd.
 *  - GEMM (>= 16 tokens): groups of 16 tokens interleaved so that one zmm holds 4
 *    consecutive values of each of the 16 tokens; a weight dword is broadcast and every
 *    lane accumulates a whole block for one token. The float scaling then costs one
 *    convert + mul + fma per (row, block, 16 tokens) instead of per (row, token, 2 blocks).
 */
#include "kernels/kq_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ---- activation quantization (bit-exact with kq_quantize_q8_0_act) --------------- */

/* One block of 32: int8 values to q, fp16-rounded scale to *d, Σq to *sum. */
static inline void quant_block32(const float *x, int8_t *q, float *d, int *sum) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    *d = _cvtsh_ss(_cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m512 id = _mm512_set1_ps(amax != 0.f ? 127.f / amax : 0.f);
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128((__m128i *)q, _mm512_cvtepi32_epi8(i0));
    _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtepi32_epi8(i1));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
}

/* GEMV row layout for Q8_0/Q4_0 weights (nbp = block pairs, rounded up):
 * qs int8 [nbp*64] | start int32 [nbp][16] | scale float [nbp][16]. */
static size_t q80_gemv_bytes(int64_t n) {
    int64_t nbp = (n / KQ_QK8_0 + 1) / 2;
    return (size_t)nbp * 64 * 3;
}

static inline void q80_gemv_prep(const float *x, void *dst, int64_t n, int off) {
    const int64_t nb = n / KQ_QK8_0, nbp = (nb + 1) / 2;
    int8_t *qs = dst;
    int32_t *start = (int32_t *)(qs + nbp * 64);
    float *dx = (float *)(start + nbp * 16);
    memset(start, 0, (size_t)nbp * 64);
    for (int64_t b = 0; b < nbp * 2; b++) {
        float *dl = dx + (b / 2) * 16 + (b % 2) * 8;
        if (b < nb) {
            float d;
            int s;
            quant_block32(x + b * KQ_QK8_0, qs + b * 32, &d, &s);
            _mm256_storeu_ps(dl, _mm256_set1_ps(d));
            start[(b / 2) * 16 + (b % 2) * 8] = -off * s;
        } else {
            memset(qs + b * 32, 0, 32);
            _mm256_storeu_ps(dl, _mm256_setzero_ps());
        }
    }
}
static void prep_q8_0(const float *x, void *dst, int64_t n) { q80_gemv_prep(x, dst, n, 128); }
static void prep_q4_0(const float *x, void *dst, int64_t n) { q80_gemv_prep(x, dst, n, 8); }

/* GEMM group layout for Q8_0/Q4_0: per block 640 bytes:
 * vals int8 [8][16 tokens][4] | start int32 [16] | scale float [16]. */
#define Q80_GBLK 640
static size_t q80_pack_bytes(int64_t n) { return (size_t)(n / KQ_QK8_0) * Q80_GBLK; }

static inline void q80_pack(const float *X, int64_t ldx, int64_t ntok, int64_t n, void *dst, int off) {
    const int64_t nb = n / KQ_QK8_0;
    uint8_t *g = dst;
    memset(g, 0, q80_pack_bytes(n));
    for (int64_t t = 0; t < ntok; t++) {
        for (int64_t b = 0; b < nb; b++) {
            int8_t q[32];
            float d;
            int s;
            quant_block32(X + t * ldx + b * KQ_QK8_0, q, &d, &s);
            uint8_t *blk = g + b * Q80_GBLK;
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) memcpy(blk + k * 64 + t * 4, q + 4 * k, 4);
            ((int32_t *)(blk + 512))[t] = -off * s;
            ((float *)(blk + 576))[t] = d;
        }
    }
}
static void pack_q8_0(const float *X, int64_t ldx, int64_t ntok, int64_t n, void *dst) { q80_pack(X, ldx, ntok, n, dst, 128); }
static void pack_q4_0(const float *X, int64_t ldx, int64_t ntok, int64_t n, void *dst) { q80_pack(X, ldx, ntok, n, dst, 8); }

/* ---- weight unpacking ----------------------------------------------------------- */

/* Two consecutive blocks as 64 unsigned bytes in activation order. */
static inline __m512i w2_q8_0(const kq_block_q8_0 *w) {
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)w[0].qs)),
                                         _mm256_loadu_si256((const __m256i *)w[1].qs), 1);
    return _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
}
static inline __m512i w1_q8_0(const kq_block_q8_0 *w) {
    return _mm512_zextsi256_si512(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w[0].qs), _mm256_set1_epi8((char)0x80)));
}
static inline __m512i w2_q4_0(const kq_block_q4_0 *w) {
    const __m128i q0 = _mm_loadu_si128((const __m128i *)w[0].qs), q1 = _mm_loadu_si128((const __m128i *)w[1].qs);
    __m512i z = _mm512_inserti32x4(_mm512_castsi128_si512(q0), q0, 1);
    z = _mm512_inserti32x4(z, q1, 2);
    z = _mm512_inserti32x4(z, q1, 3);
    const __m512i sh = _mm512_set_epi64(4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll, 0, 0,
                                        4 * 0x0001000100010001ll, 4 * 0x0001000100010001ll, 0, 0);
    return _mm512_and_si512(_mm512_srlv_epi16(z, sh), _mm512_set1_epi8(0x0F));
}
static inline __m512i w1_q4_0(const kq_block_q4_0 *w) {
    const __m128i q0 = _mm_loadu_si128((const __m128i *)w[0].qs);
    const __m256i lo = _mm256_castsi128_si256(_mm_and_si128(q0, _mm_set1_epi8(0x0F)));
    const __m256i z = _mm256_inserti128_si256(lo, _mm_and_si128(_mm_srli_epi16(q0, 4), _mm_set1_epi8(0x0F)), 1);
    return _mm512_zextsi256_si512(z);
}
static inline __m512 d2(kq_f16 a, kq_f16 b) {
    return _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(a)), _mm256_set1_ps(_cvtsh_ss(b)), 1);
}

/* ---- Q8_0 / Q4_0 GEMV ----------------------------------------------------------- */

#define GEMV_TOK 4

/* Y[t][o] for outputs [o0, o1) and tokens [t0, t0+NT). */
#define DEF_GEMV_Q80(NAME, BLK, W2, W1)                                                                       \
    static inline void NAME##_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {                      \
        const int64_t nb = a->n_in / KQ_QK8_0, nbp = (nb + 1) / 2;                                            \
        const BLK *w = (const BLK *)(a->W + (size_t)o * a->w_row_bytes);                                     \
        const int8_t *qs[GEMV_TOK];                                                                           \
        const int32_t *st[GEMV_TOK];                                                                          \
        const float *dx[GEMV_TOK];                                                                            \
        __m512 acc[GEMV_TOK];                                                                                 \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                                                        \
            qs[t] = (const int8_t *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);                             \
            st[t] = (const int32_t *)(qs[t] + nbp * 64);                                                      \
            dx[t] = (const float *)(st[t] + nbp * 16);                                                        \
            acc[t] = _mm512_setzero_ps();                                                                     \
        }                                                                                                     \
        for (int64_t p = 0; p < nbp; p++) {                                                                   \
            const bool full = 2 * p + 1 < nb;                                                                 \
            const __m512i wz = full ? W2(w + 2 * p) : W1(w + 2 * p);                                          \
            const __m512 dw = d2(w[2 * p].d, full ? w[2 * p + 1].d : 0);                                      \
            _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {                                                                    \
                __m512i s = _mm512_loadu_si512(st[t] + p * 16);                                               \
                s = _mm512_dpbusd_epi32(s, wz, _mm512_loadu_si512(qs[t] + p * 64));                           \
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(dx[t] + p * 16)), \
                                         acc[t]);                                                             \
            }                                                                                                 \
        }                                                                                                     \
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);            \
    }                                                                                                         \
    static void NAME(const kq_mm_args *a, int64_t o0, int64_t o1) {                                           \
        for (int64_t o = o0; o < o1; o++)                                                                     \
            for (int64_t t0 = 0; t0 < a->n_tok; t0 += GEMV_TOK) {                                             \
                const int64_t nt = a->n_tok - t0 < GEMV_TOK ? a->n_tok - t0 : GEMV_TOK;                       \
                switch (nt) {                                                                                 \
                case 1: NAME##_tile(a, o, t0, 1); break;                                                      \
                case 2: NAME##_tile(a, o, t0, 2); break;                                                      \
                case 3: NAME##_tile(a, o, t0, 3); break;                                                      \
                default: NAME##_tile(a, o, t0, 4); break;                                                     \
                }                                                                                             \
            }                                                                                                 \
    }
DEF_GEMV_Q80(rows_q8_0, kq_block_q8_0, w2_q8_0, w1_q8_0)
DEF_GEMV_Q80(rows_q4_0, kq_block_q4_0, w2_q4_0, w1_q4_0)

/* ---- Q8_0 / Q4_0 GEMM ----------------------------------------------------------- */

static inline void wbuf_q8_0(const kq_block_q8_0 *w, uint8_t *buf) {
    _mm256_storeu_si256((__m256i *)buf, _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w->qs), _mm256_set1_epi8((char)0x80)));
}
static inline void wbuf_q4_0(const kq_block_q4_0 *w, uint8_t *buf) {
    const __m128i q = _mm_loadu_si128((const __m128i *)w->qs);
    _mm_storeu_si128((__m128i *)buf, _mm_and_si128(q, _mm_set1_epi8(0x0F)));
    _mm_storeu_si128((__m128i *)(buf + 16), _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F)));
}

static inline void store_group(const kq_mm_args *a, int64_t g, int64_t o, __m512 acc) {
    float tmp[16];
    _mm512_storeu_ps(tmp, acc);
    const int64_t t0 = g * KQ_GEMM_TOK, nt = a->n_tok - t0 < KQ_GEMM_TOK ? a->n_tok - t0 : KQ_GEMM_TOK;
    for (int64_t t = 0; t < nt; t++) a->Y[(t0 + t) * a->n_out + o] = tmp[t];
}

#define GEMM_ROWS 4
#define DEF_GEMM_Q80(NAME, BLK, WBUF)                                                                      \
    static inline void NAME##_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) {                     \
        const int64_t nb = a->n_in / KQ_QK8_0;                                                             \
        const uint8_t *xg = a->xq + (size_t)g * a->xq_row_bytes;                                           \
        const BLK *w[GEMM_ROWS];                                                                           \
        __m512 acc[GEMM_ROWS];                                                                             \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                                                      \
            w[r] = (const BLK *)(a->W + (size_t)(o + r) * a->w_row_bytes);                                 \
            acc[r] = _mm512_setzero_ps();                                                                  \
        }                                                                                                  \
        _Alignas(64) uint8_t wb[GEMM_ROWS][32];                                                            \
        for (int64_t b = 0; b < nb; b++) {                                                                 \
            const uint8_t *xb = xg + b * Q80_GBLK;                                                         \
            __m512i s[GEMM_ROWS];                                                                          \
            const __m512i st = _mm512_loadu_si512(xb + 512);                                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                                                  \
                WBUF(w[r] + b, wb[r]);                                                                     \
                s[r] = st;                                                                                 \
            }                                                                                              \
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {                                                                  \
                const __m512i xk = _mm512_load_si512(xb + k * 64);                                         \
                _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {                                                              \
                    int32_t wd;                                                                            \
                    memcpy(&wd, wb[r] + 4 * k, 4);                                                         \
                    s[r] = _mm512_dpbusd_epi32(s[r], _mm512_set1_epi32(wd), xk);                           \
                }                                                                                          \
            }                                                                                              \
            const __m512 dx = _mm512_load_ps((const float *)(xb + 576));                                   \
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)                                                                    \
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]),                                         \
                                         _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(w[r][b].d)), dx), acc[r]); \
        }                                                                                                  \
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);                                      \
    }                                                                                                      \
    static void NAME(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) {                             \
        int64_t o = o0;                                                                                    \
        for (; o + GEMM_ROWS <= o1; o += GEMM_ROWS) NAME##_tile(a, g, o, GEMM_ROWS);                       \
        for (; o < o1; o++) NAME##_tile(a, g, o, 1);                                                       \
    }
DEF_GEMM_Q80(gemm_q8_0, kq_block_q8_0, wbuf_q8_0)
DEF_GEMM_Q80(gemm_q4_0, kq_block_q4_0, wbuf_q4_0)

void kq_ops_avx512(kq_ops *ops) {
    ops->name = "avx512";
    ops->mm[KQ_W_Q8_0] = (kq_mm_impl){.prep = prep_q8_0, .prep_bytes = q80_gemv_bytes, .rows = rows_q8_0,
                                      .pack = pack_q8_0, .gemm = gemm_q8_0, .pack_bytes = q80_pack_bytes,
                                      .gemm_min_tok = 16};
    ops->mm[KQ_W_Q4_0] = (kq_mm_impl){.prep = prep_q4_0, .prep_bytes = q80_gemv_bytes, .rows = rows_q4_0,
                                      .pack = pack_q4_0, .gemm = gemm_q4_0, .pack_bytes = q80_pack_bytes,
                                      .gemm_min_tok = 16};
}
#endif
