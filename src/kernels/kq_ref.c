/* kq_ref.c — the scalar reference of every kernel: F16/BF16 conversions, the block
 * formats' quantizers and dequantizers (laid out and rounded as ggml does: ggml-common.h,
 * ggml-quants.c), the integer block dot products, the scalar vector ops, the per-dtype
 * traits table that names them (kq_traits_of), and the `scalar` dispatch table built from
 * it. Everything SIMD is checked against this file.
 *
 * Activation rounding (what the matmul does to X before integer dot products):
 *   Q8_0 (for Q8_0/Q4_0/Q5_0/IQ4_NL weights): per 32 values, amax = max|x|, d = fp16(amax/127),
 *     q = round-to-nearest-even(x * (127/amax)) — as ggml's x86 quantize_row_q8_0 (the
 *     AVX2/AVX-512 path llama.cpp runs on these machines) computes it.
 *   Q8_1 (for Q5_1): the Q8_0 rounding, plus s = fp16(amax/127 * Σq) (the scale before
 *     its fp16 rounding, as ggml's quantize_row_q8_1 computes it).
 *   Q8_K (for Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS): per 256 values, max = the value of largest magnitude (with its
 *     sign), iscale = -127/max, q = min(127, nearest_int(iscale*x)), d = 1/iscale,
 *     bsums = sums of 16 consecutive q — ggml's quantize_row_q8_K_ref. */
#include "kernels/kq_internal.h"
#include <math.h>
#include <string.h>

/* ---- F16 / BF16 ---------------------------------------------------------------- */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float kq_f16_to_f32(kq_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
    if (e == 0) {
        float v = (float)m * 0x1p-24f; /* zero or subnormal: exact */
        return bits_f32(sign | f32_bits(v));
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112) << 23) | (m << 13));
}

kq_f16 kq_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (kq_f16)(sign | 0x7e00 | ((ax >> 13) & 0x3ff)); /* NaN stays quiet NaN */
    if (ax >= 0x477ff000u) return (kq_f16)(sign | 0x7c00);                       /* >= 65520 -> inf */
    if (ax < 0x38800000u) {                                                       /* below 2^-14: subnormal */
        float a = bits_f32(ax) + 0.5f; /* the FPU rounds to a 2^-24 step, nearest-even */
        return (kq_f16)(sign | (f32_bits(a) - 0x3f000000u));
    }
    uint32_t odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + odd; /* rebias exponent by -112 and round to nearest even */
    return (kq_f16)(sign | (ax >> 13));
}

float kq_bf16_to_f32(kq_bf16 h) { return bits_f32((uint32_t)h << 16); }

kq_bf16 kq_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (kq_bf16)((x >> 16) | 64); /* quiet NaN */
    return (kq_bf16)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* ggml's nearest_int: round to nearest even, valid for |v| < 2^22. */
static inline int nearest_int(float v) {
    int i = (int)f32_bits(v + 12582912.f);
    return (i & 0x007fffff) - 0x00400000;
}

/* float -> int8 the way a C cast truncates, but defined for every input: NaN gives 0 and
 * values outside the range saturate (a model file may hold NaN or inf weights, and a
 * cast of those is undefined behaviour). */
static inline int8_t sat_i8(float v) {
    if (v >= -128.f && v < 128.f) return (int8_t)v;
    return v > 0 ? 127 : v < 0 ? -128 : 0;
}

#define MAXI(a, b) ((a) > (b) ? (a) : (b))
#define MINI(a, b) ((a) < (b) ? (a) : (b))

/* ---- activation quantizers ------------------------------------------------------- */

void kq_quantize_q8_0_act(const float *x, kq_block_q8_0 *y, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, x += KQ_QK8_0) {
        float amax = 0;
        for (int j = 0; j < KQ_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        y[b].d = kq_f32_to_f16(amax / 127.f);
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        for (int j = 0; j < KQ_QK8_0; j++) y[b].qs[j] = sat_i8(nearbyintf(x[j] * id));
    }
}

void kq_quantize_q8_1_act(const float *x, kq_block_q8_1 *y, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, x += KQ_QK8_0) {
        float amax = 0;
        for (int j = 0; j < KQ_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        int sum = 0;
        for (int j = 0; j < KQ_QK8_0; j++) {
            y[b].qs[j] = sat_i8(nearbyintf(x[j] * id));
            sum += y[b].qs[j];
        }
        y[b].d = kq_f32_to_f16(d);
        y[b].s = kq_f32_to_f16(d * (float)sum);
    }
}

void kq_quantize_q8_K(const float *x, kq_block_q8_K *y, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < KQ_QK_K; j++) {
            float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (amax == 0.f) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < KQ_QK_K; j++) {
            int v = nearest_int(iscale * x[j]);
            y[b].qs[j] = (int8_t)MINI(127, v);
        }
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += y[b].qs[16 * j + l];
            y[b].bsums[j] = (int16_t)s;
        }
        y[b].d = 1 / iscale;
    }
}

/* ---- weight quantizers (ggml's *_ref) -------------------------------------------- */

static void quantize_q8_0(const float *x, void *dst, int64_t n) {
    kq_block_q8_0 *y = dst;
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, x += KQ_QK8_0) {
        float amax = 0;
        for (int j = 0; j < KQ_QK8_0; j++) amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        y[b].d = kq_f32_to_f16(d);
        for (int j = 0; j < KQ_QK8_0; j++) y[b].qs[j] = sat_i8(roundf(x[j] * id));
    }
}

static void quantize_q4_0(const float *x, void *dst, int64_t n) {
    kq_block_q4_0 *y = dst;
    for (int64_t b = 0; b < n / KQ_QK4_0; b++, x += KQ_QK4_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < KQ_QK4_0; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -8, id = d != 0.f ? 1.f / d : 0.f;
        y[b].d = kq_f32_to_f16(d);
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            int lo = MINI(15, (int)sat_i8(x[j] * id + 8.5f));
            int hi = MINI(15, (int)sat_i8(x[j + KQ_QK4_0 / 2] * id + 8.5f));
            y[b].qs[j] = (uint8_t)(lo | (hi << 4));
        }
    }
}

/* The 5th bits of a 32-element block: bit j of the u32 = bit 4 of code j. */
static void put_qh(uint8_t qh[4], uint32_t bits) { memcpy(qh, &bits, 4); }
static uint32_t get_qh(const uint8_t qh[4]) {
    uint32_t u;
    memcpy(&u, qh, 4);
    return u;
}

static void quantize_q5_0(const float *x, void *dst, int64_t n) {
    kq_block_q5_0 *y = dst;
    for (int64_t b = 0; b < n / KQ_QK4_0; b++, x += KQ_QK4_0) {
        float amax = 0, max = 0;
        for (int j = 0; j < KQ_QK4_0; j++)
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        const float d = max / -16, id = d != 0.f ? 1.f / d : 0.f;
        y[b].d = kq_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int lo = MINI(31, (int)sat_i8(x[j] * id + 16.5f));
            const int hi = MINI(31, (int)sat_i8(x[j + 16] * id + 16.5f));
            y[b].qs[j] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
            qh |= (uint32_t)((lo >> 4) & 1) << j | (uint32_t)((hi >> 4) & 1) << (j + 16);
        }
        put_qh(y[b].qh, qh);
    }
}

static void quantize_q5_1(const float *x, void *dst, int64_t n) {
    kq_block_q5_1 *y = dst;
    for (int64_t b = 0; b < n / KQ_QK4_0; b++, x += KQ_QK4_0) {
        float min = x[0], max = x[0];
        for (int j = 1; j < KQ_QK4_0; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31, id = d != 0.f ? 1.f / d : 0.f;
        y[b].d = kq_f32_to_f16(d);
        y[b].m = kq_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int lo = (uint8_t)((x[j] - min) * id + 0.5f), hi = (uint8_t)((x[j + 16] - min) * id + 0.5f);
            y[b].qs[j] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
            qh |= (uint32_t)((lo >> 4) & 1) << j | (uint32_t)((hi >> 4) & 1) << (j + 16);
        }
        put_qh(y[b].qh, qh);
    }
}

/* ggml's make_qkx2_quants: scale and (negated) min of an asymmetric nmax-level
 * quantization of x[0..n) minimising the weighted squared error (use_mad: the weighted
 * absolute error) over a small search. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L,
                              float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0], sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += weights[i];
        sum_x += weights[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_mad = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAXI(0, MINI(nmax, l));
        float diff = scale * L[i] + min - x[i];
        best_mad += weights[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAXI(0, MINI(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float mad = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                mad += weights[i] * (use_mad ? fabsf(diff) : diff * diff);
            }
            if (mad < best_mad) {
                memcpy(L, Laux, (size_t)n);
                best_mad = mad;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

static void quantize_q4_K(const float *x, void *dst, int64_t n) {
    kq_block_q4_K *y = dst;
    uint8_t L[KQ_QK_K], Laux[32];
    float weights[32], mins[KQ_QK_K / 32], scales[KQ_QK_K / 32];
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(y[b].scales, 0, sizeof y[b].scales);
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            uint8_t ls = (uint8_t)MINI(63, nearest_int(inv_scale * scales[j]));
            uint8_t lm = (uint8_t)MINI(63, nearest_int(inv_min * mins[j]));
            if (j < 4) {
                y[b].scales[j] = ls;
                y[b].scales[j + 4] = lm;
            } else {
                y[b].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[b].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[b].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[b].d = kq_f32_to_f16(max_scale / 63.f);
        y[b].dmin = kq_f32_to_f16(max_min / 63.f);
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            uint8_t sc, m;
            kq_q4k_scale_min(j, y[b].scales, &sc, &m);
            const float d = kq_f16_to_f32(y[b].d) * sc;
            if (d == 0.f) continue;
            const float dm = kq_f16_to_f32(y[b].dmin) * m;
            for (int i = 0; i < 32; i++) {
                int l = nearest_int((x[32 * j + i] + dm) / d);
                L[32 * j + i] = (uint8_t)MAXI(0, MINI(15, l));
            }
        }
        uint8_t *q = y[b].qs;
        for (int j = 0; j < KQ_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quantize_q5_K(const float *x, void *dst, int64_t n) {
    kq_block_q5_K *y = dst;
    uint8_t L[KQ_QK_K], Laux[32];
    float weights[32], mins[KQ_QK_K / 32], scales[KQ_QK_K / 32];
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 31, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -0.5f, 0.1f, 15, false);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        memset(y[b].scales, 0, sizeof y[b].scales);
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            uint8_t ls = (uint8_t)MINI(63, nearest_int(inv_scale * scales[j]));
            uint8_t lm = (uint8_t)MINI(63, nearest_int(inv_min * mins[j]));
            if (j < 4) {
                y[b].scales[j] = ls;
                y[b].scales[j + 4] = lm;
            } else {
                y[b].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[b].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[b].scales[j] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[b].d = kq_f32_to_f16(max_scale / 63.f);
        y[b].dmin = kq_f32_to_f16(max_min / 63.f);
        for (int j = 0; j < KQ_QK_K / 32; j++) {
            uint8_t sc, m;
            kq_q4k_scale_min(j, y[b].scales, &sc, &m);
            const float d = kq_f16_to_f32(y[b].d) * sc;
            if (d == 0.f) continue;
            const float dm = kq_f16_to_f32(y[b].dmin) * m;
            for (int i = 0; i < 32; i++) {
                int l = nearest_int((x[32 * j + i] + dm) / d);
                L[32 * j + i] = (uint8_t)MAXI(0, MINI(31, l));
            }
        }
        uint8_t *q = y[b].qs, *qh = y[b].qh;
        memset(qh, 0, sizeof y[b].qh);
        for (int j = 0, bit = 0; j < KQ_QK_K; j += 64, q += 32, bit += 2)
            for (int l = 0; l < 32; l++) {
                const int l1 = L[j + l], l2 = L[j + l + 32];
                qh[l] |= (uint8_t)(((l1 >> 4) << bit) | ((l2 >> 4) << (bit + 1)));
                q[l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
            }
    }
}

#define GROUP_MAX_EPS 1e-15f

/* ggml's make_qx_quants (rmse_type 1): symmetric scale for levels -nmax..nmax-1. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = MAXI(-nmax, MINI(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 != 0.f ? sumlx / suml2 : 0.f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = MAXI(-nmax, MINI(nmax - 1, nearest_int(iscale * x[i])));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAXI(-nmax, MINI(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

static void quantize_q6_K(const float *x, void *dst, int64_t n) {
    kq_block_q6_K *y = dst;
    int8_t L[KQ_QK_K];
    float scales[KQ_QK_K / 16];
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < KQ_QK_K / 16; ib++) {
            scales[ib] = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        float iscale = -128.f / max_scale;
        y[b].d = kq_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < KQ_QK_K / 16; ib++) y[b].scales[ib] = (int8_t)MINI(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            float d = kq_f16_to_f32(y[b].d) * y[b].scales[j];
            if (d == 0.f) continue;
            for (int i = 0; i < 16; i++) {
                int l = MAXI(-32, MINI(31, nearest_int(x[16 * j + i] / d)));
                L[16 * j + i] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[b].ql, *qh = y[b].qh;
        for (int j = 0; j < KQ_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* Packs 256 2-bit codes as Q2_K / Q3_K store them: element 128h+32s+l in bits 2s..2s+1
 * of qs[32h+l]. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < KQ_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* ggml's quantize_row_q2_K_ref (the 4-bit scale / min codes clamped to 0..15, which
 * only non-finite input can exceed). */
static void quantize_q2_K(const float *x, void *dst, int64_t n) {
    kq_block_q2_K *y = dst;
    uint8_t L[KQ_QK_K], Laux[16];
    float weights[16], mins[KQ_QK_K / 16], scales[KQ_QK_K / 16];
    const float q4scale = 15.f;
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(y[b].scales, 0, sizeof y[b].scales);
        y[b].d = kq_f32_to_f16(0.f);
        y[b].dmin = kq_f32_to_f16(0.f);
        if (max_scale > 0) {
            const float iscale = q4scale / max_scale;
            for (int j = 0; j < KQ_QK_K / 16; j++) y[b].scales[j] = (uint8_t)MAXI(0, MINI(15, nearest_int(iscale * scales[j])));
            y[b].d = kq_f32_to_f16(max_scale / q4scale);
        }
        if (max_min > 0) {
            const float iscale = q4scale / max_min;
            for (int j = 0; j < KQ_QK_K / 16; j++) y[b].scales[j] |= (uint8_t)(MAXI(0, MINI(15, nearest_int(iscale * mins[j]))) << 4);
            y[b].dmin = kq_f32_to_f16(max_min / q4scale);
        }
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            const float d = kq_f16_to_f32(y[b].d) * (y[b].scales[j] & 0xF);
            if (d == 0.f) continue;
            const float dm = kq_f16_to_f32(y[b].dmin) * (y[b].scales[j] >> 4);
            for (int i = 0; i < 16; i++) L[16 * j + i] = (uint8_t)MAXI(0, MINI(3, nearest_int((x[16 * j + i] + dm) / d)));
        }
        pack_2bit(L, y[b].qs);
    }
}

/* ggml's make_q3_quants (do_rmse): symmetric scale for levels -nmax..nmax-1, refined by
 * coordinate descent on the x²-weighted error; L gets the levels + nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = MAXI(-nmax, MINI(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = MAXI(-nmax, MINI(nmax - 1, nearest_int(x[i] * sl2 / slx)));
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return sumlx / suml2;
}

static void quantize_q3_K(const float *x, void *dst, int64_t n) {
    kq_block_q3_K *y = dst;
    int8_t L[KQ_QK_K], sc[16];
    float scales[KQ_QK_K / 16];
    for (int64_t b = 0; b < n / KQ_QK_K; b++, x += KQ_QK_K) {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        memset(y[b].scales, 0, sizeof y[b].scales);
        y[b].d = kq_f32_to_f16(0.f);
        if (max_scale != 0.f) {
            const float iscale = -32.f / max_scale;
            for (int j = 0; j < KQ_QK_K / 16; j++) {
                const int l = MAXI(-32, MINI(31, nearest_int(iscale * scales[j]))) + 32;
                if (j < 8) y[b].scales[j] = (uint8_t)(l & 0xF);
                else y[b].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                y[b].scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            y[b].d = kq_f32_to_f16(1 / iscale);
        }
        kq_q3k_scales(y[b].scales, sc);
        for (int j = 0; j < KQ_QK_K / 16; j++) {
            const float d = kq_f16_to_f32(y[b].d) * sc[j];
            if (d == 0.f) continue;
            for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(MAXI(-4, MINI(3, nearest_int(x[16 * j + i] / d))) + 4);
        }
        /* the high bit of element 32k+l goes to bit k of hmask[l] */
        memset(y[b].hmask, 0, sizeof y[b].hmask);
        uint8_t Lu[KQ_QK_K];
        for (int j = 0; j < KQ_QK_K; j++) {
            if (L[j] > 3) y[b].hmask[j % 32] |= (uint8_t)(1 << (j / 32));
            Lu[j] = (uint8_t)(L[j] & 3);
        }
        pack_2bit(Lu, y[b].qs);
    }
}

const int8_t kq_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ggml's best_index_int8: index of the level nearest x (ties to the upper). */
static int best_index_iq4(float x) {
    const int8_t *v = kq_iq4nl_values;
    if (x <= v[0]) return 0;
    if (x >= v[15]) return 15;
    int ml = 0, mu = 15;
    while (mu - ml > 1) {
        int mav = (ml + mu) / 2;
        if (x < v[mav]) mu = mav;
        else ml = mav;
    }
    return x - v[mu - 1] < v[mu] - x ? mu - 1 : mu;
}

/* ggml's quantize_row_iq4_nl_impl without importance weights (weights x², ntry 7) for
 * one super-block of sb elements in sub-blocks of 32: sb = 32 is IQ4_NL (*dh = the
 * scale), sb = 256 is IQ4_XS (*dh = the super-block scale, 6-bit sub-block scales into
 * scales_h / scales_l). q4: sb/2 bytes of nibbles, 16 per sub-block as Q4_0's. */
static void quantize_iq4_impl(int sb, const float *x, kq_f16 *dh, uint8_t *q4, uint16_t *scales_h, uint8_t *scales_l) {
    enum { NTRY = 7 };
    const int8_t *values = kq_iq4nl_values;
    uint8_t L[KQ_QK_K];
    float scales[KQ_QK_K / 32], weight[32];
    float max_scale = 0, amax_scale = 0;
    memset(q4, 0, (size_t)sb / 2);
    *dh = kq_f32_to_f16(0.f);
    for (int ib = 0; ib < sb / 32; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            weight[j] = xb[j] * xb[j];
            if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); max = xb[j]; }
        }
        if (amax < GROUP_MAX_EPS) {
            scales[ib] = 0;
            memset(Lb, 0, 32);
            continue;
        }
        float d = -max / values[0], id = 1 / d, sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const int l = best_index_iq4(id * xb[j]);
            Lb[j] = (uint8_t)l;
            const float q = values[l];
            sumqx += weight[j] * q * xb[j];
            sumq2 += weight[j] * q * q;
        }
        d = sumqx / sumq2;
        float best = d * sumqx;
        for (int itry = -NTRY; itry <= NTRY; itry++) {
            id = (itry + values[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                const float q = values[best_index_iq4(id * xb[j])];
                sumqx += weight[j] * q * xb[j];
                sumq2 += weight[j] * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (fabsf(d) > amax_scale) {
            amax_scale = fabsf(d);
            max_scale = d;
        }
    }
    if (sb > 32) {
        *scales_h = 0;
        const float d = -max_scale / 32, id = d != 0.f ? 1 / d : 0.f;
        *dh = kq_f32_to_f16(d);
        for (int ib = 0; ib < sb / 32; ib++) {
            int l = MAXI(-32, MINI(31, nearest_int(id * scales[ib])));
            const float dl = d * l, idl = dl != 0.f ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)best_index_iq4(idl * x[32 * ib + j]);
            l += 32;
            if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(l & 0xF);
            else scales_l[ib / 2] |= (uint8_t)((l & 0xF) << 4);
            *scales_h |= (uint16_t)((l >> 4) << 2 * ib);
        }
    } else {
        *dh = kq_f32_to_f16(scales[0]);
        const float id = scales[0] != 0.f ? 1 / scales[0] : 0.f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)best_index_iq4(id * x[j]);
    }
    for (int i = 0; i < sb / 32; i++)
        for (int j = 0; j < 16; j++) q4[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

static void quantize_iq4_nl(const float *x, void *dst, int64_t n) {
    kq_block_iq4_nl *y = dst;
    for (int64_t b = 0; b < n / KQ_QK4_NL; b++) quantize_iq4_impl(KQ_QK4_NL, x + b * KQ_QK4_NL, &y[b].d, y[b].qs, NULL, NULL);
}

static void quantize_iq4_xs(const float *x, void *dst, int64_t n) {
    kq_block_iq4_xs *y = dst;
    for (int64_t b = 0; b < n / KQ_QK_K; b++) {
        memset(y[b].scales_l, 0, sizeof y[b].scales_l);
        quantize_iq4_impl(KQ_QK_K, x + b * KQ_QK_K, &y[b].d, y[b].qs, &y[b].scales_h, y[b].scales_l);
    }
}

static void quantize_f32(const float *x, void *dst, int64_t n) { memcpy(dst, x, (size_t)n * sizeof *x); }
static void quantize_f16(const float *x, void *dst, int64_t n) {
    kq_f16 *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = kq_f32_to_f16(x[i]);
}
static void quantize_bf16(const float *x, void *dst, int64_t n) {
    kq_bf16 *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = kq_f32_to_bf16(x[i]);
}

/* ---- dequantizers ---------------------------------------------------------------- */

static void dequantize_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof *dst); }
static void dequantize_f16(const void *src, float *dst, int64_t n) {
    const kq_f16 *x = src;
    for (int64_t i = 0; i < n; i++) dst[i] = kq_f16_to_f32(x[i]);
}
static void dequantize_bf16(const void *src, float *dst, int64_t n) {
    const kq_bf16 *x = src;
    for (int64_t i = 0; i < n; i++) dst[i] = kq_bf16_to_f32(x[i]);
}

static void dequantize_q8_0(const void *src, float *dst, int64_t n) {
    const kq_block_q8_0 *x = src;
    for (int64_t b = 0; b < n / KQ_QK8_0; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        for (int j = 0; j < KQ_QK8_0; j++) dst[b * KQ_QK8_0 + j] = d * x[b].qs[j];
    }
}

static void dequantize_q4_0(const void *src, float *dst, int64_t n) {
    const kq_block_q4_0 *x = src;
    for (int64_t b = 0; b < n / KQ_QK4_0; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            dst[b * KQ_QK4_0 + j] = d * ((x[b].qs[j] & 0xF) - 8);
            dst[b * KQ_QK4_0 + j + 16] = d * ((x[b].qs[j] >> 4) - 8);
        }
    }
}

/* One Q4_K / Q5_K super-block (256 values): 8 sub-blocks of 32, each d * scale * code -
 * dmin * min, with the 4-bit codes of qs and, for Q5_K, a fifth bit from qh (NULL for Q4_K). */
static void dequantize_qk45_block(float d, float dmin, const uint8_t *scales, const uint8_t *q, const uint8_t *qh,
                                  float *y) {
    for (int j = 0; j < KQ_QK_K / 64; j++, q += 32, y += 64) {
        for (int h = 0; h < 2; h++) { /* sub-block 2j: low nibbles, 2j+1: high nibbles */
            uint8_t sc, m;
            kq_q4k_scale_min(2 * j + h, scales, &sc, &m);
            const float dl = d * sc, ml = dmin * m;
            for (int l = 0; l < 32; l++) {
                int code = h ? q[l] >> 4 : q[l] & 0xF;
                if (qh) code |= ((qh[l] >> (2 * j + h)) & 1) << 4;
                y[l + 32 * h] = dl * code - ml;
            }
        }
    }
}

static void dequantize_q4_K(const void *src, float *dst, int64_t n) {
    const kq_block_q4_K *x = src;
    for (int64_t b = 0; b < n / KQ_QK_K; b++)
        dequantize_qk45_block(kq_f16_to_f32(x[b].d), kq_f16_to_f32(x[b].dmin), x[b].scales, x[b].qs, NULL,
                              dst + b * KQ_QK_K);
}

static void dequantize_q6_K(const void *src, float *dst, int64_t n) {
    const kq_block_q6_K *x = src;
    for (int64_t b = 0; b < n / KQ_QK_K; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *sc = x[b].scales;
        float *y = dst + b * KQ_QK_K;
        for (int h = 0; h < KQ_QK_K; h += 128, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

static void dequantize_q5_0(const void *src, float *dst, int64_t n) {
    const kq_block_q5_0 *x = src;
    for (int64_t b = 0; b < n / KQ_QK4_0; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        const uint32_t qh = get_qh(x[b].qh);
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            dst[b * KQ_QK4_0 + j] = d * (int)(((x[b].qs[j] & 0xF) | ((qh >> j) & 1) << 4) - 16);
            dst[b * KQ_QK4_0 + j + 16] = d * (int)(((x[b].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16);
        }
    }
}

static void dequantize_q5_1(const void *src, float *dst, int64_t n) {
    const kq_block_q5_1 *x = src;
    for (int64_t b = 0; b < n / KQ_QK4_0; b++) {
        const float d = kq_f16_to_f32(x[b].d), m = kq_f16_to_f32(x[b].m);
        const uint32_t qh = get_qh(x[b].qh);
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            dst[b * KQ_QK4_0 + j] = d * (float)((x[b].qs[j] & 0xF) | ((qh >> j) & 1) << 4) + m;
            dst[b * KQ_QK4_0 + j + 16] = d * (float)((x[b].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) + m;
        }
    }
}

static void dequantize_q5_K(const void *src, float *dst, int64_t n) {
    const kq_block_q5_K *x = src;
    for (int64_t b = 0; b < n / KQ_QK_K; b++)
        dequantize_qk45_block(kq_f16_to_f32(x[b].d), kq_f16_to_f32(x[b].dmin), x[b].scales, x[b].qs, x[b].qh,
                              dst + b * KQ_QK_K);
}

static void dequantize_q2_K(const void *src, float *dst, int64_t n) {
    const kq_block_q2_K *x = src;
    for (int64_t b = 0; b < n / KQ_QK_K; b++) {
        const float d = kq_f16_to_f32(x[b].d), dmin = kq_f16_to_f32(x[b].dmin);
        float *y = dst + b * KQ_QK_K;
        for (int i = 0; i < KQ_QK_K; i++) {
            const int code = (x[b].qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3, sc = x[b].scales[i / 16];
            y[i] = d * (float)(sc & 0xF) * (float)code - dmin * (float)(sc >> 4);
        }
    }
}

static void dequantize_q3_K(const void *src, float *dst, int64_t n) {
    const kq_block_q3_K *x = src;
    for (int64_t b = 0; b < n / KQ_QK_K; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        int8_t sc[16];
        kq_q3k_scales(x[b].scales, sc);
        float *y = dst + b * KQ_QK_K;
        for (int i = 0; i < KQ_QK_K; i++) {
            const int lo = (x[b].qs[32 * (i / 128) + i % 32] >> (2 * ((i / 32) % 4))) & 3;
            const int code = lo - ((x[b].hmask[i % 32] >> (i / 32)) & 1 ? 0 : 4);
            y[i] = d * (float)sc[i / 16] * (float)code;
        }
    }
}

static void dequantize_iq4_nl(const void *src, float *dst, int64_t n) {
    const kq_block_iq4_nl *x = src;
    for (int64_t b = 0; b < n / KQ_QK4_NL; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        for (int j = 0; j < KQ_QK4_NL / 2; j++) {
            dst[b * KQ_QK4_NL + j] = d * kq_iq4nl_values[x[b].qs[j] & 0xF];
            dst[b * KQ_QK4_NL + j + 16] = d * kq_iq4nl_values[x[b].qs[j] >> 4];
        }
    }
}

static void dequantize_iq4_xs(const void *src, float *dst, int64_t n) {
    const kq_block_iq4_xs *x = src;
    for (int64_t b = 0; b < n / KQ_QK_K; b++) {
        const float d = kq_f16_to_f32(x[b].d);
        float *y = dst + b * KQ_QK_K;
        for (int s = 0; s < KQ_QK_K / 32; s++, y += 32) {
            const float dl = d * (float)kq_iq4xs_scale(&x[b], s);
            const uint8_t *q = x[b].qs + 16 * s;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * kq_iq4nl_values[q[j] & 0xF];
                y[j + 16] = dl * kq_iq4nl_values[q[j] >> 4];
            }
        }
    }
}

/* ---- reference block dot products ------------------------------------------------ */

static float vec_dot_q8_0(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q8_0 *w = wv;
    const kq_block_q8_0 *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int s = 0;
        for (int j = 0; j < KQ_QK8_0; j++) s += w[b].qs[j] * x[b].qs[j];
        sum += (float)s * (kq_f16_to_f32(w[b].d) * kq_f16_to_f32(x[b].d));
    }
    return sum;
}

static float vec_dot_q4_0(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q4_0 *w = wv;
    const kq_block_q8_0 *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int s = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++)
            s += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j] + ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        sum += (float)s * (kq_f16_to_f32(w[b].d) * kq_f16_to_f32(x[b].d));
    }
    return sum;
}

static float vec_dot_q4_K(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q4_K *w = wv;
    const kq_block_q8_K *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = w[b].qs;
        const int8_t *y = x[b].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < KQ_QK_K / 64; j++, q += 32, y += 64) {
            uint8_t sc1, m1, sc2, m2;
            kq_q4k_scale_min(2 * j, w[b].scales, &sc1, &m1);
            kq_q4k_scale_min(2 * j + 1, w[b].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (q[l] & 0xF) * y[l];
                s2 += (q[l] >> 4) * y[l + 32];
            }
            sumi += sc1 * s1 + sc2 * s2;
            summ += m1 * (x[b].bsums[4 * j] + x[b].bsums[4 * j + 1]) + m2 * (x[b].bsums[4 * j + 2] + x[b].bsums[4 * j + 3]);
        }
        sum += kq_f16_to_f32(w[b].d) * x[b].d * (float)sumi - kq_f16_to_f32(w[b].dmin) * x[b].d * (float)summ;
    }
    return sum;
}

static float vec_dot_q6_K(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q6_K *w = wv;
    const kq_block_q8_K *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *ql = w[b].ql, *qh = w[b].qh;
        const int8_t *sc = w[b].scales, *y = x[b].qs;
        int sumi = 0;
        for (int h = 0; h < KQ_QK_K; h += 128, ql += 64, qh += 32, sc += 8, y += 128) {
            int s[8] = {0};
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                s[is] += (((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32) * y[l];
                s[is + 2] += (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32) * y[l + 32];
                s[is + 4] += (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32) * y[l + 64];
                s[is + 6] += (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32) * y[l + 96];
            }
            for (int k = 0; k < 8; k++) sumi += sc[k] * s[k];
        }
        sum += kq_f16_to_f32(w[b].d) * x[b].d * (float)sumi;
    }
    return sum;
}

static float vec_dot_q5_0(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q5_0 *w = wv;
    const kq_block_q8_0 *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint32_t qh = get_qh(w[b].qh);
        int s = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int lo = (int)((w[b].qs[j] & 0xF) | ((qh >> j) & 1) << 4) - 16;
            const int hi = (int)((w[b].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16;
            s += lo * x[b].qs[j] + hi * x[b].qs[j + 16];
        }
        sum += (float)s * (kq_f16_to_f32(w[b].d) * kq_f16_to_f32(x[b].d));
    }
    return sum;
}

static float vec_dot_q5_1(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q5_1 *w = wv;
    const kq_block_q8_1 *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint32_t qh = get_qh(w[b].qh);
        int s = 0;
        for (int j = 0; j < KQ_QK4_0 / 2; j++) {
            const int lo = (int)((w[b].qs[j] & 0xF) | ((qh >> j) & 1) << 4);
            const int hi = (int)((w[b].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4);
            s += lo * x[b].qs[j] + hi * x[b].qs[j + 16];
        }
        sum += (kq_f16_to_f32(w[b].d) * kq_f16_to_f32(x[b].d)) * (float)s + kq_f16_to_f32(w[b].m) * kq_f16_to_f32(x[b].s);
    }
    return sum;
}

static float vec_dot_q5_K(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q5_K *w = wv;
    const kq_block_q8_K *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = w[b].qs, *qh = w[b].qh;
        const int8_t *y = x[b].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < KQ_QK_K / 64; j++, q += 32, y += 64) {
            uint8_t sc1, m1, sc2, m2;
            kq_q4k_scale_min(2 * j, w[b].scales, &sc1, &m1);
            kq_q4k_scale_min(2 * j + 1, w[b].scales, &sc2, &m2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((q[l] & 0xF) | ((qh[l] >> (2 * j)) & 1) << 4) * y[l];
                s2 += ((q[l] >> 4) | ((qh[l] >> (2 * j + 1)) & 1) << 4) * y[l + 32];
            }
            sumi += sc1 * s1 + sc2 * s2;
            summ += m1 * (x[b].bsums[4 * j] + x[b].bsums[4 * j + 1]) + m2 * (x[b].bsums[4 * j + 2] + x[b].bsums[4 * j + 3]);
        }
        sum += kq_f16_to_f32(w[b].d) * x[b].d * (float)sumi - kq_f16_to_f32(w[b].dmin) * x[b].d * (float)summ;
    }
    return sum;
}

static float vec_dot_q2_K(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q2_K *w = wv;
    const kq_block_q8_K *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *y = x[b].qs;
        int sumi = 0, summ = 0;
        for (int j = 0; j < KQ_QK_K / 16; j++) summ += x[b].bsums[j] * (w[b].scales[j] >> 4);
        for (int i = 0; i < KQ_QK_K; i += 16) { /* sub-block i/16: 16 codes in one bit pair */
            const uint8_t *q = w[b].qs + 32 * (i / 128) + i % 32;
            const int shift = 2 * ((i / 32) % 4);
            int s = 0;
            for (int l = 0; l < 16; l++) s += ((q[l] >> shift) & 3) * y[i + l];
            sumi += (w[b].scales[i / 16] & 0xF) * s;
        }
        sum += kq_f16_to_f32(w[b].d) * x[b].d * (float)sumi - kq_f16_to_f32(w[b].dmin) * x[b].d * (float)summ;
    }
    return sum;
}

static float vec_dot_q3_K(const void *wv, const void *xv, int64_t nb) {
    const kq_block_q3_K *w = wv;
    const kq_block_q8_K *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *y = x[b].qs;
        int8_t sc[16];
        kq_q3k_scales(w[b].scales, sc);
        int sumi = 0;
        for (int i = 0; i < KQ_QK_K; i += 16) {
            const uint8_t *q = w[b].qs + 32 * (i / 128) + i % 32, *hm = w[b].hmask + i % 32;
            const int shift = 2 * ((i / 32) % 4), hbit = i / 32;
            int s = 0;
            for (int l = 0; l < 16; l++) s += (((q[l] >> shift) & 3) - ((hm[l] >> hbit) & 1 ? 0 : 4)) * y[i + l];
            sumi += sc[i / 16] * s;
        }
        sum += kq_f16_to_f32(w[b].d) * x[b].d * (float)sumi;
    }
    return sum;
}

static float vec_dot_iq4_nl(const void *wv, const void *xv, int64_t nb) {
    const kq_block_iq4_nl *w = wv;
    const kq_block_q8_0 *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int s = 0;
        for (int j = 0; j < KQ_QK4_NL / 2; j++)
            s += kq_iq4nl_values[w[b].qs[j] & 0xF] * x[b].qs[j] + kq_iq4nl_values[w[b].qs[j] >> 4] * x[b].qs[j + 16];
        sum += (float)s * (kq_f16_to_f32(w[b].d) * kq_f16_to_f32(x[b].d));
    }
    return sum;
}

static float vec_dot_iq4_xs(const void *wv, const void *xv, int64_t nb) {
    const kq_block_iq4_xs *w = wv;
    const kq_block_q8_K *x = xv;
    float sum = 0;
    for (int64_t b = 0; b < nb; b++) {
        int sumi = 0;
        for (int s = 0; s < KQ_QK_K / 32; s++) {
            const uint8_t *q = w[b].qs + 16 * s;
            const int8_t *y = x[b].qs + 32 * s;
            int si = 0;
            for (int j = 0; j < 16; j++) si += kq_iq4nl_values[q[j] & 0xF] * y[j] + kq_iq4nl_values[q[j] >> 4] * y[j + 16];
            sumi += kq_iq4xs_scale(&w[b], s) * si;
        }
        sum += kq_f16_to_f32(w[b].d) * x[b].d * (float)sumi;
    }
    return sum;
}

/* ---- scalar matmul rows ---------------------------------------------------------- */

/* The standard activation formats' conversions (kq_act_fmt.prep). */

static void prep_q8_0(const float *x, void *dst, int64_t n) { kq_quantize_q8_0_act(x, dst, n); }
static void prep_q8_1(const float *x, void *dst, int64_t n) { kq_quantize_q8_1_act(x, dst, n); }
static void prep_q8_K(const float *x, void *dst, int64_t n) { kq_quantize_q8_K(x, dst, n); }
static void prep_f16(const float *x, void *dst, int64_t n) {
    float *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = kq_f16_to_f32(kq_f32_to_f16(x[i]));
}
static void prep_bf16(const float *x, void *dst, int64_t n) {
    float *y = dst;
    for (int64_t i = 0; i < n; i++) y[i] = kq_bf16_to_f32(kq_f32_to_bf16(x[i]));
}

/* Float weights: the dot of n values, summed in double. */
static float vec_dot_f32(const void *wv, const void *xv, int64_t n) {
    const float *w = wv, *x = xv;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)w[i] * x[i];
    return (float)s;
}
static float vec_dot_f16(const void *wv, const void *xv, int64_t n) {
    const kq_f16 *w = wv;
    const float *x = xv;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)kq_f16_to_f32(w[i]) * x[i];
    return (float)s;
}
static float vec_dot_bf16(const void *wv, const void *xv, int64_t n) {
    const kq_bf16 *w = wv;
    const float *x = xv;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)kq_bf16_to_f32(w[i]) * x[i];
    return (float)s;
}

/* Every dtype's scalar rows: its reference dot per (output, token). */
static void rows_ref(const kq_mm_args *a, int64_t o0, int64_t o1) {
    float (*const dot)(const void *, const void *, int64_t) = a->tr->vec_dot;
    const int64_t nb = a->n_in / a->tr->blck;
    for (int64_t o = o0; o < o1; o++) {
        const void *w = a->W + (size_t)o * a->w_row_bytes;
        for (int64_t t = 0; t < a->n_tok; t++) a->Y[t * a->n_out + o] = dot(w, a->xq + (size_t)t * a->xq_row_bytes, nb);
    }
}

/* ---- the traits table ------------------------------------------------------------ */

static const kq_act_fmt act_f32 = {"F32", 1, 0, NULL};
static const kq_act_fmt act_f16 = {"F16", 1, sizeof(float), prep_f16};
static const kq_act_fmt act_bf16 = {"BF16", 1, sizeof(float), prep_bf16};
static const kq_act_fmt act_q8_0 = {"Q8_0", KQ_QK8_0, sizeof(kq_block_q8_0), prep_q8_0};
static const kq_act_fmt act_q8_1 = {"Q8_1", KQ_QK8_0, sizeof(kq_block_q8_1), prep_q8_1};
static const kq_act_fmt act_q8_K = {"Q8_K", KQ_QK_K, sizeof(kq_block_q8_K), prep_q8_K};

#define TRAITS(DT, NAME, BLCK, BLOCK, QUANT, KV, ACT, SFX)                                                       \
    [GGUF_DTYPE_##DT] = {.dtype = GGUF_DTYPE_##DT, .name = NAME, .blck = BLCK, .bytes = sizeof(BLOCK),           \
                         .quantized = QUANT, .kv = KV, .act = &act_##ACT, .from_float = quantize_##SFX,          \
                         .to_float = dequantize_##SFX, .vec_dot = vec_dot_##SFX}
static const kq_traits traits[KQ_DTYPE_COUNT] = {
    TRAITS(F32, "F32", 1, float, false, true, f32, f32),
    TRAITS(F16, "F16", 1, kq_f16, false, true, f16, f16),
    TRAITS(BF16, "BF16", 1, kq_bf16, false, false, bf16, bf16),
    TRAITS(Q8_0, "Q8_0", KQ_QK8_0, kq_block_q8_0, true, true, q8_0, q8_0),
    TRAITS(Q4_0, "Q4_0", KQ_QK4_0, kq_block_q4_0, true, false, q8_0, q4_0),
    TRAITS(Q5_0, "Q5_0", KQ_QK4_0, kq_block_q5_0, true, false, q8_0, q5_0),
    TRAITS(Q5_1, "Q5_1", KQ_QK4_0, kq_block_q5_1, true, false, q8_1, q5_1),
    TRAITS(IQ4_NL, "IQ4_NL", KQ_QK4_NL, kq_block_iq4_nl, true, false, q8_0, iq4_nl),
    TRAITS(Q2_K, "Q2_K", KQ_QK_K, kq_block_q2_K, true, false, q8_K, q2_K),
    TRAITS(Q3_K, "Q3_K", KQ_QK_K, kq_block_q3_K, true, false, q8_K, q3_K),
    TRAITS(Q4_K, "Q4_K", KQ_QK_K, kq_block_q4_K, true, false, q8_K, q4_K),
    TRAITS(Q5_K, "Q5_K", KQ_QK_K, kq_block_q5_K, true, false, q8_K, q5_K),
    TRAITS(Q6_K, "Q6_K", KQ_QK_K, kq_block_q6_K, true, false, q8_K, q6_K),
    TRAITS(IQ4_XS, "IQ4_XS", KQ_QK_K, kq_block_iq4_xs, true, false, q8_K, iq4_xs),
};
#undef TRAITS

const kq_traits *kq_traits_of(uint32_t dtype) {
    return dtype < KQ_DTYPE_COUNT && traits[dtype].name ? &traits[dtype] : NULL;
}

int kq_quantize_row(uint32_t dtype, const float *src, void *dst, int64_t n) {
    const kq_traits *tr = kq_traits_of(dtype);
    if (!tr) return SW_ERR_UNSUPPORTED;
    if (n < 0 || n % tr->blck) return SW_ERR_ARG;
    tr->from_float(src, dst, n);
    return SW_OK;
}

void kq_dequantize_row(uint32_t dtype, const void *src, float *dst, int64_t n) {
    const kq_traits *tr = kq_traits_of(dtype);
    if (tr) tr->to_float(src, dst, n);
    else memset(dst, 0, (size_t)n * sizeof *dst);
}

/* ---- scalar vector ops ----------------------------------------------------------- */

static float dot_f32(const float *a, const float *b, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static float dot_f16(const kq_f16 *k, const float *q, int64_t n) {
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += kq_f16_to_f32(k[i]) * q[i];
    return s;
}
static void axpy_f32(float *y, float a, const float *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * v[i];
}
static void axpy_f16(float *y, float a, const kq_f16 *v, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * kq_f16_to_f32(v[i]);
}
static void store_f16(kq_f16 *dst, const float *src, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = kq_f32_to_f16(src[i]);
}
static float dot_q8_0(const kq_block_q8_0 *k, const float *q, int64_t n) {
    float s = 0;
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, q += KQ_QK8_0) {
        float sb = 0;
        for (int j = 0; j < KQ_QK8_0; j++) sb += (float)k[b].qs[j] * q[j];
        s += kq_f16_to_f32(k[b].d) * sb;
    }
    return s;
}
static void axpy_q8_0(float *y, float a, const kq_block_q8_0 *v, int64_t n) {
    for (int64_t b = 0; b < n / KQ_QK8_0; b++, y += KQ_QK8_0) {
        const float ad = a * kq_f16_to_f32(v[b].d);
        for (int j = 0; j < KQ_QK8_0; j++) y[j] += ad * (float)v[b].qs[j];
    }
}
static void rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    const float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}
static void softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = fmaxf(max, x[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}
static void silu_mul(float *out, const float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}
static void add(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void kq_ops_scalar(kq_ops *ops) {
    memset(ops, 0, sizeof *ops);
    ops->name = "scalar";
    for (uint32_t dt = 0; dt < KQ_DTYPE_COUNT; dt++)
        if (traits[dt].name) ops->mm[dt] = (kq_mm_impl){.prep = traits[dt].act->prep, .rows = rows_ref};
    ops->dot_f32 = dot_f32;
    ops->dot_f16 = dot_f16;
    ops->axpy_f32 = axpy_f32;
    ops->axpy_f16 = axpy_f16;
    ops->store_f16 = store_f16;
    ops->dot_q8_0 = dot_q8_0;
    ops->axpy_q8_0 = axpy_q8_0;
    ops->rmsnorm = rmsnorm;
    ops->softmax = softmax;
    ops->silu_mul = silu_mul;
    ops->add = add;
}
