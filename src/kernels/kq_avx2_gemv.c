/* kq_avx2_gemv.c — AVX2 single-token matmul (decode GEMV, n_tok = 1) for the weight types
 * of the common model files: Q8_0, Q4_0, Q4_K, Q6_K, and the AVX2 activation quantizers
 * (Q8_0 and Q8_K blocks, bit-exact with the reference ones). kq_avx2.c's row kernels call these
 * when a matmul has one token; the activations are in the standard formats (Q8_0 blocks,
 * Q8_K blocks) that kq_avx2.c's prep writes.
 *
 * Decode reads every weight byte once, so these kernels must keep up with memory: 4 rows
 * per pass share each activation load and its sign/abs work and give the core 4
 * independent accumulation chains, and each weight block is handled with full-width
 * integer dot products and vectorised scale / correction terms (no scalar loops).
 * Q8_0 and Q4_0 give bit-identical results to the multi-token row tile (same integer
 * lanes, same float operations per row), so a sequence's logits do not depend on whether it
 * was decoded alone or in a small batch. Q4_K / Q6_K compute the same integer sums with a
 * different grouping of the float correction terms (close to, not bit-equal with, the row
 * tile). */
#include "kernels/kq_avx2.h"
#if defined(__x86_64__)
#include <immintrin.h>

#define GR 4 /* rows per pass */

static inline float hsum8(__m256 v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
static inline float hsum4(__m128 h) {
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* dw·dx in all 8 lanes from an F16 dw in memory (the product of two halves is exact, so
 * this equals the scalar product the row tile broadcasts). */
static inline __m256 scale8(const kq_f16 *dw, __m256 dx) {
    return _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)*dw)), dx);
}

/* Rows [o0, o1) in passes of GR rows, the last 1..GR-1 rows one at a time. Rows under
 * 4 KiB go one at a time: GR interleaved streams of short rows read memory more slowly
 * than one sequential stream (mbench, llama-3.2-1b Q4_K_M decode at 2 threads). A row's
 * result does not depend on the pass it is in. */
#define DEF_GEMV_LOOP(NAME)                                                   \
    void kq_avx2_##NAME(const kq_mm_args *a, int64_t o0, int64_t o1) {      \
        int64_t o = o0;                                                       \
        if (a->w_row_bytes >= 4096)                                           \
            for (; o + GR <= o1; o += GR) NAME##_pass(a, o, GR);              \
        for (; o < o1; o++) NAME##_pass(a, o, 1);                             \
    }

/* ---- activation quantizers (bit-exact with kq_quantize_q8_0_act / kq_quantize_q8_K) -- */

/* Round-to-nearest-even of x·id as the references do (nearbyintf, nearest_int: the same
 * for the finite values below 2^22 that reach them); blocks holding NaN or infinity go
 * to the reference, whose handling of them (saturation, NaN -> 0) is kept as it is. */
static inline bool finite8(__m256 v) { return _mm256_movemask_ps(_mm256_cmp_ps(_mm256_sub_ps(v, v), _mm256_setzero_ps(), _CMP_NEQ_UQ)) == 0; }
static inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
static inline float hmax8(__m256 v) {
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
/* 32 floats · id rounded, as 32 int8 (|values| <= 127 here, so packs never saturate). */
static inline __m256i round32(const float *x, __m256 id) {
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    /* the packs work per 128-bit lane: dwords come out as 0 2 4 6 1 3 5 7 */
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void kq_avx2_quantize_q8_0(const float *x, kq_block_q8_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, x += KQ_QK8_0) {
        const __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8), v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        if (!(finite8(v0) && finite8(v1) && finite8(v2) && finite8(v3))) {
            kq_quantize_q8_0_act(x, &y[b], KQ_QK8_0);
            continue;
        }
        const float amax = hmax8(_mm256_max_ps(_mm256_max_ps(abs8(v0), abs8(v1)), _mm256_max_ps(abs8(v2), abs8(v3))));
        y[b].d = kq_f32_to_f16(amax / 127.f);
        _mm256_storeu_si256((__m256i *)y[b].qs, round32(x, _mm256_set1_ps(amax != 0.f ? 127.f / amax : 0.f)));
    }
}

void kq_avx2_prep_q8_0(const float *x, void *dst, int64_t n) { kq_avx2_quantize_q8_0(x, dst, n); }

void kq_avx2_quantize_q8_K(const float *x, kq_block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        __m256 m = _mm256_setzero_ps();
        bool fin = true;
        for (int j = 0; j < KQ_QK_K; j += 8) {
            const __m256 v = _mm256_loadu_ps(x + j);
            fin &= finite8(v);
            m = _mm256_max_ps(m, abs8(v));
        }
        const float amax = hmax8(m);
        if (!fin || amax == 0.f) {
            kq_quantize_q8_K(x, &y[b], KQ_QK_K);
            continue;
        }
        /* the reference's max: the first value of the largest magnitude, with its sign */
        float max = amax;
        for (int j = 0; j < KQ_QK_K; j += 8) {
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (hit) {
                max = x[j + __builtin_ctz((unsigned)hit)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m256 is = _mm256_set1_ps(iscale);
        for (int j = 0; j < KQ_QK_K; j += 32) {
            const __m256i q = round32(x + j, is);
            _mm256_storeu_si256((__m256i *)(y[b].qs + j), q);
            /* bsums of the two 16-value halves */
            const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
            const __m128i h = _mm_hadd_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            const __m128i hh = _mm_hadd_epi32(h, h);
            y[b].bsums[j / 16] = (int16_t)_mm_cvtsi128_si32(hh);
            y[b].bsums[j / 16 + 1] = (int16_t)_mm_extract_epi32(hh, 1);
        }
        y[b].d = 1 / iscale;
    }
}

void kq_avx2_prep_q8_K(const float *x, void *dst, int64_t n) { kq_avx2_quantize_q8_K(x, dst, n); }

/* ---- Q8_0 / Q4_0 ----------------------------------------------------------------- */

/* 32 unsigned 4-bit codes of a Q4_0 block (low nibbles = elements 0..15). */
static inline __m256i codes_q4(const uint8_t *qs) {
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qs));
    return _mm256_and_si256(_mm256_blend_epi32(q, _mm256_srli_epi16(q, 4), 0xF0), _mm256_set1_epi8(0x0F));
}

/* Q8_0: per block and row, the signed dot through the sign transfer (|x| computed once
 * for the GR rows), 8 int32 lanes converted and scaled by dw·dx (exact in float). */
static inline void gemv_q8_0_pass(const kq_mm_args *a, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK8_0;
    const kq_block_q8_0 *x = (const kq_block_q8_0 *)a->xq, *w[GR];
    __m256 acc[GR];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q8_0 *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs), ax = _mm256_sign_epi8(xv, xv);
        const __m256 dx = _mm256_cvtph_ps(_mm_set1_epi16((short)x[b].d));
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)w[r][b].qs);
            const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, _mm256_sign_epi8(wv, xv)), ones);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale8(&w[r][b].d, dx), acc[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) a->Y[o + r] = hsum8(acc[r]);
}
DEF_GEMV_LOOP(gemv_q8_0)

/* Q4_0: codes stay unsigned (one vpmaddubsw, no sign transfer); the -8 offset is removed
 * per int32 lane with 8·Σx of the lane's 4 activations, computed once per block for all
 * rows, so the lanes equal the signed dot's lanes exactly. */
static inline void gemv_q4_0_pass(const kq_mm_args *a, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK4_0;
    const kq_block_q8_0 *x = (const kq_block_q8_0 *)a->xq;
    const kq_block_q4_0 *w[GR];
    __m256 acc[GR];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q4_0 *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i ones = _mm256_set1_epi16(1), eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i *)x[b].qs);
        const __m256i off = _mm256_madd_epi16(_mm256_maddubs_epi16(eight, xv), ones);
        const __m256 dx = _mm256_cvtph_ps(_mm_set1_epi16((short)x[b].d));
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            const __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(codes_q4(w[r][b].qs), xv), ones), off);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale8(&w[r][b].d, dx), acc[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) a->Y[o + r] = hsum8(acc[r]);
}
DEF_GEMV_LOOP(gemv_q4_0)

/* ---- Q4_K ------------------------------------------------------------------------ */

/* Per block and row: the 8 sub-block scales broadcast by vpshufb from one register, 8
 * maddubs/madd pairs into one int32 accumulator, and the mins term Σ min·(pair of bsums)
 * as one vpmaddwd into a second (float, 4-lane) accumulator scaled by dmin·dx. */
static inline void gemv_q4_K_pass(const kq_mm_args *a, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q8_K *x = (const kq_block_q8_K *)a->xq;
    const kq_block_q4_K *w[GR];
    __m256 acc[GR];
    __m128 accm[GR];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q4_K *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r] = _mm256_setzero_ps();
        accm[r] = _mm_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    /* shuffle controls broadcasting 16-bit lane k of each 128-bit half */
    __m256i bc[8];
    for (int k = 0; k < 8; k++) bc[k] = _mm256_set1_epi16((short)(0x0100 * (2 * k + 1) + 2 * k));
    for (int64_t b = 0; b < nb; b++) {
        const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x[b].bsums), _mm_loadu_si128((const __m128i *)(x[b].bsums + 8)));
        const float dx = x[b].d;
        const int8_t *q8 = x[b].qs;
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            const kq_block_q4_K *wb = &w[r][b];
            uint8_t sm[16];
            kq_q4k_unpack(wb->scales, sm);
            const __m128i sm16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sm));
            const __m128i mn16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
            const __m256i sc = _mm256_broadcastsi128_si256(sm16);
            __m256i is = _mm256_setzero_si256();
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                const __m256i q = _mm256_loadu_si256((const __m256i *)(wb->qs + 32 * j));
                const __m256i p0 = _mm256_maddubs_epi16(_mm256_and_si256(q, m4), _mm256_loadu_si256((const __m256i *)(q8 + 64 * j)));
                const __m256i p1 = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                                        _mm256_loadu_si256((const __m256i *)(q8 + 64 * j + 32)));
                is = _mm256_add_epi32(is, _mm256_add_epi32(_mm256_madd_epi16(p0, _mm256_shuffle_epi8(sc, bc[2 * j])),
                                                           _mm256_madd_epi16(p1, _mm256_shuffle_epi8(sc, bc[2 * j + 1]))));
            }
            const float d = _cvtsh_ss(wb->d) * dx, dm = _cvtsh_ss(wb->dmin) * dx;
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(d), acc[r]);
            accm[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(_mm_madd_epi16(mn16, bs)), _mm_set1_ps(dm), accm[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) a->Y[o + r] = hsum8(acc[r]) - hsum4(accm[r]);
}
DEF_GEMV_LOOP(gemv_q4_K)

/* ---- Q6_K ------------------------------------------------------------------------ */

/* Per block and row: 6-bit codes unsigned (0..63) by maddubs; the 16 signed sub-block
 * scales widened once, each 32-value group's pair of scales picked by vpermd + vpshufb;
 * the -32 offset removed as 32·Σ scale·bsum (one vpmaddwd) from the int32 lanes. */
static inline void gemv_q6_K_pass(const kq_mm_args *a, int64_t o, int R) {
    const int64_t nb = a->n_in / KQ_QK_K;
    const kq_block_q8_K *x = (const kq_block_q8_K *)a->xq;
    const kq_block_q6_K *w[GR];
    __m256 acc[GR];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        w[r] = (const kq_block_q6_K *)(a->W + (size_t)(o + r) * a->w_row_bytes);
        acc[r] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(0x03);
    /* after vpermd with dword k everywhere: low half all scale 2k, high half all 2k+1 */
    const __m256i pick = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    for (int64_t b = 0; b < nb; b++) {
        const __m256i bs = _mm256_loadu_si256((const __m256i *)x[b].bsums);
        const float dx = x[b].d;
        const int8_t *q8 = x[b].qs;
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            const kq_block_q6_K *wb = &w[r][b];
            const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb->scales));
            __m256i is = _mm256_slli_epi32(_mm256_madd_epi16(s16, bs), 5); /* 32·Σ scale·bsum, subtracted below */
            is = _mm256_sub_epi32(_mm256_setzero_si256(), is);
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; h++) {
                const __m256i l0 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h));
                const __m256i l1 = _mm256_loadu_si256((const __m256i *)(wb->ql + 64 * h + 32));
                const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb->qh + 32 * h));
                __m256i q[4];
                q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
                q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
                q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
                q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
                _Pragma("GCC unroll 4") for (int kk = 0; kk < 4; kk++) {
                    const int k = 4 * h + kk;
                    const __m256i sc = _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(s16, _mm256_set1_epi32(k)), pick);
                    const __m256i p = _mm256_maddubs_epi16(q[kk], _mm256_loadu_si256((const __m256i *)(q8 + 32 * k)));
                    is = _mm256_add_epi32(is, _mm256_madd_epi16(p, sc));
                }
            }
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_set1_ps(_cvtsh_ss(wb->d) * dx), acc[r]);
        }
    }
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) a->Y[o + r] = hsum8(acc[r]);
}
DEF_GEMV_LOOP(gemv_q6_K)
#endif
