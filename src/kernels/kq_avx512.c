/* kq_avx512.c — AVX-512 (F/BW/VL/DQ + VNNI + BF16) kernels (compiled with those flags;
 * chosen at run time only when cpuid reports them). Overrides entries of the avx2 table.
 *
 * Integer dot products use vpdpbusd (u8 × s8 -> s32). Activations keep their sign (s8)
 * and the weights are made unsigned: Q8_0 weights by w ^ 0x80 (= w + 128), IQ4_NL /
 * IQ4_XS levels looked up as level + 128, Q4_0/Q5_0/Q2_K/Q3_K/Q4_K/Q5_K/Q6_K codes
 * already are (Q5_0's 5th bit is added with a byte-masked add). The offset this adds,
 * off × Σx per block (or sub-block), is removed by starting the accumulator at -off × Σx,
 * which the activation prep precomputes.
 *
 * Two kinds of activation layout (structs under "activation layouts" below):
 *  - GEMV (few tokens, decode): one row per token, its int8 values grouped as the weight
 *    kernels take them (Q8_0: block pairs, q80_gemv_row; nibble formats: 4 blocks split in
 *    low/high halves, q40_gv; K-quants: superblocks with their sums, qk_gv) beside 16-lane
 *    int32 start and float scale vectors, so a zmm of weights is one vpdpbusd.
 *  - GEMM (>= gemm_min_tok tokens): groups of 16 tokens interleaved so that one zmm holds 4
 *    consecutive values of each of the 16 tokens (q80_gblk, qk_gblk); a weight dword is
 *    broadcast and every lane accumulates a whole block for one token. The float scaling
 *    then costs one convert + mul + fma per (row, block, 16 tokens) instead of per (row,
 *    token, 2 blocks).
 * Kernels shared by several dtypes are always-inlined bodies taking the dtype's parts as
 * constant arguments, instantiated by one-line functions per dtype (see KQ_INLINE).
 */
#include "kernels/kq_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
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

/* ---- activation layouts ----------------------------------------------------------
 * Each starts 64-byte aligned (the matmul scratch is, and every size here is a multiple
 * of 64), so the kernels read them with aligned 64-byte loads. */

/* GEMV row for Q8_0 weights: one zmm of weights is a block pair (2p, 2p+1), so the token's
 * row is, for nbp = ceil(nb / 2) pairs, three arrays one after the other:
 *   qs    int8  [nbp][64]  values of block 2p, then of block 2p+1 (zero past the row)
 *   start int32 [nbp][16]  lane 0: block 2p's -128·Σq, lane 8: block 2p+1's, others 0
 *   scale float [nbp][16]  lanes 0-7: block 2p's d, lanes 8-15: block 2p+1's. */
typedef struct q80_gemv_row {
    int8_t (*qs)[64];
    int32_t (*start)[16];
    float (*scale)[16];
} q80_gemv_row;
static inline q80_gemv_row q80_gemv_at(const void *row, int64_t nbp) {
    int8_t(*qs)[64] = (int8_t(*)[64])row;
    int32_t(*start)[16] = (int32_t(*)[16])(qs + nbp);
    return (q80_gemv_row){qs, start, (float(*)[16])(start + nbp)};
}
static size_t q80_gemv_bytes(int64_t n) {
    int64_t nbp = (n / KQ_QK8_0 + 1) / 2;
    return (size_t)nbp * (64 + 16 * sizeof(int32_t) + 16 * sizeof(float));
}

/* One block of 32 values of a 16-token group, gemm path for the 32-element formats: a
 * weight dword broadcast against vals[k] meets the same 4 values of all 16 tokens. A
 * packed group is n_in / 32 of these; tokens past the group's end are zero. */
typedef struct q80_gblk {
    int8_t vals[8][KQ_GEMM_TOK][4]; /* [dword k][token t]: values 4k..4k+3 of token t */
    union {
        int32_t start[KQ_GEMM_TOK]; /* token t's -off·Σq (off: the weights' code offset) */
        float s[KQ_GEMM_TOK];       /* Q5_1 (Q8_1 activations): token t's fp16(amax/127·Σq) */
    };
    float scale[KQ_GEMM_TOK];       /* token t's d */
} q80_gblk;
static_assert(sizeof(q80_gblk) == 640, "q80_gblk");

/* 4 blocks of 32 of one token, GEMV path for the nibble formats (Q4_0/Q5_0/Q5_1/IQ4_NL):
 * the 64 packed bytes of 4 weight blocks unpack to a zmm of their low nibbles (values 0-15
 * of each block) and one of the high nibbles (16-31), which meet lo and hi. A row is
 * ceil(nb / 4) of these, zero past the row's end. */
typedef struct q40_gv {
    int8_t lo[4][16];      /* [block k]: values 0..15 */
    int8_t hi[4][16];      /* [block k]: values 16..31 */
    union {
        int32_t start[16]; /* lane 4k: block k's -off·Σq, other lanes 0 */
        float s[16];       /* Q5_1: lane 4k: block k's fp16(amax/127·Σq), other lanes 0 */
    };
    float scale[16];       /* lanes 4k..4k+3: block k's d */
} q40_gv;
static_assert(sizeof(q40_gv) == 256, "q40_gv");

/* One superblock of 256 of one token, GEMV path for Q2_K..Q6_K and IQ4_XS; a row is n_in /
 * 256 of these. */
typedef struct qk_gv {
    int8_t qs[KQ_QK_K];
    int16_t b16[KQ_QK_K / 16]; /* Σ of values 16j..16j+15 */
    int32_t b32[KQ_QK_K / 32]; /* Σ of values 32j..32j+31 */
    float d;
    uint8_t pad[60];
} qk_gv;
static_assert(sizeof(qk_gv) == 384, "qk_gv");

/* One superblock of 256 of a 16-token group, gemm path for Q2_K..Q6_K and IQ4_XS (as
 * q80_gblk: a broadcast weight dword meets vals[k] of all 16 tokens); the sums are int16
 * pairs so that one vpdpwssd with a pair of weight multipliers serves 16 tokens. */
typedef struct qk_gblk {
    int8_t vals[KQ_QK_K / 4][KQ_GEMM_TOK][4]; /* [dword k][token t]: values 4k..4k+3 */
    float d[KQ_GEMM_TOK];
    int16_t b32[4][KQ_GEMM_TOK][2];           /* [i][t]: token t's Σ of 32-value sub-blocks 2i, 2i+1 */
    int16_t b16[8][KQ_GEMM_TOK][2];           /* [i][t]: token t's Σ of 16-value sub-blocks 2i, 2i+1 */
} qk_gblk;
static_assert(sizeof(qk_gblk) == 4928, "qk_gblk");

static inline void q80_gemv_prep(const float *x, void *dst, int64_t n, int off) {
    const int64_t nb = n / KQ_QK8_0, nbp = (nb + 1) / 2;
    const q80_gemv_row r = q80_gemv_at(dst, nbp);
    memset(r.start, 0, (size_t)nbp * sizeof *r.start);
    for (int64_t b = 0; b < nbp * 2; b++) { /* block b: half b % 2 of pair b / 2 */
        int8_t *qs = (int8_t *)r.qs + b * 32;
        float *dl = (float *)r.scale + (b / 2) * 16 + (b % 2) * 8;
        if (b < nb) {
            float d;
            int s;
            quant_block32(x + b * KQ_QK8_0, qs, &d, &s);
            _mm256_storeu_ps(dl, _mm256_set1_ps(d));
            ((int32_t *)r.start)[(b / 2) * 16 + (b % 2) * 8] = -off * s;
        } else {
            memset(qs, 0, 32);
            _mm256_storeu_ps(dl, _mm256_setzero_ps());
        }
    }
}
static void prep_q8_0(const float *x, void *dst, int64_t n) { q80_gemv_prep(x, dst, n, 128); }

static size_t q80_pack_bytes(int64_t n) { return (size_t)(n / KQ_QK8_0) * sizeof(q80_gblk); }

/* Packs blocks [b0, b1) of one 16-token group: lanes t < ntok from X (rows ldx apart),
 * the lanes after them zero. off: the weights' code offset (see the top of the file). */
static inline void q80_pack(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst, int off) {
    for (int64_t b = b0; b < b1; b++) {
        q80_gblk *blk = (q80_gblk *)dst + b;
        if (ntok < KQ_GEMM_TOK) memset(blk, 0, sizeof *blk);
        for (int64_t t = 0; t < ntok; t++) {
            int8_t q[32];
            float d;
            int s;
            quant_block32(X + t * ldx + b * KQ_QK8_0, q, &d, &s);
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) memcpy(blk->vals[k][t], q + 4 * k, 4);
            blk->start[t] = -off * s;
            blk->scale[t] = d;
        }
    }
}
static void pack_q8_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) { q80_pack(X, ldx, ntok, b0, b1, dst, 128); }
static void pack_q4_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) { q80_pack(X, ldx, ntok, b0, b1, dst, 8); }
static void pack_q5_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) { q80_pack(X, ldx, ntok, b0, b1, dst, 16); }

/* Q5_1 (Q8_1 activations): the same blocks, with s (kq_quantize_q8_1_act's) in place of
 * start. Blocks [b0, b1) of one group, as q80_pack. */
static void pack_q5_1(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) {
    for (int64_t b = b0; b < b1; b++) {
        q80_gblk *blk = (q80_gblk *)dst + b;
        if (ntok < KQ_GEMM_TOK) memset(blk, 0, sizeof *blk);
        for (int64_t t = 0; t < ntok; t++) {
            const float *x = X + t * ldx + b * KQ_QK8_0;
            int8_t q[32];
            float d;
            int sum;
            quant_block32(x, q, &d, &sum);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x)), _mm512_abs_ps(_mm512_loadu_ps(x + 16))));
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) memcpy(blk->vals[k][t], q + 4 * k, 4);
            blk->s[t] = _cvtsh_ss(_cvtss_sh(amax / 127.f * (float)sum, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            blk->scale[t] = d;
        }
    }
}

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
static inline __m512 d2(kq_f16 a, kq_f16 b) {
    return _mm512_insertf32x8(_mm512_set1_ps(_cvtsh_ss(a)), _mm256_set1_ps(_cvtsh_ss(b)), 1);
}

/* ---- Q8_0 / Q4_0 GEMV ----------------------------------------------------------- */

#define GEMV_TOK 4

/* Y[t][o] for output o and tokens [t0, t0+NT). */
static inline void rows_q8_0_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK8_0, nbp = (nb + 1) / 2;
    const kq_block_q8_0 *w = (const kq_block_q8_0 *)(a->W + (size_t)o * a->w_row_bytes);
    q80_gemv_row xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = q80_gemv_at(a->xq + (size_t)(t0 + t) * a->xq_row_bytes, nbp);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < nbp; p++) {
        const bool full = 2 * p + 1 < nb;
        const __m512i wz = full ? w2_q8_0(w + 2 * p) : w1_q8_0(w + 2 * p);
        const __m512 dw = d2(w[2 * p].d, full ? w[2 * p + 1].d : 0);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            __m512i s = _mm512_loadu_si512(xr[t].start[p]);
            s = _mm512_dpbusd_epi32(s, wz, _mm512_loadu_si512(xr[t].qs[p]));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(xr[t].scale[p])), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* Q4_0 GEMV works on 4 blocks at a time: one zmm of their 64 packed bytes gives the low
 * nibbles (elements 0-15 of each block) and the high nibbles (16-31), so the activation
 * row is a q40_gv per 4 blocks (start: -8 × Σx in lane 4k; Q5_0: -16 × Σx). */
static size_t q40_gemv_bytes(int64_t n) { return (size_t)((n / KQ_QK4_0 + 3) / 4) * sizeof(q40_gv); }
/* off: the code offset of the weights (8 for Q4_0, 16 for Q5_0). */
static inline void q40_gemv_prep(const float *x, void *dst, int64_t n, int off) {
    const int64_t nb = n / KQ_QK4_0, nbq = (nb + 3) / 4;
    q40_gv *o = dst;
    memset(o, 0, (size_t)nbq * sizeof *o);
    for (int64_t b = 0; b < nb; b++) {
        q40_gv *g = o + b / 4;
        const int k = (int)(b % 4);
        int8_t q[32];
        float d;
        int sum;
        quant_block32(x + b * KQ_QK4_0, q, &d, &sum);
        memcpy(g->lo[k], q, 16);
        memcpy(g->hi[k], q + 16, 16);
        g->start[4 * k] = -off * sum;
        for (int l = 0; l < 4; l++) g->scale[4 * k + l] = d;
    }
}
static void prep_q4_0(const float *x, void *dst, int64_t n) { q40_gemv_prep(x, dst, n, 8); }
static void prep_q5_0(const float *x, void *dst, int64_t n) { q40_gemv_prep(x, dst, n, 16); }

/* IQ4_NL GEMV: the blocks have Q4_0's layout (d, then 16 bytes of nibbles), so this is
 * rows_q4_0_tile with the nibbles mapped through vpshufb to level + 128 (1..241, unsigned
 * for vpdpbusd); the activation row is the Q4_0 layout with start = -128 × Σx. */
static inline __m512i iq4_lut512(void) {
    return _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)kq_iq4nl_values), _mm_set1_epi8((char)0x80)));
}
static void prep_iq4_nl(const float *x, void *dst, int64_t n) { q40_gemv_prep(x, dst, n, 128); }

static inline void rows_iq4_nl_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK4_NL, nbq = (nb + 3) / 4;
    const kq_block_iq4_nl *w = (const kq_block_iq4_nl *)(a->W + (size_t)o * a->w_row_bytes);
    const q40_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const q40_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), lut = iq4_lut512();
    /* as rows_q4_0_tile: block k's qs at group words 1 + 9k .. 8 + 9k, its d at word 9k */
    _Alignas(64) static const int16_t qidx_w[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                                     19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 60, 61, 62, 63};
    _Alignas(64) static const int16_t didx_w[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};
    const __m512i qidx = _mm512_load_si512(qidx_w), didx = _mm512_load_si512(didx_w);
    kq_block_iq4_nl tail[4];
    for (int64_t g = 0; g < nbq; g++) {
        const kq_block_iq4_nl *wb = w + 4 * g;
        if (4 * g + 4 > nb) { /* last, partial group: zero blocks (d = 0) after the row's end */
            memset(tail, 0, sizeof tail);
            memcpy(tail, wb, (size_t)(nb - 4 * g) * sizeof *wb);
            wb = tail;
        }
        const __m512i A = _mm512_loadu_si512(wb), B = _mm512_loadu_si512((const uint8_t *)wb + 8);
        const __m512i z = _mm512_permutex2var_epi16(A, qidx, B);
        const __m512i lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(z, m4));
        const __m512i hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi16(z, 4), m4));
        const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(didx, A)));
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const q40_gv *xg = xr[t] + g;
            __m512i s = _mm512_loadu_si512(xg->start);
            s = _mm512_dpbusd_epi32(s, lo, _mm512_loadu_si512(xg->lo));
            s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(xg->hi));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(xg->scale)), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

static inline void rows_q4_0_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK4_0, nbq = (nb + 3) / 4;
    const kq_block_q4_0 *w = (const kq_block_q4_0 *)(a->W + (size_t)o * a->w_row_bytes);
    const q40_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const q40_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* word w of the gathered qs: block k = w/8 sits at group word 1 + 9k + w%8; words 32+
     * of the group come from B (which starts 4 words later) */
    _Alignas(64) static const int16_t qidx_w[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                                     19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 60, 61, 62, 63};
    _Alignas(64) static const int16_t didx_w[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};
    const __m512i qidx = _mm512_load_si512(qidx_w), didx = _mm512_load_si512(didx_w);
    kq_block_q4_0 tail[4];
    for (int64_t g = 0; g < nbq; g++) {
        const kq_block_q4_0 *wb = w + 4 * g;
        if (4 * g + 4 > nb) { /* last, partial group: zero blocks after the row's end */
            memset(tail, 0, sizeof tail);
            memcpy(tail, wb, (size_t)(nb - 4 * g) * sizeof *wb);
            wb = tail;
        }
        /* the 4 blocks are 72 contiguous bytes: two loads (bytes 0-63 and 8-71) and one
         * word permute gather the 64 nibble bytes; another permute spreads the scales */
        const __m512i A = _mm512_loadu_si512(wb), B = _mm512_loadu_si512((const uint8_t *)wb + 8);
        const __m512i z = _mm512_permutex2var_epi16(A, qidx, B);
        const __m512i lo = _mm512_and_si512(z, m4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(didx, A)));
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const q40_gv *xg = xr[t] + g;
            __m512i s = _mm512_loadu_si512(xg->start);
            s = _mm512_dpbusd_epi32(s, lo, _mm512_loadu_si512(xg->lo));
            s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(xg->hi));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(xg->scale)), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* Q5_0 GEMV on the Q4_0 activation layout. 4 blocks are 88 contiguous bytes whose fields
 * all start at even offsets (block k: d at word 11k, qh at words 11k+1..2, qs at words
 * 11k+3..10), so two loads (bytes 0-63 and 24-87) and word permutes gather the 64 qs
 * bytes, the 5th-bit masks and the scales; the 5th bits then add 16 by byte mask. */
static inline void rows_q5_0_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK4_0, nbq = (nb + 3) / 4;
    const kq_block_q5_0 *w = (const kq_block_q5_0 *)(a->W + (size_t)o * a->w_row_bytes);
    const q40_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const q40_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), v16 = _mm512_set1_epi8(16);
    /* group word gw: from A when gw < 32 (index gw), else from B (index gw - 12 + 32) */
    _Alignas(64) static const int16_t qidx_w[32] = {3,  4,  5,  6,  7,  8,  9,  10, 14, 15, 16, 17, 18, 19, 20, 21,
                                                     25, 26, 27, 28, 29, 30, 31, 52, 56, 57, 58, 59, 60, 61, 62, 63};
    /* words 0-3: qh low halves of blocks 0-3, 4-7: high halves; 16-31: each d four times */
    _Alignas(64) static const int16_t hidx_w[32] = {1,  12, 23, 54, 2,  13, 24, 55, 0,  0,  0,  0,  0,  0,  0,  0,
                                                     0,  0,  0,  0,  11, 11, 11, 11, 22, 22, 22, 22, 53, 53, 53, 53};
    const __m512i qidx = _mm512_load_si512(qidx_w), hidx = _mm512_load_si512(hidx_w);
    kq_block_q5_0 tail[4];
    for (int64_t g = 0; g < nbq; g++) {
        const kq_block_q5_0 *wb = w + 4 * g;
        if (4 * g + 4 > nb) { /* last, partial group: zero blocks after the row's end */
            memset(tail, 0, sizeof tail);
            memcpy(tail, wb, (size_t)(nb - 4 * g) * sizeof *wb);
            wb = tail;
        }
        const __m512i A = _mm512_loadu_si512(wb), B = _mm512_loadu_si512((const uint8_t *)wb + 24);
        const __m512i z = _mm512_permutex2var_epi16(A, qidx, B), hd = _mm512_permutex2var_epi16(A, hidx, B);
        const __m128i hm = _mm512_castsi512_si128(hd);
        __m512i lo = _mm512_and_si512(z, m4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        lo = _mm512_mask_add_epi8(lo, (__mmask64)_mm_cvtsi128_si64(hm), lo, v16);
        hi = _mm512_mask_add_epi8(hi, (__mmask64)_mm_extract_epi64(hm, 1), hi, v16);
        const __m512 dw = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hd, 1));
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const q40_gv *xg = xr[t] + g;
            __m512i s = _mm512_loadu_si512(xg->start);
            s = _mm512_dpbusd_epi32(s, lo, _mm512_loadu_si512(xg->lo));
            s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(xg->hi));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(xg->scale)), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* Q5_1 GEMV: activation rows as the Q4_0 layout (q40_gv) with s = fp16(amax/127 · Σq) of
 * block k in lane 4k (zero elsewhere) in place of the int32 start.
 * 4 weight blocks are 96 bytes (block k: d at word 12k, m at 12k+1, qh at 12k+2..3, qs at
 * 12k+4..11): two loads (bytes 0-63, 32-95) and word permutes gather them. */
static void prep_q5_1(const float *x, void *dst, int64_t n) {
    const int64_t nb = n / KQ_QK4_0, nbq = (nb + 3) / 4;
    q40_gv *o = dst;
    memset(o, 0, (size_t)nbq * sizeof *o);
    for (int64_t b = 0; b < nb; b++) {
        q40_gv *g = o + b / 4;
        const int k = (int)(b % 4);
        const float *xb = x + b * KQ_QK4_0;
        int8_t q[32];
        float d;
        int sum;
        quant_block32(xb, q, &d, &sum);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xb)), _mm512_abs_ps(_mm512_loadu_ps(xb + 16))));
        memcpy(g->lo[k], q, 16);
        memcpy(g->hi[k], q + 16, 16);
        g->s[4 * k] = _cvtsh_ss(_cvtss_sh(amax / 127.f * (float)sum, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        for (int l = 0; l < 4; l++) g->scale[4 * k + l] = d;
    }
}

static inline void rows_q5_1_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK4_0, nbq = (nb + 3) / 4;
    const kq_block_q5_1 *w = (const kq_block_q5_1 *)(a->W + (size_t)o * a->w_row_bytes);
    const q40_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const q40_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i m4 = _mm512_set1_epi8(0x0F), v16 = _mm512_set1_epi8(16);
    /* group word gw: from A when gw < 32, else from B (index gw - 16 + 32) */
    _Alignas(64) static const int16_t qidx_w[32] = {4,  5,  6,  7,  8,  9,  10, 11, 16, 17, 18, 19, 20, 21, 22, 23,
                                                     28, 29, 30, 31, 48, 49, 50, 51, 56, 57, 58, 59, 60, 61, 62, 63};
    /* words 0-3: qh low halves, 4-7: high halves, 16-31: each m four times */
    _Alignas(64) static const int16_t hidx_w[32] = {2, 14, 26, 54, 3,  15, 27, 55, 0,  0,  0,  0,  0,  0,  0,  0,
                                                     1, 1,  1,  1,  13, 13, 13, 13, 25, 25, 25, 25, 53, 53, 53, 53};
    _Alignas(64) static const int16_t didx_w[32] = {0, 0, 0, 0, 12, 12, 12, 12, 24, 24, 24, 24, 52, 52, 52, 52};
    const __m512i qidx = _mm512_load_si512(qidx_w), hidx = _mm512_load_si512(hidx_w), didx = _mm512_load_si512(didx_w);
    kq_block_q5_1 tail[4];
    for (int64_t g = 0; g < nbq; g++) {
        const kq_block_q5_1 *wb = w + 4 * g;
        if (4 * g + 4 > nb) { /* last, partial group: zero blocks after the row's end */
            memset(tail, 0, sizeof tail);
            memcpy(tail, wb, (size_t)(nb - 4 * g) * sizeof *wb);
            wb = tail;
        }
        const __m512i A = _mm512_loadu_si512(wb), B = _mm512_loadu_si512((const uint8_t *)wb + 32);
        const __m512i z = _mm512_permutex2var_epi16(A, qidx, B), hm = _mm512_permutex2var_epi16(A, hidx, B);
        const __m128i h = _mm512_castsi512_si128(hm);
        __m512i lo = _mm512_and_si512(z, m4), hi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        lo = _mm512_mask_add_epi8(lo, (__mmask64)_mm_cvtsi128_si64(h), lo, v16);
        hi = _mm512_mask_add_epi8(hi, (__mmask64)_mm_extract_epi64(h, 1), hi, v16);
        const __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(A, didx, B)));
        const __m512 mw = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(hm, 1));
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const q40_gv *xg = xr[t] + g;
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_loadu_si512(xg->lo));
            s = _mm512_dpbusd_epi32(s, hi, _mm512_loadu_si512(xg->hi));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_loadu_ps(xg->scale)), acc[t]);
            acc[t] = _mm512_fmadd_ps(mw, _mm512_loadu_ps(xg->s), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* ---- Q8_0 / Q4_0 GEMM ----------------------------------------------------------- */


static inline void wbuf_q5_0(const kq_block_q5_0 *w, uint8_t *buf) {
    const __m128i q = _mm_loadu_si128((const __m128i *)w->qs), m = _mm_set1_epi8(0x0F);
    __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m)), _mm_and_si128(_mm_srli_epi16(q, 4), m), 1);
    uint32_t h;
    memcpy(&h, w->qh, 4);
    z = _mm256_mask_add_epi8(z, (__mmask32)h, z, _mm256_set1_epi8(16));
    _mm256_storeu_si256((__m256i *)buf, z);
}

static inline void store_group(const kq_mm_args *a, int64_t g, int64_t o, __m512 acc) {
    float tmp[16];
    _mm512_storeu_ps(tmp, acc);
    const int64_t t0 = g * KQ_GEMM_TOK, nt = a->n_tok - t0 < KQ_GEMM_TOK ? a->n_tok - t0 : KQ_GEMM_TOK;
    for (int64_t t = 0; t < nt; t++) a->Y[(t0 + t) * a->n_out + o] = tmp[t];
}

/* The kernels below are written once as always-inlined bodies taking the per-dtype
 * parts (block size, weight unpacking) as constant arguments, and instantiated by small
 * per-dtype functions; GCC folds the constants and inlines the calls through the function
 * pointers, so each instance compiles as if written out (checked with objdump). */
#define KQ_INLINE static inline __attribute__((always_inline))

/* Weight rows stream from memory when few tokens share them (decode batches). A tile of R
 * rows is one contiguous stretch of memory, so while it runs the stretch GEMM_PF_TILES
 * tiles ahead is prefetched in step with progress: at block b, the next R × block-bytes of
 * it (the hardware prefetcher alone leaves the R interleaved row streams stalling). */
#define GEMM_PF_TILES 2
/* (always inlined: GCC deems a function holding only prefetches free of effects and drops
 * the calls to it that it did not inline early) */
KQ_INLINE void gemm_prefetch(const uint8_t *p, int nbytes) {
    for (int i = 0; i < nbytes; i += 64) _mm_prefetch((const char *)p + i, _MM_HINT_T0);
}
#define GEMM_ROWS 6 /* most rows of a gemm tile (register budget: 6 int + 6 float accumulators + temporaries) */

/* A gemm tile: rows [o, o + R) of group g. */
typedef void (*gemm_tile_fn)(const kq_mm_args *a, int64_t g, int64_t o, int R);

/* Rows [o0, o1) of group g: tiles of rmain rows, the remainder as 4 / 2 / 1-row tiles. */
KQ_INLINE void gemm_rows(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1, gemm_tile_fn tile, int rmain) {
    int64_t o = o0;
    for (; o + rmain <= o1; o += rmain) tile(a, g, o, rmain);
    if (o1 - o >= 4) { tile(a, g, o, 4); o += 4; }
    if (o1 - o >= 2) { tile(a, g, o, 2); o += 2; }
    if (o1 - o >= 1) tile(a, g, o, 1);
}

/* Q5_0 rows [o, o+R) of group g: each row's block is unpacked to 32 unsigned codes
 * (wbuf_q5_0) in a stack buffer whose dwords are then broadcast against the 16 tokens. */
static inline void gemm_q5_0_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK8_0;
    const q80_gblk *xg = (const q80_gblk *)(a->xq + (size_t)g * a->xq_row_bytes);
    const kq_block_q5_0 *w[GEMM_ROWS];
    __m512 acc[GEMM_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q5_0 *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r] = _mm512_setzero_ps();
    }
    _Alignas(64) uint8_t wb[GEMM_ROWS][32];
    const uint8_t *pf = a->W + (size_t)(o + GEMM_PF_TILES * R) * a->w_row_bytes;
    for (int64_t b = 0; b < nb; b++) {
        const q80_gblk *xb = xg + b;
        __m512i s[GEMM_ROWS] = {0};
        const __m512i st = _mm512_loadu_si512(xb->start);
        gemm_prefetch(pf + b * R * (int)sizeof(kq_block_q5_0), R * (int)sizeof(kq_block_q5_0));
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            wbuf_q5_0(w[r] + b, wb[r]);
            s[r] = st;
        }
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const __m512i xk = _mm512_load_si512(xb->vals[k]);
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
                int32_t wd;
                memcpy(&wd, wb[r] + 4 * k, 4);
                s[r] = _mm512_dpbusd_epi32(s[r], _mm512_set1_epi32(wd), xk);
            }
        }
        const __m512 dx = _mm512_load_ps(xb->scale);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]),
                                     _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(w[r][b].d)), dx), acc[r]);
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);
}
static void gemm_q5_0(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q5_0_tile, GEMM_ROWS); }

/* Unsigned codes of a block's dwords k and k+4 (elements 4k.. and 16+4k..), k < 4, each
 * broadcast to all 16 lanes straight from the block: Q8_0 by vpxord with a {1to16} memory
 * operand, Q4_0 as the low and high nibbles of one broadcast dword. */
typedef void (*u2_fn)(const void *blk, int k, __m512i *lo, __m512i *hi);
static inline void u2_q8_0(const void *blk, int k, __m512i *lo, __m512i *hi) {
    const kq_block_q8_0 *w = blk;
    int32_t a, b;
    memcpy(&a, w->qs + 4 * k, 4);
    memcpy(&b, w->qs + 16 + 4 * k, 4);
    *lo = _mm512_xor_si512(_mm512_set1_epi32(a), _mm512_set1_epi8((char)0x80));
    *hi = _mm512_xor_si512(_mm512_set1_epi32(b), _mm512_set1_epi8((char)0x80));
}
static inline void u2_q4_0(const void *blk, int k, __m512i *lo, __m512i *hi) {
    const kq_block_q4_0 *w = blk;
    int32_t a;
    memcpy(&a, w->qs + 4 * k, 4);
    const __m512i t = _mm512_set1_epi32(a), m = _mm512_set1_epi8(0x0F);
    *lo = _mm512_and_si512(t, m);
    *hi = _mm512_and_si512(_mm512_srli_epi32(t, 4), m);
}
/* IQ4_NL: as Q4_0, each nibble mapped to level + 128 (the Q8_0 pack's start is -128 × Σx). */
static inline void u2_iq4_nl(const void *blk, int k, __m512i *lo, __m512i *hi) {
    const kq_block_iq4_nl *w = blk;
    int32_t a;
    memcpy(&a, w->qs + 4 * k, 4);
    const __m512i t = _mm512_set1_epi32(a), m = _mm512_set1_epi8(0x0F), lut = iq4_lut512();
    *lo = _mm512_shuffle_epi8(lut, _mm512_and_si512(t, m));
    *hi = _mm512_shuffle_epi8(lut, _mm512_and_si512(_mm512_srli_epi32(t, 4), m));
}
/* The fp16 scale d of a Q8_0 / Q4_0 / IQ4_NL block, its first field. */
static_assert(offsetof(kq_block_q8_0, d) == 0 && offsetof(kq_block_q4_0, d) == 0 && offsetof(kq_block_iq4_nl, d) == 0, "d first");
static inline float blk_d(const void *blk) {
    kq_f16 d;
    memcpy(&d, blk, sizeof d);
    return _cvtsh_ss(d);
}

/* Q8_0 / Q4_0 / IQ4_NL rows [o, o+R) of group g (blocks of blk_bytes): the weight dwords
 * are broadcast from the blocks as they are used (u2), so no converted copy of a block is
 * stored and reloaded (GCC turns such a copy into two shuffles per dword, which then bound
 * the loop). */
KQ_INLINE void gemm_bcast_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, size_t blk_bytes, u2_fn u2) {
    const int64_t nb = a->n_in / KQ_QK8_0;
    const q80_gblk *xg = (const q80_gblk *)(a->xq + (size_t)g * a->xq_row_bytes);
    const uint8_t *w[GEMM_ROWS];
    __m512 acc[GEMM_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
        w[r] = a->W + (size_t)(o + r) * a->w_row_bytes;
        acc[r] = _mm512_setzero_ps();
    }
    const uint8_t *pf = a->W + (size_t)(o + GEMM_PF_TILES * R) * a->w_row_bytes;
    for (int64_t b = 0; b < nb; b++) {
        const q80_gblk *xb = xg + b;
        __m512i s[GEMM_ROWS] = {0};
        const __m512i st = _mm512_loadu_si512(xb->start);
        gemm_prefetch(pf + b * R * (int)blk_bytes, R * (int)blk_bytes);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) s[r] = st;
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
            const __m512i xlo = _mm512_load_si512(xb->vals[k]), xhi = _mm512_load_si512(xb->vals[k + 4]);
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
                __m512i lo, hi;
                u2(w[r] + b * blk_bytes, k, &lo, &hi);
                s[r] = _mm512_dpbusd_epi32(s[r], lo, xlo);
                s[r] = _mm512_dpbusd_epi32(s[r], hi, xhi);
            }
        }
        const __m512 dx = _mm512_load_ps(xb->scale);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(_mm512_set1_ps(blk_d(w[r] + b * blk_bytes)), dx), acc[r]);
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);
}
static inline void gemm_q8_0_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_bcast_tile(a, g, o, R, sizeof(kq_block_q8_0), u2_q8_0); }
static inline void gemm_q4_0_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_bcast_tile(a, g, o, R, sizeof(kq_block_q4_0), u2_q4_0); }
static inline void gemm_iq4_nl_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_bcast_tile(a, g, o, R, sizeof(kq_block_iq4_nl), u2_iq4_nl); }
static void gemm_q8_0(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q8_0_tile, GEMM_ROWS); }
static void gemm_q4_0(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q4_0_tile, GEMM_ROWS); }
static void gemm_iq4_nl(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_iq4_nl_tile, GEMM_ROWS); }

static inline void wbuf_q5_1(const kq_block_q5_1 *w, uint8_t *buf) {
    const __m128i q = _mm_loadu_si128((const __m128i *)w->qs), m = _mm_set1_epi8(0x0F);
    __m256i z = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m)), _mm_and_si128(_mm_srli_epi16(q, 4), m), 1);
    uint32_t h;
    memcpy(&h, w->qh, 4);
    z = _mm256_mask_add_epi8(z, (__mmask32)h, z, _mm256_set1_epi8(16));
    _mm256_storeu_si256((__m256i *)buf, z);
}

/* Q5_1 GEMM: d_w·d_x·Σ code·q + m_w·s_x per block and token (ggml's Q5_1 · Q8_1). */
static inline void gemm_q5_1_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK8_0;
    const q80_gblk *xg = (const q80_gblk *)(a->xq + (size_t)g * a->xq_row_bytes);
    const kq_block_q5_1 *w[GEMM_ROWS];
    __m512 acc[GEMM_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q5_1 *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r] = _mm512_setzero_ps();
    }
    _Alignas(64) uint8_t wb[GEMM_ROWS][32];
    for (int64_t b = 0; b < nb; b++) {
        const q80_gblk *xb = xg + b;
        __m512i s[GEMM_ROWS];
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            wbuf_q5_1(w[r] + b, wb[r]);
            s[r] = _mm512_setzero_si512();
        }
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const __m512i xk = _mm512_load_si512(xb->vals[k]);
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
                int32_t wd;
                memcpy(&wd, wb[r] + 4 * k, 4);
                s[r] = _mm512_dpbusd_epi32(s[r], _mm512_set1_epi32(wd), xk);
            }
        }
        const __m512 sx = _mm512_load_ps(xb->s), dx = _mm512_load_ps(xb->scale);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(w[r][b].d)), dx), acc[r]);
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(w[r][b].m)), sx, acc[r]);
        }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);
}
static void gemm_q5_1(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q5_1_tile, GEMM_ROWS); }

/* ---- Q8_K activations (bit-exact with kq_quantize_q8_K) ------------------------- */

/* One superblock of 256: q[256], *d, bsums of 16 (b16) and of 32 (b32). */
static inline void quant_block256(const float *x, int8_t *q, float *d, int16_t *b16, int32_t *b32) {
    __m512 am = _mm512_setzero_ps();
    for (int i = 0; i < 16; i++) am = _mm512_max_ps(am, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)));
    const float amax = _mm512_reduce_max_ps(am);
    if (amax == 0.f) {
        memset(q, 0, 256);
        *d = 0;
        memset(b16, 0, 32);
        memset(b32, 0, 32);
        return;
    }
    /* the first value of largest magnitude, with its sign (as the reference picks it) */
    float max = 0;
    const __m512 va = _mm512_set1_ps(amax);
    for (int i = 0; i < 16; i++) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * i)), va, _CMP_EQ_OQ);
        if (m) {
            max = x[16 * i + __builtin_ctz(m)];
            break;
        }
    }
    const float iscale = -127.f / max;
    const __m512 vs = _mm512_set1_ps(iscale);
    for (int i = 0; i < 16; i++) {
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * i), vs));
        v = _mm512_min_epi32(v, _mm512_set1_epi32(127));
        _mm_storeu_si128((__m128i *)(q + 16 * i), _mm512_cvtepi32_epi8(v));
        b16[i] = (int16_t)_mm512_reduce_add_epi32(v);
    }
    for (int j = 0; j < 8; j++) b32[j] = b16[2 * j] + b16[2 * j + 1];
    *d = 1 / iscale;
}

static size_t qk_gemv_bytes(int64_t n) { return (size_t)(n / KQ_QK_K) * sizeof(qk_gv); }
static void prep_qk(const float *x, void *dst, int64_t n) {
    qk_gv *o = dst;
    for (int64_t b = 0; b < n / KQ_QK_K; b++) quant_block256(x + b * KQ_QK_K, o[b].qs, &o[b].d, o[b].b16, o[b].b32);
}

static size_t qk_pack_bytes(int64_t n) { return (size_t)(n / KQ_QK_K) * sizeof(qk_gblk); }
/* Superblocks [b0, b1) of one 16-token group, as q80_pack. */
static void pack_qk(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) {
    for (int64_t b = b0; b < b1; b++) {
        qk_gblk *blk = (qk_gblk *)dst + b;
        if (ntok < KQ_GEMM_TOK) memset(blk, 0, sizeof *blk);
        for (int64_t t = 0; t < ntok; t++) {
            int8_t q[256];
            int16_t b16[16];
            int32_t b32[8];
            float d;
            quant_block256(X + t * ldx + b * KQ_QK_K, q, &d, b16, b32);
            for (int k = 0; k < 64; k++) memcpy(blk->vals[k][t], q + 4 * k, 4);
            blk->d[t] = d;
            for (int i = 0; i < 4; i++) {
                blk->b32[i][t][0] = (int16_t)b32[2 * i];
                blk->b32[i][t][1] = (int16_t)b32[2 * i + 1];
            }
            for (int i = 0; i < 8; i++) {
                blk->b16[i][t][0] = b16[2 * i];
                blk->b16[i][t][1] = b16[2 * i + 1];
            }
        }
    }
}

static inline __m128i q4k_scales(const uint8_t *sc12) {
    uint8_t b[16];
    kq_q4k_unpack(sc12, b);
    return _mm_loadu_si128((const __m128i *)b);
}

/* ---- Q4_K / Q6_K GEMV ----------------------------------------------------------- */

/* Q4_K / Q5_K GEMV. */
/* Q4_K and Q5_K blocks differ only by Q5_K's 5th bits; these read either (q5: a Q5_K
 * block), qh NULL for Q4_K. */
static inline const kq_block_q4_K *q4k(const uint8_t *blk) { return (const kq_block_q4_K *)blk; }
static inline const kq_block_q5_K *q5k(const uint8_t *blk) { return (const kq_block_q5_K *)blk; }
KQ_INLINE const uint8_t *qk45_block(const uint8_t *row, int64_t b, bool q5) {
    return row + b * (q5 ? sizeof(kq_block_q5_K) : sizeof(kq_block_q4_K));
}
KQ_INLINE const uint8_t *qk45_scales(const uint8_t *blk, bool q5) { return q5 ? q5k(blk)->scales : q4k(blk)->scales; }
KQ_INLINE const uint8_t *qk45_qs(const uint8_t *blk, bool q5) { return q5 ? q5k(blk)->qs : q4k(blk)->qs; }
KQ_INLINE const uint8_t *qk45_qh(const uint8_t *blk, bool q5) { return q5 ? q5k(blk)->qh : NULL; }
KQ_INLINE float qk45_d(const uint8_t *blk, bool q5) { return _cvtsh_ss(q5 ? q5k(blk)->d : q4k(blk)->d); }
KQ_INLINE float qk45_dmin(const uint8_t *blk, bool q5) { return _cvtsh_ss(q5 ? q5k(blk)->dmin : q4k(blk)->dmin); }

KQ_INLINE void rows_qk45_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT, bool q5) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const uint8_t *w = a->W + (size_t)o * a->w_row_bytes;
    const qk_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    __m256 accm[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const qk_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    const __m512i lo4 = _mm512_set1_epi8(0x0F), v16 = _mm512_set1_epi8(16);
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = qk45_block(w, b, q5), *qh = qk45_qh(blk, q5);
        __m512i qhz = _mm512_setzero_si512();
        if (qh) qhz = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)qh));
        const __m128i smb = q4k_scales(qk45_scales(blk, q5));
        const __m512i sc32 = _mm512_cvtepu8_epi32(smb); /* lanes 0-7 scales, 8-15 mins */
        const __m256i m8 = _mm256_cvtepu8_epi32(_mm_srli_si128(smb, 8));
        const float d = qk45_d(blk, q5), dmin = qk45_dmin(blk, q5);
        __m512i wz[4], scv[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(qk45_qs(blk, q5) + 32 * j));
            const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
            wz[j] = _mm512_and_si512(z, lo4);
            if (qh) { /* low half: bit 2j of qh[l], high half: bit 2j+1 */
                const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << 2 * j)), _mm256_set1_epi8((char)(2 << 2 * j)), 1);
                wz[j] = _mm512_mask_add_epi8(wz[j], _mm512_test_epi8_mask(qhz, sel), wz[j], v16);
            }
            const __m512i idx = _mm512_inserti64x4(_mm512_set1_epi32(2 * j), _mm256_set1_epi32(2 * j + 1), 1);
            scv[j] = _mm512_permutexvar_epi32(idx, sc32);
        }
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const qk_gv *xb = xr[t] + b;
            __m512i is = _mm512_setzero_si512();
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wz[j], _mm512_loadu_si512(xb->qs + 64 * j));
                is = _mm512_dpwssd_epi32(is, s, scv[j]);
            }
            const float dx = xb->d;
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d * dx), acc[t]);
            const __m256i mb = _mm256_mullo_epi32(m8, _mm256_loadu_si256((const __m256i *)xb->b32));
            accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mb), _mm256_set1_ps(dmin * dx), accm[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        const __m256 m = accm[t];
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]) - _mm_cvtss_f32(h);
    }
}
static inline void rows_q4_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) { rows_qk45_tile(a, o, t0, NT, false); }
static inline void rows_q5_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) { rows_qk45_tile(a, o, t0, NT, true); }

/* The 6-bit values of one 128-element half as two zmm (elements 0-63, 64-127). */
static inline void q6k_half(const uint8_t *ql, const uint8_t *qh, __m512i *A, __m512i *B) {
    const __m512i l = _mm512_loadu_si512(ql);
    const __m256i h = _mm256_loadu_si256((const __m256i *)qh);
    const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    *A = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(_mm512_slli_epi16(hz, 4), m30));
    *B = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(hz, m30));
}

static inline void rows_q6_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q6_K *w = (const kq_block_q6_K *)(a->W + (size_t)o * a->w_row_bytes);
    const qk_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const qk_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w[b].scales));
        const __m512i sc32 = _mm512_cvtepu16_epi32(sc16); /* low 16 bits = scale, high = 0 */
        __m512i wz[4], scv[4];
        q6k_half(w[b].ql, w[b].qh, &wz[0], &wz[1]);
        q6k_half(w[b].ql + 64, w[b].qh + 32, &wz[2], &wz[3]);
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
            const __m512i idx = _mm512_set_epi32(4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 3, 4 * k + 2, 4 * k + 2, 4 * k + 2,
                                                 4 * k + 2, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k + 1, 4 * k, 4 * k, 4 * k, 4 * k);
            scv[k] = _mm512_permutexvar_epi32(idx, sc32);
        }
        const float d = _cvtsh_ss(w[b].d);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const qk_gv *xb = xr[t] + b;
            /* start at -32 * Σ scale * bsum16 (the codes are stored +32) */
            const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)xb->b16));
            __m512i is = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5)));
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wz[k], _mm512_loadu_si512(xb->qs + 64 * k));
                is = _mm512_dpwssd_epi32(is, s, scv[k]);
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d * xb->d), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* ---- Q2_K / Q3_K / IQ4_XS GEMV (the Q4_K activation layout) ------------------------ */

/* zmm j of a block's 2-bit codes (elements 64j..64j+63): bit pairs 2·(2j%4), 2·(2j%4)+1
 * of qs[32·(j/2) + l] (Q2_K / Q3_K layout). */
static inline __m512i q2k_codes(const uint8_t *qs, int j) {
    const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2))), m3 = _mm256_set1_epi8(3);
    const int s = 2 * (j % 2);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(_mm256_srli_epi16(q, 2 * s), m3)),
                              _mm256_and_si256(_mm256_srli_epi16(q, 2 * s + 2), m3), 1);
}
/* Lane i of zmm j holds elements 64j+4i..+3, of 16-element sub-block 4j + i/4. */
static inline __m512i sub16_idx(int j) {
    return _mm512_add_epi32(_mm512_set1_epi32(4 * j), _mm512_srli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 2));
}
static inline float hsum256(__m256 m) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* Q2_K: codes 0..3 are already unsigned; sub-block scales through vpdpwssd (a dword sum
 * of 4 codes × q8 fits 16 bits, as in the Q4_K GEMV); the mins as dmin·Σ min·bsum16. */
static inline void rows_q2_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q2_K *w = (const kq_block_q2_K *)(a->W + (size_t)o * a->w_row_bytes);
    const qk_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    __m256 accm[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const qk_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    for (int64_t b = 0; b < nb; b++) {
        const __m128i s8 = _mm_loadu_si128((const __m128i *)w[b].scales);
        const __m512i sc32 = _mm512_cvtepu8_epi32(_mm_and_si128(s8, _mm_set1_epi8(0x0F))); /* scale in the low 16 bits */
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
        __m512i wz[4], scv[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            wz[j] = q2k_codes(w[b].qs, j);
            scv[j] = _mm512_permutexvar_epi32(sub16_idx(j), sc32);
        }
        const float d = _cvtsh_ss(w[b].d), dmin = _cvtsh_ss(w[b].dmin);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const qk_gv *xb = xr[t] + b;
            __m512i is = _mm512_setzero_si512();
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wz[j], _mm512_loadu_si512(xb->qs + 64 * j));
                is = _mm512_dpwssd_epi32(is, s, scv[j]);
            }
            const float dx = xb->d;
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d * dx), acc[t]);
            const __m256i mb = _mm256_madd_epi16(mins, _mm256_loadu_si256((const __m256i *)xb->b16));
            accm[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mb), _mm256_set1_ps(dmin * dx), accm[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]) - hsum256(accm[t]);
}

/* Q3_K: unsigned codes (2 low bits | hmask bit << 2, 0..7), signed sub-block scales
 * through vpdpwssd, the -4 offset removed by starting at -4·Σ scale·bsum16. */
static inline void rows_q3_K_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q3_K *w = (const kq_block_q3_K *)(a->W + (size_t)o * a->w_row_bytes);
    const qk_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const qk_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    const __m256i one = _mm256_set1_epi8(1);
    for (int64_t b = 0; b < nb; b++) {
        int8_t s[16];
        kq_q3k_scales(w[b].scales, s);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)s));
        const __m512i sc32 = _mm512_cvtepu16_epi32(sc16); /* low 16 bits = scale, high = 0 */
        const __m256i hm = _mm256_loadu_si256((const __m256i *)w[b].hmask);
        __m512i wz[4], scv[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            /* elements 64j.. : hmask bit 2j; 64j+32.. : bit 2j+1 (element 32k+l: bit k of hmask[l]) */
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 2 * j), one), 2);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 2 * j + 1), one), 2);
            wz[j] = _mm512_or_si512(q2k_codes(w[b].qs, j), _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1));
            scv[j] = _mm512_permutexvar_epi32(sub16_idx(j), sc32);
        }
        const float d = _cvtsh_ss(w[b].d);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const qk_gv *xb = xr[t] + b;
            const __m256i corr = _mm256_madd_epi16(sc16, _mm256_loadu_si256((const __m256i *)xb->b16));
            __m512i is = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 2)));
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wz[j], _mm512_loadu_si512(xb->qs + 64 * j));
                is = _mm512_dpwssd_epi32(is, p, scv[j]);
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d * xb->d), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* IQ4_XS: levels + 128 by vpshufb; a dword sum (up to 241·127·4) does not fit 16 bits, so
 * the sub-block scales multiply with vpmulld; the +128 comes off as 128·Σ scale·bsum32. */
static inline void rows_iq4_xs_tile(const kq_mm_args *a, int64_t o, int64_t t0, int NT) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_iq4_xs *w = (const kq_block_iq4_xs *)(a->W + (size_t)o * a->w_row_bytes);
    const qk_gv *xr[GEMV_TOK];
    __m512 acc[GEMV_TOK];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
        xr[t] = (const qk_gv *)(a->xq + (size_t)(t0 + t) * a->xq_row_bytes);
        acc[t] = _mm512_setzero_ps();
    }
    const __m512i lut = iq4_lut512();
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int64_t b = 0; b < nb; b++) {
        int32_t ls[8];
        for (int s = 0; s < 8; s++) ls[s] = kq_iq4xs_scale(&w[b], s);
        const __m256i ls8 = _mm256_loadu_si256((const __m256i *)ls);
        __m512i wz[4], scv[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            /* sub-blocks 2j, 2j+1: 16 bytes each, low nibbles = their first 16 elements */
            const __m128i q0 = _mm_loadu_si128((const __m128i *)(w[b].qs + 32 * j));
            const __m128i q1 = _mm_loadu_si128((const __m128i *)(w[b].qs + 32 * j + 16));
            __m512i idx = _mm512_castsi128_si512(_mm_and_si128(q0, m4));
            idx = _mm512_inserti32x4(idx, _mm_and_si128(_mm_srli_epi16(q0, 4), m4), 1);
            idx = _mm512_inserti32x4(idx, _mm_and_si128(q1, m4), 2);
            idx = _mm512_inserti32x4(idx, _mm_and_si128(_mm_srli_epi16(q1, 4), m4), 3);
            wz[j] = _mm512_shuffle_epi8(lut, idx);
            /* lane i: elements 64j+4i.., sub-block 2j + i/8 */
            scv[j] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(ls[2 * j])), _mm256_set1_epi32(ls[2 * j + 1]), 1);
        }
        const float d = _cvtsh_ss(w[b].d);
        _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) {
            const qk_gv *xb = xr[t] + b;
            const __m256i corr = _mm256_mullo_epi32(ls8, _mm256_loadu_si256((const __m256i *)xb->b32));
            __m512i is = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 7)));
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wz[j], _mm512_loadu_si512(xb->qs + 64 * j));
                is = _mm512_add_epi32(is, _mm512_mullo_epi32(p, scv[j]));
            }
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_set1_ps(d * xb->d), acc[t]);
        }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; t++) a->Y[(t0 + t) * a->n_out + o] = _mm512_reduce_add_ps(acc[t]);
}

/* A GEMV tile: output o for tokens [t0, t0 + nt), nt <= GEMV_TOK. */
typedef void (*gemv_tile_fn)(const kq_mm_args *a, int64_t o, int64_t t0, int nt);

/* Outputs [o0, o1) for all tokens, GEMV_TOK tokens per tile. */
KQ_INLINE void gemv_rows(const kq_mm_args *a, int64_t o0, int64_t o1, gemv_tile_fn tile) {
    for (int64_t o = o0; o < o1; o++)
        for (int64_t t0 = 0; t0 < a->n_tok; t0 += GEMV_TOK) {
            const int64_t nt = a->n_tok - t0 < GEMV_TOK ? a->n_tok - t0 : GEMV_TOK;
            switch (nt) {
            case 1: tile(a, o, t0, 1); break;
            case 2: tile(a, o, t0, 2); break;
            case 3: tile(a, o, t0, 3); break;
            default: tile(a, o, t0, 4); break;
            }
        }
}
static void rows_q8_0(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q8_0_tile); }
static void rows_q4_0(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q4_0_tile); }
static void rows_q4_K(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q4_K_tile); }
static void rows_q5_0(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q5_0_tile); }
static void rows_q5_1(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q5_1_tile); }
static void rows_q5_K(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q5_K_tile); }
static void rows_q6_K(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q6_K_tile); }
static void rows_iq4_nl(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_iq4_nl_tile); }
static void rows_q2_K(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q2_K_tile); }
static void rows_q3_K(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_q3_K_tile); }
static void rows_iq4_xs(const kq_mm_args *a, int64_t o0, int64_t o1) { gemv_rows(a, o0, o1, rows_iq4_xs_tile); }

/* ---- Q4_K / Q6_K GEMM ----------------------------------------------------------- */

/* Q4_K / Q5_K GEMM tile. */
KQ_INLINE void gemm_qk45_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, bool q5) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const int blk_bytes = q5 ? (int)sizeof(kq_block_q5_K) : (int)sizeof(kq_block_q4_K);
    const qk_gblk *xg = (const qk_gblk *)(a->xq + (size_t)g * a->xq_row_bytes);
    const uint8_t *w[GEMM_ROWS];
    __m512 acc[GEMM_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < GEMM_ROWS; r++) {
        w[r] = a->W + (size_t)(o + (r < R ? r : 0)) * a->w_row_bytes;
        acc[r] = _mm512_setzero_ps();
    }
    _Alignas(64) uint8_t wb[GEMM_ROWS][256];
    _Alignas(16) uint8_t sm[GEMM_ROWS][16];
    const __m256i lo4 = _mm256_set1_epi8(0x0F), v16 = _mm256_set1_epi8(16);
    const uint8_t *pf = a->W + (size_t)(o + GEMM_PF_TILES * R) * a->w_row_bytes;
    for (int64_t b = 0; b < nb; b++) {
        const qk_gblk *xb = xg + b;
        __m512i ai[GEMM_ROWS] = {0}, am[GEMM_ROWS] = {0};
        gemm_prefetch(pf + b * R * blk_bytes, R * blk_bytes);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            const uint8_t *blk = qk45_block(w[r], b, q5), *qh = qk45_qh(blk, q5);
            const __m256i h = qh ? _mm256_loadu_si256((const __m256i *)qh) : _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(qk45_qs(blk, q5) + 32 * j));
                __m256i lo = _mm256_and_si256(q, lo4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo4);
                if (qh) {
                    lo = _mm256_mask_add_epi8(lo, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(1 << 2 * j))), lo, v16);
                    hi = _mm256_mask_add_epi8(hi, _mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(2 << 2 * j))), hi, v16);
                }
                _mm256_store_si256((__m256i *)(wb[r] + 64 * j), lo);
                _mm256_store_si256((__m256i *)(wb[r] + 64 * j + 32), hi);
            }
            _mm_store_si128((__m128i *)sm[r], q4k_scales(qk45_scales(blk, q5)));
            ai[r] = _mm512_setzero_si512();
            am[r] = _mm512_setzero_si512();
        }
        for (int j = 0; j < 8; j++) {
            __m512i s[GEMM_ROWS] = {0};
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
                const __m512i xk = _mm512_load_si512(xb->vals[8 * j + k]);
                _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
                    int32_t wd;
                    memcpy(&wd, wb[r] + 32 * j + 4 * k, 4);
                    s[r] = _mm512_dpbusd_epi32(s[r], _mm512_set1_epi32(wd), xk);
                }
            }
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
                ai[r] = _mm512_add_epi32(ai[r], _mm512_mullo_epi32(s[r], _mm512_set1_epi32(sm[r][j])));
        }
        _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) {
            const __m512i bp = _mm512_load_si512(xb->b32[i]);
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
                am[r] = _mm512_dpwssd_epi32(am[r], _mm512_set1_epi32(sm[r][8 + 2 * i] | (sm[r][9 + 2 * i] << 16)), bp);
        }
        const __m512 dx = _mm512_load_ps(xb->d);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[r]), _mm512_mul_ps(_mm512_set1_ps(qk45_d(qk45_block(w[r], b, q5), q5)), dx), acc[r]);
            acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(am[r]), _mm512_mul_ps(_mm512_set1_ps(qk45_dmin(qk45_block(w[r], b, q5), q5)), dx), acc[r]);
        }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);
}
static inline void gemm_q4_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_qk45_tile(a, g, o, R, false); }
static inline void gemm_q5_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_qk45_tile(a, g, o, R, true); }

static inline void gemm_q6_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const qk_gblk *xg = (const qk_gblk *)(a->xq + (size_t)g * a->xq_row_bytes);
    const kq_block_q6_K *w[GEMM_ROWS];
    __m512 acc[GEMM_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < GEMM_ROWS; r++) {
        w[r] = (const kq_block_q6_K *)(a->W + (size_t)(o + (r < R ? r : 0)) * a->w_row_bytes);
        acc[r] = _mm512_setzero_ps();
    }
    _Alignas(64) uint8_t wb[GEMM_ROWS][256];
    const uint8_t *pf = a->W + (size_t)(o + GEMM_PF_TILES * R) * a->w_row_bytes;
    for (int64_t b = 0; b < nb; b++) {
        const qk_gblk *xb = xg + b;
        __m512i ai[GEMM_ROWS] = {0};
        gemm_prefetch(pf + b * R * (int)sizeof(kq_block_q6_K), R * (int)sizeof(kq_block_q6_K));
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            __m512i A, B;
            q6k_half(w[r][b].ql, w[r][b].qh, &A, &B);
            _mm512_store_si512(wb[r], A);
            _mm512_store_si512(wb[r] + 64, B);
            q6k_half(w[r][b].ql + 64, w[r][b].qh + 32, &A, &B);
            _mm512_store_si512(wb[r] + 128, A);
            _mm512_store_si512(wb[r] + 192, B);
            ai[r] = _mm512_setzero_si512();
        }
        /* -32 * Σ scale * bsum16 per token */
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
            const __m512i bp = _mm512_load_si512(xb->b16[i]);
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
                const int s0 = w[r][b].scales[2 * i] * -32, s1 = w[r][b].scales[2 * i + 1] * -32;
                ai[r] = _mm512_dpwssd_epi32(ai[r], _mm512_set1_epi32((int32_t)((uint32_t)(uint16_t)s0 | ((uint32_t)(uint16_t)s1 << 16))), bp);
            }
        }
        for (int j = 0; j < 16; j++) {
            __m512i s[GEMM_ROWS] = {0};
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                const __m512i xk = _mm512_load_si512(xb->vals[4 * j + k]);
                _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
                    int32_t wd;
                    memcpy(&wd, wb[r] + 16 * j + 4 * k, 4);
                    s[r] = _mm512_dpbusd_epi32(s[r], _mm512_set1_epi32(wd), xk);
                }
            }
            _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
                ai[r] = _mm512_add_epi32(ai[r], _mm512_mullo_epi32(s[r], _mm512_set1_epi32(w[r][b].scales[j])));
        }
        const __m512 dx = _mm512_load_ps(xb->d);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[r]), _mm512_mul_ps(_mm512_set1_ps(_cvtsh_ss(w[r][b].d)), dx), acc[r]);
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);
}

static void gemm_q4_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q4_K_tile, GEMM_ROWS); }
static void gemm_q5_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q5_K_tile, GEMM_ROWS); }
static void gemm_q6_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q6_K_tile, 4); }

/* ---- Q2_K / Q3_K / IQ4_XS GEMM ----------------------------------------------------- */

/* One weight block of Q2_K / Q3_K / IQ4_XS as the GEMM below takes it: 256 unsigned codes
 * in element order, per 16-element sub-block j an int32 scale sc[j] and two int16
 * multipliers of the activations' bsum16 — c16[j] (added to the scaled sum, for code
 * offsets) and m16[j] (Q2_K's mins, weighted by dmin) — and the float scales d, dmin:
 *   block · x = d·dx·(Σ_j sc[j]·Σ code·q + Σ_j c16[j]·bsum16_j) − dmin·dx·Σ_j m16[j]·bsum16_j. */
typedef struct lowbit_blk {
    _Alignas(64) uint8_t codes[256];
    int32_t sc[16];
    int16_t c16[16], m16[16];
    float d, dmin;
} lowbit_blk;

typedef void (*unpack_fn)(const void *blk, lowbit_blk *u);
static inline void unpack_q2_K(const void *blk, lowbit_blk *u) {
    const kq_block_q2_K *w = blk;
    for (int j = 0; j < 4; j++) _mm512_store_si512(u->codes + 64 * j, q2k_codes(w->qs, j));
    for (int j = 0; j < 16; j++) {
        u->sc[j] = w->scales[j] & 0xF;
        u->c16[j] = 0;
        u->m16[j] = (int16_t)(w->scales[j] >> 4);
    }
    u->d = _cvtsh_ss(w->d);
    u->dmin = _cvtsh_ss(w->dmin);
}
static inline void unpack_q3_K(const void *blk, lowbit_blk *u) {
    const kq_block_q3_K *w = blk;
    const __m256i hm = _mm256_loadu_si256((const __m256i *)w->hmask), one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; j++) {
        const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 2 * j), one), 2);
        const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hm, 2 * j + 1), one), 2);
        _mm512_store_si512(u->codes + 64 * j, _mm512_or_si512(q2k_codes(w->qs, j), _mm512_inserti64x4(_mm512_castsi256_si512(h0), h1, 1)));
    }
    int8_t s[16];
    kq_q3k_scales(w->scales, s);
    for (int j = 0; j < 16; j++) { /* codes are stored + 4 */
        u->sc[j] = s[j];
        u->c16[j] = (int16_t)(-4 * s[j]);
        u->m16[j] = 0;
    }
    u->d = _cvtsh_ss(w->d);
    u->dmin = 0;
}
static inline void unpack_iq4_xs(const void *blk, lowbit_blk *u) {
    const kq_block_iq4_xs *w = blk;
    const __m256i lut = _mm256_broadcastsi128_si256(_mm_xor_si128(_mm_loadu_si128((const __m128i *)kq_iq4nl_values), _mm_set1_epi8((char)0x80)));
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (int s = 0; s < 8; s++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)(w->qs + 16 * s));
        const __m256i idx = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)), _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
        _mm256_store_si256((__m256i *)(u->codes + 32 * s), _mm256_shuffle_epi8(lut, idx));
    }
    for (int j = 0; j < 16; j++) { /* levels are stored + 128 */
        const int ls = kq_iq4xs_scale(w, j / 2);
        u->sc[j] = ls;
        u->c16[j] = (int16_t)(-128 * ls);
        u->m16[j] = 0;
    }
    u->d = _cvtsh_ss(w->d);
    u->dmin = 0;
}

/* Rows [o, o+R) of group g for a block type (blk_bytes a block) unpacked by unpack (as gemm_q6_K_tile, which
 * this mirrors: codes broadcast dword by dword against the 16 tokens, one vpmulld per
 * sub-block of 16, the bsum16 terms through vpdpwssd on the packed pairs). */
KQ_INLINE void gemm_lowbit_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, size_t blk_bytes, unpack_fn unpack) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const qk_gblk *xg = (const qk_gblk *)(a->xq + (size_t)g * a->xq_row_bytes);
    const uint8_t *w[GEMM_ROWS];
    __m512 acc[GEMM_ROWS];
    _Pragma("GCC unroll 8") for (int r = 0; r < GEMM_ROWS; r++) {
        w[r] = a->W + (size_t)(o + (r < R ? r : 0)) * a->w_row_bytes;
        acc[r] = _mm512_setzero_ps();
    }
    lowbit_blk u[4];
    const uint8_t *pf = a->W + (size_t)(o + GEMM_PF_TILES * R) * a->w_row_bytes;
    for (int64_t b = 0; b < nb; b++) {
        const qk_gblk *xb = xg + b;
        __m512i ai[4] = {0}, am[4] = {0};
        gemm_prefetch(pf + b * R * (int)blk_bytes, R * (int)blk_bytes);
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) unpack(w[r] + b * blk_bytes, &u[r]);
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
            const __m512i bp = _mm512_load_si512(xb->b16[i]);
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
                const uint32_t c = (uint16_t)u[r].c16[2 * i] | (uint32_t)(uint16_t)u[r].c16[2 * i + 1] << 16;
                const uint32_t m = (uint16_t)u[r].m16[2 * i] | (uint32_t)(uint16_t)u[r].m16[2 * i + 1] << 16;
                ai[r] = _mm512_dpwssd_epi32(ai[r], _mm512_set1_epi32((int32_t)c), bp);
                am[r] = _mm512_dpwssd_epi32(am[r], _mm512_set1_epi32((int32_t)m), bp);
            }
        }
        for (int j = 0; j < 16; j++) {
            __m512i s[4] = {0};
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                const __m512i xk = _mm512_load_si512(xb->vals[4 * j + k]);
                _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
                    int32_t wd;
                    memcpy(&wd, u[r].codes + 16 * j + 4 * k, 4);
                    s[r] = _mm512_dpbusd_epi32(s[r], _mm512_set1_epi32(wd), xk);
                }
            }
            _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
                ai[r] = _mm512_add_epi32(ai[r], _mm512_mullo_epi32(s[r], _mm512_set1_epi32(u[r].sc[j])));
        }
        const __m512 dx = _mm512_load_ps(xb->d);
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[r]), _mm512_mul_ps(_mm512_set1_ps(u[r].d), dx), acc[r]);
            acc[r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(am[r]), _mm512_mul_ps(_mm512_set1_ps(u[r].dmin), dx), acc[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) store_group(a, g, o + r, acc[r]);
}
static inline void gemm_q2_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_lowbit_tile(a, g, o, R, sizeof(kq_block_q2_K), unpack_q2_K); }
static inline void gemm_q3_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_lowbit_tile(a, g, o, R, sizeof(kq_block_q3_K), unpack_q3_K); }
static inline void gemm_iq4_xs_tile(const kq_mm_args *a, int64_t g, int64_t o, int R) { gemm_lowbit_tile(a, g, o, R, sizeof(kq_block_iq4_xs), unpack_iq4_xs); }
static void gemm_q2_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q2_K_tile, 4); }
static void gemm_q3_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_q3_K_tile, 4); }
static void gemm_iq4_xs(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) { gemm_rows(a, g, o0, o1, gemm_iq4_xs_tile, 4); }

/* ---- F32 / F16 / BF16 weights ----------------------------------------------------- */

/* 16 weights from element i of a row as floats (mask for the tail). */
typedef __m512 (*wload_fn)(const void *w, int64_t i, __mmask16 m);
static inline __m512 wload_f32(const void *w, int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, (const float *)w + i); }
static inline __m512 wload_f16(const void *w, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const kq_f16 *)w + i));
}
static inline __m512 wload_bf16(const void *w, int64_t i, __mmask16 m) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const kq_bf16 *)w + i)), 16));
}

/* Activations rounded to the weight's precision, kept as floats. */
static void prep_f16(const float *x, void *dst, int64_t n) {
    float *y = dst;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm512_mask_storeu_ps(y + i, m, _mm512_cvtph_ps(h));
    }
}
static void prep_bf16(const float *x, void *dst, int64_t n) {
    float *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = kq_bf16_to_f32(kq_f32_to_bf16(x[i]));
}

#define FT_R 4
#define FT_T 4
/* Y for rows [o, o+R) and tokens [t0, t0+T): W rows converted once per 16 columns. */
typedef void (*float_tile_fn)(const kq_mm_args *a, int64_t o, int64_t t0, int R, int T);
KQ_INLINE void float_tile(const kq_mm_args *a, int64_t o, int64_t t0, int R, int T, wload_fn wload) {
    const int64_t n = a->n_in;
    const uint8_t *w[FT_R];
    const float *x[FT_T];
    __m512 acc[FT_R][FT_T];
    _Pragma("GCC unroll 8") for (int r = 0; r < FT_R; r++) {
        w[r] = a->W + (size_t)(o + (r < R ? r : 0)) * a->w_row_bytes;
        _Pragma("GCC unroll 8") for (int t = 0; t < FT_T; t++) acc[r][t] = _mm512_setzero_ps();
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < FT_T; t++)
        x[t] = (const float *)(a->xq + (size_t)(t0 + (t < T ? t : 0)) * a->xq_row_bytes);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 xv[FT_T];
        _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) xv[t] = _mm512_maskz_loadu_ps(m, x[t] + i);
        _Pragma("GCC unroll 8") for (int r = 0; r < R; r++) {
            const __m512 wv = wload(w[r], i, m);
            _Pragma("GCC unroll 8") for (int t = 0; t < T; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8") for (int t = 0; t < T; t++)
            a->Y[(t0 + t) * a->n_out + o + r] = _mm512_reduce_add_ps(acc[r][t]);
}
/* Rows [o0, o1) for all tokens: FT_R x FT_T tiles, the edges as FT_R x 1 or 1 x 1. */
KQ_INLINE void float_rows(const kq_mm_args *a, int64_t o0, int64_t o1, float_tile_fn tile) {
    /* token blocks whose activations stay in L2 (~512 KiB) while all rows pass */
    int64_t tb = ((int64_t)(512 << 10) / (a->n_in * 4)) & ~(int64_t)(FT_T - 1);
    if (tb < FT_T) tb = FT_T;
    for (int64_t b0 = 0; b0 < a->n_tok; b0 += tb)
    for (int64_t o = o0; o < o1; o += FT_R) {
        const int R = o1 - o >= FT_R ? FT_R : (int)(o1 - o);
        const int64_t b1 = b0 + tb < a->n_tok ? b0 + tb : a->n_tok;
        for (int64_t t0 = b0; t0 < b1; t0 += FT_T) {
            const int T = b1 - t0 >= FT_T ? FT_T : (int)(b1 - t0);
            if (R == FT_R && T == FT_T) tile(a, o, t0, FT_R, FT_T);
            else if (R == FT_R && T == 1) tile(a, o, t0, FT_R, 1);
            else {
                for (int r = 0; r < R; r++)
                    for (int t = 0; t < T; t++) tile(a, o + r, t0 + t, 1, 1);
            }
        }
    }
}
static inline void rows_f32_tile(const kq_mm_args *a, int64_t o, int64_t t0, int R, int T) { float_tile(a, o, t0, R, T, wload_f32); }
static inline void rows_f16_tile(const kq_mm_args *a, int64_t o, int64_t t0, int R, int T) { float_tile(a, o, t0, R, T, wload_f16); }
static inline void rows_bf16_tile(const kq_mm_args *a, int64_t o, int64_t t0, int R, int T) { float_tile(a, o, t0, R, T, wload_bf16); }
static void rows_f32(const kq_mm_args *a, int64_t o0, int64_t o1) { float_rows(a, o0, o1, rows_f32_tile); }
static void rows_f16(const kq_mm_args *a, int64_t o0, int64_t o1) { float_rows(a, o0, o1, rows_f16_tile); }
static void rows_bf16(const kq_mm_args *a, int64_t o0, int64_t o1) { float_rows(a, o0, o1, rows_bf16_tile); }

/* ---- vector ops ------------------------------------------------------------------ */

static inline __mmask16 tail_mask(int64_t left) { return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1); }

/* e^x, about 1 ulp: 2^(x log2 e) split into an integer power (applied with scalef) and a
 * degree-6 polynomial on [-ln2/2, ln2/2]. -inf -> 0, large x -> inf. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.8f)), _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

static float v_dot_f32(const float *a, const float *b, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
static float v_dot_f16(const kq_f16 *k, const float *q, int64_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i))), _mm512_loadu_ps(q + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + i + 16))), _mm512_loadu_ps(q + i + 16), s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        s0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, k + i)), _mm512_maskz_loadu_ps(m, q + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
static void v_axpy_f32(float *y, float a, const float *v, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, v + i), _mm512_maskz_loadu_ps(m, y + i)));
    }
}
static void v_axpy_f16(float *y, float a, const kq_f16 *v, int64_t n) {
    const __m512 va = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 vv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + i));
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, vv, _mm512_maskz_loadu_ps(m, y + i)));
    }
}
static void v_store_f16(kq_f16 *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}
static void v_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
        s = _mm512_fmadd_ps(v, v, s);
    }
    const __m512 scale = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(s) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale), _mm512_maskz_loadu_ps(m, w + i)));
    }
}
static void v_softmax(float *x, int64_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(n - i), x + i));
    const __m512 vmax = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 s = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax));
        _mm512_mask_storeu_ps(x + i, m, e);
        s = _mm512_add_ps(s, _mm512_maskz_mov_ps(m, e));
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(s));
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}
static void v_silu_mul(float *out, const float *gate, const float *up, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
        const __m512 sg = _mm512_div_ps(g, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(sg, _mm512_maskz_loadu_ps(m, up + i)));
    }
}
static void v_add(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(out + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

/* gemm_min_tok: from this many tokens on, one padded 16-token group beats the per-token
 * GEMV (the 16-lane group costs the same for 4 tokens as for 16). Q8_0: 4, Q4_0: 6, measured
 * on whole qwen2.5-0.5b decode steps (weights streaming from memory; Q8_0 at 4 tokens
 * 23.5 -> 21 ms, at 8 44 -> 24 ms); Q5_0 / Q4_K / Q6_K checked the same way on the Q4_K_M
 * file; Q5_1 / Q5_K were measured on a cached 4864x896 matrix alone. */
void kq_ops_avx512(kq_ops *ops) {
    ops->name = "avx512";
    ops->mm[GGUF_DTYPE_F32] = (kq_mm_impl){.rows = rows_f32};
    ops->mm[GGUF_DTYPE_F16] = (kq_mm_impl){.prep = prep_f16, .rows = rows_f16};
    ops->mm[GGUF_DTYPE_BF16] = (kq_mm_impl){.prep = prep_bf16, .rows = rows_bf16};
    ops->dot_f32 = v_dot_f32;
    ops->dot_f16 = v_dot_f16;
    ops->axpy_f32 = v_axpy_f32;
    ops->axpy_f16 = v_axpy_f16;
    ops->store_f16 = v_store_f16;
    ops->rmsnorm = v_rmsnorm;
    ops->softmax = v_softmax;
    ops->silu_mul = v_silu_mul;
    ops->add = v_add;
    ops->mm[GGUF_DTYPE_Q8_0] = (kq_mm_impl){.prep = prep_q8_0, .prep_bytes = q80_gemv_bytes, .rows = rows_q8_0,
                                      .pack = pack_q8_0, .gemm = gemm_q8_0, .pack_bytes = q80_pack_bytes, .pack_elems = KQ_QK8_0,
                                      .gemm_min_tok = 4};
    ops->mm[GGUF_DTYPE_Q4_0] = (kq_mm_impl){.prep = prep_q4_0, .prep_bytes = q40_gemv_bytes, .rows = rows_q4_0,
                                      .pack = pack_q4_0, .gemm = gemm_q4_0, .pack_bytes = q80_pack_bytes, .pack_elems = KQ_QK8_0,
                                      .gemm_min_tok = 6};
    ops->mm[GGUF_DTYPE_Q4_K] = (kq_mm_impl){.prep = prep_qk, .prep_bytes = qk_gemv_bytes, .rows = rows_q4_K,
                                      .pack = pack_qk, .gemm = gemm_q4_K, .pack_bytes = qk_pack_bytes, .pack_elems = KQ_QK_K,
                                      .gemm_min_tok = 7};
    ops->mm[GGUF_DTYPE_Q5_0] = (kq_mm_impl){.prep = prep_q5_0, .prep_bytes = q40_gemv_bytes, .rows = rows_q5_0,
                                      .pack = pack_q5_0, .gemm = gemm_q5_0, .pack_bytes = q80_pack_bytes, .pack_elems = KQ_QK8_0,
                                      .gemm_min_tok = 6};
    ops->mm[GGUF_DTYPE_Q5_1] = (kq_mm_impl){.prep = prep_q5_1, .prep_bytes = q40_gemv_bytes, .rows = rows_q5_1,
                                      .pack = pack_q5_1, .gemm = gemm_q5_1, .pack_bytes = q80_pack_bytes, .pack_elems = KQ_QK8_0,
                                      .gemm_min_tok = 6};
    ops->mm[GGUF_DTYPE_Q5_K] = (kq_mm_impl){.prep = prep_qk, .prep_bytes = qk_gemv_bytes, .rows = rows_q5_K,
                                      .pack = pack_qk, .gemm = gemm_q5_K, .pack_bytes = qk_pack_bytes, .pack_elems = KQ_QK_K,
                                      .gemm_min_tok = 7};
    ops->mm[GGUF_DTYPE_Q6_K] = (kq_mm_impl){.prep = prep_qk, .prep_bytes = qk_gemv_bytes, .rows = rows_q6_K,
                                      .pack = pack_qk, .gemm = gemm_q6_K, .pack_bytes = qk_pack_bytes, .pack_elems = KQ_QK_K,
                                      .gemm_min_tok = 8};
    /* IQ4_NL's 16-token GEMM is Q4_0's, Q2_K / Q3_K / IQ4_XS's mirror Q6_K's; their
     * thresholds are taken from Q4_0 / Q6_K, not measured */
    ops->mm[GGUF_DTYPE_IQ4_NL] = (kq_mm_impl){.prep = prep_iq4_nl, .prep_bytes = q40_gemv_bytes, .rows = rows_iq4_nl,
                                        .pack = pack_q8_0, .gemm = gemm_iq4_nl, .pack_bytes = q80_pack_bytes,
                                        .pack_elems = KQ_QK8_0, .gemm_min_tok = 6};
    ops->mm[GGUF_DTYPE_Q2_K] = (kq_mm_impl){.prep = prep_qk, .prep_bytes = qk_gemv_bytes, .rows = rows_q2_K, .pack = pack_qk,
                                      .gemm = gemm_q2_K, .pack_bytes = qk_pack_bytes, .pack_elems = KQ_QK_K, .gemm_min_tok = 8};
    ops->mm[GGUF_DTYPE_Q3_K] = (kq_mm_impl){.prep = prep_qk, .prep_bytes = qk_gemv_bytes, .rows = rows_q3_K, .pack = pack_qk,
                                      .gemm = gemm_q3_K, .pack_bytes = qk_pack_bytes, .pack_elems = KQ_QK_K, .gemm_min_tok = 8};
    ops->mm[GGUF_DTYPE_IQ4_XS] = (kq_mm_impl){.prep = prep_qk, .prep_bytes = qk_gemv_bytes, .rows = rows_iq4_xs, .pack = pack_qk,
                                      .gemm = gemm_iq4_xs, .pack_bytes = qk_pack_bytes, .pack_elems = KQ_QK_K, .gemm_min_tok = 8};
}
#endif
