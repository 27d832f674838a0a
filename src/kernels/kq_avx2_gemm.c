/* kq_avx2_gemm.c — AVX2 batched matmul (prefill, multi-sequence decode) for Q8_0, Q4_0,
 * Q4_K and Q6_K weights: the gemm path of kq_internal.h (kq.c packs the activations of 16
 * tokens at a time, then runs these tiles over (16-token group, output rows)).
 *
 * Packed layouts (one 16-token group; ymm = 8 token lanes, so every value set is two
 * vectors: tokens 0-7, then 8-15):
 *  - Q80 (Q8_0 / Q4_0), per block of 32 values, 640 bytes:
 *      vals int8 [8 dwords][16 tokens][4] | start int32 [16] | scale float [16]
 *    start = -8·Σx for Q4_0 (its codes are taken unsigned), 0 for Q8_0.
 *  - QK (Q4_K / Q6_K), per block of 256 values, 4928 bytes:
 *      vals int8 [64 dwords][16 tokens][4] | sums16 int16 pairs [8][16 tokens][2]
 *      | sums32 int16 pairs [4][16 tokens][2] | scale float [16]
 *    sums16 pair i = (Σ of values 32i..32i+15, Σ of 32i+16..32i+31); sums32 pair p =
 *    (Σ of sub-block 2p, Σ of sub-block 2p+1) with sub-blocks of 32.
 * Activations are quantized as the reference quantizers do (kq_avx2_quantize_*, bit-exact
 * with kq_quantize_q8_0_act / kq_quantize_q8_K), so the integer sums are the reference's.
 *
 * A weight dword (4 values of one row) is broadcast and multiplied with the same 4 values
 * of 8 tokens by one vpmaddubsw. Unsigned 4-bit codes × signed activations stay within
 * 8 × 2·15·127 < 2^15, so the 16-bit products of a whole sub-block of 32 are summed in
 * 16 bits before one vpmaddwd applies the sub-block scale (or widens). Q8_0 is signed ×
 * signed: the sign moves onto the weight (vpsignb) and every product pair is widened. */
#include "kernels/kq_avx2.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define Q80_GBLK 640
#define QK_GBLK 4928
#define QK_SUMS16 4096
#define QK_SUMS32 4608
#define QK_SCALE 4864

size_t kq_avx2_q80_pack_bytes(int64_t n) { return (size_t)(n / KQ_QK8_0) * Q80_GBLK; }
size_t kq_avx2_qk_pack_bytes(int64_t n) { return (size_t)(n / KQ_QK_K) * QK_GBLK; }

/* Blocks [b0, b1) of one group in the Q80 layout; lanes t >= ntok zero. off: the code
 * offset removed through start (8 for Q4_0, 0 for Q8_0). */
static void q80_pack(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst, int off) {
    for (int64_t b = b0; b < b1; b++) {
        uint8_t *blk = (uint8_t *)dst + b * Q80_GBLK;
        if (ntok < KQ_GEMM_TOK) memset(blk, 0, Q80_GBLK);
        for (int64_t t = 0; t < ntok; t++) {
            kq_block_q8_0 q;
            kq_avx2_quantize_q8_0(X + t * ldx + b * KQ_QK8_0, &q, KQ_QK8_0);
            int s = 0;
            for (int i = 0; i < KQ_QK8_0; i++) s += q.qs[i];
            for (int k = 0; k < 8; k++) memcpy(blk + k * 64 + t * 4, q.qs + 4 * k, 4);
            ((int32_t *)(blk + 512))[t] = -off * s;
            ((float *)(blk + 576))[t] = kq_f16_to_f32(q.d);
        }
    }
}
void kq_avx2_pack_q8_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) { q80_pack(X, ldx, ntok, b0, b1, dst, 0); }
void kq_avx2_pack_q4_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) { q80_pack(X, ldx, ntok, b0, b1, dst, 8); }

/* Blocks [b0, b1) of one group in the QK layout. */
void kq_avx2_pack_qk(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst) {
    for (int64_t b = b0; b < b1; b++) {
        uint8_t *blk = (uint8_t *)dst + b * QK_GBLK;
        if (ntok < KQ_GEMM_TOK) memset(blk, 0, QK_GBLK);
        for (int64_t t = 0; t < ntok; t++) {
            kq_block_q8_K q;
            kq_avx2_quantize_q8_K(X + t * ldx + b * KQ_QK_K, &q, KQ_QK_K);
            for (int k = 0; k < 64; k++) memcpy(blk + k * 64 + t * 4, q.qs + 4 * k, 4);
            int16_t *s16 = (int16_t *)(blk + QK_SUMS16), *s32 = (int16_t *)(blk + QK_SUMS32);
            for (int i = 0; i < 8; i++) {
                s16[(i * KQ_GEMM_TOK + t) * 2] = q.bsums[2 * i];
                s16[(i * KQ_GEMM_TOK + t) * 2 + 1] = q.bsums[2 * i + 1];
            }
            for (int p = 0; p < 4; p++) {
                s32[(p * KQ_GEMM_TOK + t) * 2] = (int16_t)(q.bsums[4 * p] + q.bsums[4 * p + 1]);
                s32[(p * KQ_GEMM_TOK + t) * 2 + 1] = (int16_t)(q.bsums[4 * p + 2] + q.bsums[4 * p + 3]);
            }
            ((float *)(blk + QK_SCALE))[t] = q.d;
        }
    }
}

/* Y of the group's tokens for row o. */
static inline void store_group(const kq_mm_args *a, int64_t g, int64_t o, const float *tmp) {
    const int64_t t0 = g * KQ_GEMM_TOK, nt = a->n_tok - t0 < KQ_GEMM_TOK ? a->n_tok - t0 : KQ_GEMM_TOK;
    for (int64_t t = 0; t < nt; t++) a->Y[(t0 + t) * a->n_out + o] = tmp[t];
}

static inline __m256i bcast32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}
static inline __m256i ld(const uint8_t *p) { return _mm256_load_si256((const __m256i *)p); }

/* Rows [o0, o1) of group g. The packed activations of a whole row (up to 160 KiB for
 * n_in = 8192) do not stay in L1 while the rows pass, so the blocks are taken in chunks of
 * CHUNK blocks (~10-15 KiB of packed activations) and every row of a strip of GEMM_STRIP
 * rows runs over one chunk before the next; the row accumulators wait in acc between
 * chunks (the same float operations in the same order as one pass). A tile of R rows
 * covers blocks [b0, b1) from and back to acc (rows apart by 16 floats). */
#define GEMM_STRIP 32
#define DEF_GEMM_LOOP(NAME, RMAIN, CHUNK)                                                        \
    void kq_avx2_##NAME(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1) {                \
        const int64_t nb = a->n_in / NAME##_elems;                                               \
        float acc[GEMM_STRIP][KQ_GEMM_TOK] __attribute__((aligned(32)));                         \
        for (int64_t s0 = o0; s0 < o1; s0 += GEMM_STRIP) {                                       \
            const int64_t s1 = s0 + GEMM_STRIP < o1 ? s0 + GEMM_STRIP : o1;                      \
            memset(acc, 0, sizeof acc);                                                          \
            for (int64_t b0 = 0; b0 < nb; b0 += CHUNK) {                                         \
                const int64_t b1 = b0 + CHUNK < nb ? b0 + CHUNK : nb;                            \
                int64_t o = s0;                                                                  \
                for (; o + RMAIN <= s1; o += RMAIN) NAME##_tile(a, g, o, RMAIN, b0, b1, &acc[o - s0]); \
                for (; o < s1; o++) NAME##_tile(a, g, o, 1, b0, b1, &acc[o - s0]);              \
            }                                                                                    \
            for (int64_t o = s0; o < s1; o++) store_group(a, g, o, acc[o - s0]);                 \
        }                                                                                        \
    }
#define GEMM_R 2

/* ---- Q4_0 ------------------------------------------------------------------------ */

static inline void gemm_q4_0_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, int64_t b0, int64_t b1, float (*accp)[KQ_GEMM_TOK]) {
    const uint8_t *xg = a->xq + (size_t)g * a->xq_row_bytes;
    const kq_block_q4_0 *w[GEMM_R];
    __m256 acc[GEMM_R][2];
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q4_0 *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r][0] = _mm256_load_ps(accp[r]);
        acc[r][1] = _mm256_load_ps(accp[r] + 8);
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (int64_t b = b0; b < b1; b++) {
        const uint8_t *xb = xg + b * Q80_GBLK;
        __m256i s[GEMM_R][2];
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
            const __m256i x0 = ld(xb + k * 64), x1 = ld(xb + k * 64 + 32), x4 = ld(xb + k * 64 + 256), x5 = ld(xb + k * 64 + 288);
            _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
                const __m256i t = bcast32(w[r][b].qs + 4 * k);
                const __m256i lo = _mm256_and_si256(t, m4), hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);
                s[r][0] = _mm256_add_epi16(s[r][0], _mm256_add_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_maddubs_epi16(hi, x4)));
                s[r][1] = _mm256_add_epi16(s[r][1], _mm256_add_epi16(_mm256_maddubs_epi16(lo, x1), _mm256_maddubs_epi16(hi, x5)));
            }
        }
        const __m256 d0 = _mm256_load_ps((const float *)(xb + 576)), d1 = _mm256_load_ps((const float *)(xb + 608));
        const __m256i st0 = ld(xb + 512), st1 = ld(xb + 544);
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)w[r][b].d));
            acc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(s[r][0], ones), st0)), _mm256_mul_ps(dw, d0), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_madd_epi16(s[r][1], ones), st1)), _mm256_mul_ps(dw, d1), acc[r][1]);
        }
    }
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
        _mm256_store_ps(accp[r], acc[r][0]);
        _mm256_store_ps(accp[r] + 8, acc[r][1]);
    }
}
#define gemm_q4_0_elems KQ_QK4_0
DEF_GEMM_LOOP(gemm_q4_0, GEMM_R, 16)

/* ---- Q8_0 ------------------------------------------------------------------------ */

static inline void gemm_q8_0_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, int64_t b0, int64_t b1, float (*accp)[KQ_GEMM_TOK]) {
    const uint8_t *xg = a->xq + (size_t)g * a->xq_row_bytes;
    const kq_block_q8_0 *w[GEMM_R];
    __m256 acc[GEMM_R][2];
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q8_0 *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r][0] = _mm256_load_ps(accp[r]);
        acc[r][1] = _mm256_load_ps(accp[r] + 8);
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = b0; b < b1; b++) {
        const uint8_t *xb = xg + b * Q80_GBLK;
        __m256i s[GEMM_R][2];
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) s[r][0] = s[r][1] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
            const __m256i x0 = ld(xb + k * 64), x1 = ld(xb + k * 64 + 32);
            const __m256i a0 = _mm256_sign_epi8(x0, x0), a1 = _mm256_sign_epi8(x1, x1);
            _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
                const __m256i t = bcast32((const uint8_t *)w[r][b].qs + 4 * k);
                s[r][0] = _mm256_add_epi32(s[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(a0, _mm256_sign_epi8(t, x0)), ones));
                s[r][1] = _mm256_add_epi32(s[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(a1, _mm256_sign_epi8(t, x1)), ones));
            }
        }
        const __m256 d0 = _mm256_load_ps((const float *)(xb + 576)), d1 = _mm256_load_ps((const float *)(xb + 608));
        _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)w[r][b].d));
            acc[r][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][0]), _mm256_mul_ps(dw, d0), acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r][1]), _mm256_mul_ps(dw, d1), acc[r][1]);
        }
    }
    _Pragma("GCC unroll 2") for (int r = 0; r < R; r++) {
        _mm256_store_ps(accp[r], acc[r][0]);
        _mm256_store_ps(accp[r] + 8, acc[r][1]);
    }
}
#define gemm_q8_0_elems KQ_QK8_0
DEF_GEMM_LOOP(gemm_q8_0, GEMM_R, 16)

/* ---- Q4_K ------------------------------------------------------------------------ */

/* One row: per pair i of sub-blocks (2i: low nibbles of qs[32i..], 2i+1: high nibbles),
 * 8 broadcast dwords, products summed in 16 bits, then scaled by vpmaddwd; the mins term
 * Σ min·Σx by vpmaddwd of (min, min) pairs with the sums32 pairs. */
static inline void gemm_q4_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, int64_t b0, int64_t b1, float (*accp)[KQ_GEMM_TOK]) {
    (void)R;
    const uint8_t *xg = a->xq + (size_t)g * a->xq_row_bytes;
    const kq_block_q4_K *w = (const kq_block_q4_K *)(a->W + (size_t)o * a->w_row_bytes);
    __m256 acc0 = _mm256_load_ps(accp[0]), acc1 = _mm256_load_ps(accp[0] + 8);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t b = b0; b < b1; b++) {
        const uint8_t *xb = xg + b * QK_GBLK;
        uint8_t sm[16];
        kq_q4k_unpack(w[b].scales, sm);
        __m256i is0 = _mm256_setzero_si256(), is1 = _mm256_setzero_si256();
        for (int i = 0; i < 4; i++) {
            __m256i l0 = _mm256_setzero_si256(), l1 = l0, h0 = l0, h1 = l0;
            const uint8_t *xl = xb + (16 * i) * 64, *xh = xb + (16 * i + 8) * 64;
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
                const __m256i t = bcast32(w[b].qs + 32 * i + 4 * k);
                const __m256i lo = _mm256_and_si256(t, m4), hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);
                l0 = _mm256_add_epi16(l0, _mm256_maddubs_epi16(lo, ld(xl + k * 64)));
                l1 = _mm256_add_epi16(l1, _mm256_maddubs_epi16(lo, ld(xl + k * 64 + 32)));
                h0 = _mm256_add_epi16(h0, _mm256_maddubs_epi16(hi, ld(xh + k * 64)));
                h1 = _mm256_add_epi16(h1, _mm256_maddubs_epi16(hi, ld(xh + k * 64 + 32)));
            }
            const __m256i sl = _mm256_set1_epi16(sm[2 * i]), sh = _mm256_set1_epi16(sm[2 * i + 1]);
            is0 = _mm256_add_epi32(is0, _mm256_add_epi32(_mm256_madd_epi16(l0, sl), _mm256_madd_epi16(h0, sh)));
            is1 = _mm256_add_epi32(is1, _mm256_add_epi32(_mm256_madd_epi16(l1, sl), _mm256_madd_epi16(h1, sh)));
        }
        __m256i m0 = _mm256_setzero_si256(), m1 = m0;
        _Pragma("GCC unroll 4") for (int p = 0; p < 4; p++) {
            const __m256i mm = _mm256_set1_epi32((int)sm[8 + 2 * p] | (int)sm[8 + 2 * p + 1] << 16);
            m0 = _mm256_add_epi32(m0, _mm256_madd_epi16(mm, ld(xb + QK_SUMS32 + p * 64)));
            m1 = _mm256_add_epi32(m1, _mm256_madd_epi16(mm, ld(xb + QK_SUMS32 + p * 64 + 32)));
        }
        const __m256 dx0 = _mm256_load_ps((const float *)(xb + QK_SCALE)), dx1 = _mm256_load_ps((const float *)(xb + QK_SCALE + 32));
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d)), dm = _mm256_set1_ps(_cvtsh_ss(w[b].dmin));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is0), _mm256_mul_ps(d, dx0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_mul_ps(d, dx1), acc1);
        acc0 = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m0), _mm256_mul_ps(dm, dx0), acc0);
        acc1 = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(m1), _mm256_mul_ps(dm, dx1), acc1);
    }
    _mm256_store_ps(accp[0], acc0);
    _mm256_store_ps(accp[0] + 8, acc1);
}
#define gemm_q4_K_elems KQ_QK_K
DEF_GEMM_LOOP(gemm_q4_K, 1, 3)

/* ---- Q6_K ------------------------------------------------------------------------ */

/* One row: each block's 6-bit codes (unsigned, 0..63) are unpacked with full-width ops
 * into a buffer in value order and broadcast from there a dword at a time; the products
 * of two dwords are summed in 16 bits (2 × 2·63·127 < 2^15), each sub-block of 16 scaled
 * by vpmaddwd; the -32 offset is removed as 32·Σ scale·Σx through the sums16 pairs. */
static inline void gemm_q6_K_tile(const kq_mm_args *a, int64_t g, int64_t o, int R, int64_t b0, int64_t b1, float (*accp)[KQ_GEMM_TOK]) {
    (void)R;
    const uint8_t *xg = a->xq + (size_t)g * a->xq_row_bytes;
    const kq_block_q6_K *w = (const kq_block_q6_K *)(a->W + (size_t)o * a->w_row_bytes);
    __m256 acc0 = _mm256_load_ps(accp[0]), acc1 = _mm256_load_ps(accp[0] + 8);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    uint8_t q[KQ_QK_K] __attribute__((aligned(32)));
    int16_t sc[16] __attribute__((aligned(32)));
    for (int64_t b = b0; b < b1; b++) {
        const uint8_t *xb = xg + b * QK_GBLK;
        const kq_block_q6_K *wb = &w[b];
        for (int h = 0; h < 2; h++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
            __m256i *qv = (__m256i *)(q + 128 * h);
            _mm256_store_si256(qv, _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4)));
            _mm256_store_si256(qv + 1, _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4)));
            _mm256_store_si256(qv + 2, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4)));
            _mm256_store_si256(qv + 3, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                                       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4)));
        }
        _mm256_store_si256((__m256i *)sc, _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales)));
        /* the dwords are read back from memory: kept as loads, not turned into shuffles */
        __asm__ volatile("" ::: "memory");
        __m256i is0 = _mm256_setzero_si256(), is1 = is0, c0 = is0, c1 = is0;
        for (int j = 0; j < 16; j++) {
            __m256i p0 = _mm256_setzero_si256(), p1 = p0, r0, r1;
            const uint8_t *xj = xb + 4 * j * 64;
            const __m256i t0 = bcast32(q + 16 * j), t1 = bcast32(q + 16 * j + 4), t2 = bcast32(q + 16 * j + 8), t3 = bcast32(q + 16 * j + 12);
            p0 = _mm256_add_epi16(_mm256_maddubs_epi16(t0, ld(xj)), _mm256_maddubs_epi16(t1, ld(xj + 64)));
            p1 = _mm256_add_epi16(_mm256_maddubs_epi16(t0, ld(xj + 32)), _mm256_maddubs_epi16(t1, ld(xj + 96)));
            r0 = _mm256_add_epi16(_mm256_maddubs_epi16(t2, ld(xj + 128)), _mm256_maddubs_epi16(t3, ld(xj + 192)));
            r1 = _mm256_add_epi16(_mm256_maddubs_epi16(t2, ld(xj + 160)), _mm256_maddubs_epi16(t3, ld(xj + 224)));
            const __m256i sj = _mm256_set1_epi16(sc[j]);
            is0 = _mm256_add_epi32(is0, _mm256_add_epi32(_mm256_madd_epi16(p0, sj), _mm256_madd_epi16(r0, sj)));
            is1 = _mm256_add_epi32(is1, _mm256_add_epi32(_mm256_madd_epi16(p1, sj), _mm256_madd_epi16(r1, sj)));
        }
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) {
            const __m256i sp = bcast32((const uint8_t *)(sc + 2 * i));
            c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(sp, ld(xb + QK_SUMS16 + i * 64)));
            c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(sp, ld(xb + QK_SUMS16 + i * 64 + 32)));
        }
        is0 = _mm256_sub_epi32(is0, _mm256_slli_epi32(c0, 5));
        is1 = _mm256_sub_epi32(is1, _mm256_slli_epi32(c1, 5));
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(wb->d));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is0), _mm256_mul_ps(d, _mm256_load_ps((const float *)(xb + QK_SCALE))), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is1), _mm256_mul_ps(d, _mm256_load_ps((const float *)(xb + QK_SCALE + 32))), acc1);
    }
    _mm256_store_ps(accp[0], acc0);
    _mm256_store_ps(accp[0] + 8, acc1);
}
#define gemm_q6_K_elems KQ_QK_K
DEF_GEMM_LOOP(gemm_q6_K, 1, 3)
#endif
