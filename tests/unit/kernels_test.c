/* kernels_test.c — checks the compute kernels against independent computations:
 * F16/BF16 conversions against exact values and nearest-value searches,
 * quantize->dequantize error bounds per format, the scalar reference matmul against a
 * double-precision dot of the dequantized operands, and then every ISA this CPU has
 * (scalar, avx2, avx512, neon) against the reference: matmul for every dtype over awkward
 * shapes, the vector ops, RoPE, and the K/V helpers. */
#include "t.h"
#include "kernels/kq_internal.h"
#include <math.h>
#include <stdint.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd_u32(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}
static float rnd_unit(void) { return (float)(rnd_u32() & 0xffffff) / 16777216.0f * 2.0f - 1.0f; } /* [-1, 1) */
static float rnd_normalish(void) { return (rnd_unit() + rnd_unit() + rnd_unit()) * 0.8f; }

static void fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = rnd_normalish() * scale;
}

static float max_abs(const float *x, int64_t n) {
    float m = 0;
    for (int64_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static const uint32_t all_dtypes[] = {GGUF_DTYPE_F32, GGUF_DTYPE_F16, GGUF_DTYPE_BF16, GGUF_DTYPE_Q8_0,
                                      GGUF_DTYPE_Q4_0, GGUF_DTYPE_Q4_K, GGUF_DTYPE_Q6_K, GGUF_DTYPE_Q5_0,
                                      GGUF_DTYPE_Q5_1, GGUF_DTYPE_Q5_K, GGUF_DTYPE_Q2_K, GGUF_DTYPE_Q3_K,
                                      GGUF_DTYPE_IQ4_NL, GGUF_DTYPE_IQ4_XS};
#define N_DTYPES (int)(sizeof all_dtypes / sizeof all_dtypes[0])

static const char *dname(uint32_t d) {
    switch (d) {
    case GGUF_DTYPE_F32: return "F32";
    case GGUF_DTYPE_F16: return "F16";
    case GGUF_DTYPE_BF16: return "BF16";
    case GGUF_DTYPE_Q8_0: return "Q8_0";
    case GGUF_DTYPE_Q4_0: return "Q4_0";
    case GGUF_DTYPE_Q4_K: return "Q4_K";
    case GGUF_DTYPE_Q6_K: return "Q6_K";
    case GGUF_DTYPE_Q5_0: return "Q5_0";
    case GGUF_DTYPE_Q5_1: return "Q5_1";
    case GGUF_DTYPE_Q5_K: return "Q5_K";
    case GGUF_DTYPE_Q2_K: return "Q2_K";
    case GGUF_DTYPE_Q3_K: return "Q3_K";
    case GGUF_DTYPE_IQ4_NL: return "IQ4_NL";
    case GGUF_DTYPE_IQ4_XS: return "IQ4_XS";
    default: return "?";
    }
}

static size_t row_bytes(uint32_t dtype, int64_t n) { return (size_t)(n / kq_block_elems(dtype) * kq_block_bytes(dtype)); }

/* ---- conversions ------------------------------------------------------------------- */

/* Exact value of a half (independent of the code under test). */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* Nearest half to f by binary search over the ordered positive halves (ties to even). */
static uint16_t f16_bits_ref(float f) {
    const uint16_t sign = signbit(f) ? 0x8000 : 0;
    const double a = fabs((double)f);
    if (a >= 65520.0) return sign | 0x7c00;
    uint16_t lo = 0, hi = 0x7bff;
    while (lo < hi) {
        uint16_t mid = (uint16_t)((lo + hi + 1) / 2);
        if (half_value(mid) <= a) lo = mid;
        else hi = (uint16_t)(mid - 1);
    }
    if (lo == 0x7bff) return sign | lo;
    const double dl = a - half_value(lo), dh = half_value((uint16_t)(lo + 1)) - a;
    const uint16_t r = dl < dh ? lo : dh < dl ? (uint16_t)(lo + 1) : (lo & 1) ? (uint16_t)(lo + 1) : lo;
    return sign | r;
}

/* Nearest bf16 to f by search (ties to even); NaN handled by the caller. */
static uint16_t bf16_bits_ref(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dl = fabs((double)f - (double)kq_bf16_to_f32(lo));
    double dh = fabs((double)f - (double)kq_bf16_to_f32(hi));
    if ((hi & 0x7f80) == 0x7f80 && (hi & 0x7f) == 0) dh = fabs((double)f) < 3.3961e38 ? INFINITY : dh; /* rounding to inf */
    if ((u & 0xffff) == 0) return lo;
    if (dl < dh) return lo;
    if (dh < dl) return hi;
    return (lo & 1) ? hi : lo;
}

static void test_conversions(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kq_f16_to_f32((kq_f16)h);
        double want = half_value((uint16_t)h);
        bool nan = isnan(want);
        if (nan ? !isnan(f) : ((double)f != want || !signbit(f) != !signbit(want))) bad++;
        if (!nan && kq_f32_to_f16(f) != h) bad++;
    }
    T_CHECK(bad == 0, "%d half values do not round-trip", bad);
    bad = 0;
    for (int i = 0; i < 2000000; i++) {
        uint32_t u = rnd_u32() ^ (rnd_u32() << 21);
        if (i % 4 == 0) u = (u & 0x807fffff) | ((uint32_t)(100 + rnd_u32() % 60) << 23); /* near half range */
        if (i % 4 == 1) u = (u & 0x80001fff) | 0x1000 | ((uint32_t)(103 + rnd_u32() % 40) << 23); /* near ties */
        float f;
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        if (kq_f32_to_f16(f) != f16_bits_ref(f)) {
            if (bad++ < 3) fprintf(stderr, "f16(%a) = %04x want %04x\n", f, kq_f32_to_f16(f), f16_bits_ref(f));
        }
        if (fabsf(f) < 3.38e38f && kq_f32_to_bf16(f) != bf16_bits_ref(f)) {
            if (bad++ < 6) fprintf(stderr, "bf16(%a) = %04x want %04x\n", f, kq_f32_to_bf16(f), bf16_bits_ref(f));
        }
    }
    T_CHECK(bad == 0, "%d conversions differ from the reference rounding", bad);
    float nanf_ = NAN, inf = INFINITY;
    T_CHECK(isnan(kq_f16_to_f32(kq_f32_to_f16(nanf_))), "NaN -> f16 stays NaN");
    T_CHECK(isnan(kq_bf16_to_f32(kq_f32_to_bf16(nanf_))), "NaN -> bf16 stays NaN");
    T_EQ_INT(kq_f32_to_f16(inf), 0x7c00);
    T_EQ_INT(kq_f32_to_f16(65520.f), 0x7c00);
    T_EQ_INT(kq_f32_to_f16(65519.f), 0x7bff);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kq_bf16_to_f32((kq_bf16)h);
        if (!isnan(f) && kq_f32_to_bf16(f) != h) bad++;
    }
    T_CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
}

/* ---- quantize / dequantize error ------------------------------------------------------ */

static void test_roundtrip(void) {
    const int64_t n = 4096;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    void *q = malloc(n * 4);
    /* relative RMS error bound per format for smooth random data */
    const struct { uint32_t dtype; double bound; } cases[] = {
        {GGUF_DTYPE_F32, 0}, {GGUF_DTYPE_F16, 6e-4}, {GGUF_DTYPE_BF16, 4e-3}, {GGUF_DTYPE_Q8_0, 0.01},
        {GGUF_DTYPE_Q4_0, 0.12}, {GGUF_DTYPE_Q4_K, 0.09}, {GGUF_DTYPE_Q6_K, 0.025},
        {GGUF_DTYPE_Q5_0, 0.06}, {GGUF_DTYPE_Q5_1, 0.05}, {GGUF_DTYPE_Q5_K, 0.045},
        /* 2-bit: 4 levels + min per 16 (a Lloyd-Max 4-level quantizer of a Gaussian: 0.34);
         * 3-bit: 8 levels per 16 (optimal uniform 8 levels: 0.19); IQ4: 16 levels per 32 */
        {GGUF_DTYPE_Q2_K, 0.32}, {GGUF_DTYPE_Q3_K, 0.17}, {GGUF_DTYPE_IQ4_NL, 0.085}, {GGUF_DTYPE_IQ4_XS, 0.085},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fill(x, n, 0.5f);
        x[7] = 3.0f; /* an outlier */
        T_EQ_INT(kq_quantize_row(cases[c].dtype, x, q, n), SW_OK);
        kq_dequantize_row(cases[c].dtype, q, y, n);
        double se = 0, sx = 0, worst = 0;
        for (int64_t i = 0; i < n; i++) {
            se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            sx += (double)x[i] * x[i];
            worst = fmax(worst, fabs((double)x[i] - y[i]));
        }
        double rel = sqrt(se / sx);
        fprintf(stderr, "%s: relative RMS error %.4f\n", dname(cases[c].dtype), rel);
        T_CHECK(rel <= cases[c].bound, "%s: relative RMS error %g > %g", dname(cases[c].dtype), rel, cases[c].bound);
        if (cases[c].dtype == GGUF_DTYPE_Q8_0) {
            /* per element: at most half a step of its block (+ fp16 scale rounding) */
            for (int64_t b = 0; b < n / 32; b++) {
                float am = max_abs(x + 32 * b, 32);
                for (int j = 0; j < 32; j++)
                    if (fabsf(x[32 * b + j] - y[32 * b + j]) > am / 127 * 0.5f * 1.01f + am * 1e-3f) worst = -1;
            }
            T_CHECK(worst >= 0, "Q8_0 element error above half a step");
        }
    }
    /* all-zero input: exact zeros back (no NaN from a zero scale) */
    memset(x, 0, n * 4);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        kq_quantize_row(cases[c].dtype, x, q, n);
        kq_dequantize_row(cases[c].dtype, q, y, n);
        T_CHECK(max_abs(y, n) == 0.0f, "%s: zeros do not round-trip", dname(cases[c].dtype));
    }
    T_EQ_INT(kq_quantize_row(GGUF_DTYPE_Q4_K, x, q, 100), SW_ERR_ARG);
    T_EQ_INT(kq_quantize_row(GGUF_DTYPE_Q5_K, x, q, 100), SW_ERR_ARG);
    T_EQ_INT(kq_quantize_row(GGUF_DTYPE_Q3_K, x, q, 100), SW_ERR_ARG);
    T_EQ_INT(kq_quantize_row(GGUF_DTYPE_IQ4_NL, x, q, 48), SW_ERR_ARG);
    T_EQ_INT(kq_quantize_row(GGUF_DTYPE_Q4_1, x, q, 256), SW_ERR_UNSUPPORTED);
    free(x);
    free(y);
    free(q);
}

/* Q4_K / Q6_K layout spot checks: a block built by hand decodes as ggml documents. */
static void test_layouts(void) {
    kq_block_q4_K b4;
    memset(&b4, 0, sizeof b4);
    b4.d = kq_f32_to_f16(0.5f);
    b4.dmin = kq_f32_to_f16(0.25f);
    /* sub-block 1: scale 3, min 2 (6-bit fields in bytes 1 and 5); sub-block 6: scale 37, min 41 */
    b4.scales[1] = 3;
    b4.scales[5] = 2;
    b4.scales[10] = (37 & 0xF) | ((41 & 0xF) << 4);
    b4.scales[2] |= (37 >> 4) << 6;
    b4.scales[6] |= (41 >> 4) << 6;
    b4.qs[5] = 0x90;        /* element 32+5 (high nibble of group 0) = 9 */
    b4.qs[3 * 32 + 7] = 0x0c; /* element 192+7 (low nibble of group 3 -> sub-block 6) = 12 */
    float y[256];
    kq_dequantize_row(GGUF_DTYPE_Q4_K, &b4, y, 256);
    T_CHECK(fabsf(y[37] - (0.5f * 3 * 9 - 0.25f * 2)) < 1e-6f, "q4_K elem 37 = %g", y[37]);
    T_CHECK(fabsf(y[199] - (0.5f * 37 * 12 - 0.25f * 41)) < 1e-6f, "q4_K elem 199 = %g", y[199]);
    T_CHECK(fabsf(y[200] - (-0.25f * 41)) < 1e-6f, "q4_K elem 200 = %g", y[200]);

    kq_block_q6_K b6;
    memset(&b6, 0, sizeof b6);
    b6.d = kq_f32_to_f16(0.125f);
    for (int i = 0; i < 16; i++) b6.scales[i] = (int8_t)(i - 5);
    /* element 128+64+3: second half, ql[64+3] high nibble, qh[32+3] bits 4..5; sub-block 12 */
    b6.ql[64 + 3] = 0x70;
    b6.qh[32 + 3] = 2 << 4;
    kq_dequantize_row(GGUF_DTYPE_Q6_K, &b6, y, 256);
    T_CHECK(fabsf(y[195] - 0.125f * (12 - 5) * ((7 | (2 << 4)) - 32)) < 1e-6f, "q6_K elem 195 = %g", y[195]);
    T_CHECK(fabsf(y[0] - 0.125f * (0 - 5) * -32) < 1e-6f, "q6_K elem 0 = %g", y[0]);
}

/* Q5_0 / Q5_1 / Q5_K layout spot checks (ggml-common.h's bit positions). */
static void test_layouts_q5(void) {
    float y[256];
    kq_block_q5_0 b0;
    memset(&b0, 0, sizeof b0);
    b0.d = kq_f32_to_f16(0.5f);
    b0.qs[3] = 0x7a;   /* element 3: low nibble 10; element 19: high nibble 7 */
    b0.qh[2] = 1 << 3; /* bit 19: element 19 gets +16 */
    kq_dequantize_row(GGUF_DTYPE_Q5_0, &b0, y, 32);
    T_CHECK(y[3] == 0.5f * (10 - 16) && y[19] == 0.5f * (7 + 16 - 16) && y[0] == 0.5f * -16, "q5_0 elems 3/19/0 = %g %g %g",
            y[3], y[19], y[0]);
    kq_block_q5_1 b1;
    memset(&b1, 0, sizeof b1);
    b1.d = kq_f32_to_f16(0.25f);
    b1.m = kq_f32_to_f16(-1.0f);
    b1.qs[15] = 0x05;  /* element 15 = 5 | 16 (bit 15), element 31 = 0 */
    b1.qh[1] = 0x80;
    kq_dequantize_row(GGUF_DTYPE_Q5_1, &b1, y, 32);
    T_CHECK(y[15] == 0.25f * 21 - 1.0f && y[31] == -1.0f, "q5_1 elems 15/31 = %g %g", y[15], y[31]);
    kq_block_q5_K b5;
    memset(&b5, 0, sizeof b5);
    b5.d = kq_f32_to_f16(0.5f);
    b5.dmin = kq_f32_to_f16(0.25f);
    b5.scales[1] = 3; /* sub-block 1 (elements 32..63): scale 3, min 2 */
    b5.scales[5] = 2;
    b5.scales[10] = (37 & 0xF) | ((41 & 0xF) << 4); /* sub-block 6 (192..223): scale 37, min 41 */
    b5.scales[2] |= (37 >> 4) << 6;
    b5.scales[6] |= (41 >> 4) << 6;
    b5.qs[5] = 0x90;          /* element 37 low bits 9 */
    b5.qh[5] = 1 << 1;        /* element 32+5: bit 1 -> +16 */
    b5.qs[3 * 32 + 7] = 0x0c; /* element 199 low bits 12 */
    b5.qh[7] = 1 << 6;        /* element 192+7: bit 6 -> +16 */
    kq_dequantize_row(GGUF_DTYPE_Q5_K, &b5, y, 256);
    T_CHECK(fabsf(y[37] - (0.5f * 3 * 25 - 0.25f * 2)) < 1e-6f, "q5_K elem 37 = %g", y[37]);
    T_CHECK(fabsf(y[199] - (0.5f * 37 * 28 - 0.25f * 41)) < 1e-6f, "q5_K elem 199 = %g", y[199]);
    T_CHECK(fabsf(y[7] - 0) < 1e-6f, "q5_K elem 7 = %g (bit 6 belongs to element 199)", y[7]);
}

/* Q2_K / Q3_K / IQ4_NL / IQ4_XS spot checks: blocks built by hand from ggml-common.h's
 * layout decode to the documented values (levels of IQ4 written out here). */
static void test_layouts_new(void) {
    static const int8_t lv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    float y[256];
    kq_block_q2_K b2;
    memset(&b2, 0, sizeof b2);
    b2.d = kq_f32_to_f16(0.5f);
    b2.dmin = kq_f32_to_f16(0.25f);
    b2.scales[5] = 0x37;  /* sub-block 5 (elements 80..95): scale 7, min 3 */
    b2.qs[16] = 2 << 4;   /* element 80 = 128*0 + 32*2 + 16: bits 4-5 of qs[16] */
    b2.scales[9] = 0x21;  /* sub-block 9 (144..159): scale 1, min 2 */
    b2.qs[48] = 3;        /* element 144 = 128 + 16: bits 0-1 of qs[32+16] */
    kq_dequantize_row(GGUF_DTYPE_Q2_K, &b2, y, 256);
    T_CHECK(y[80] == 0.5f * 7 * 2 - 0.25f * 3 && y[81] == -0.25f * 3 && y[16] == 0 && y[144] == 0.5f - 0.5f + 1.0f,
            "q2_K elems 80/81/16/144 = %g %g %g %g", y[80], y[81], y[16], y[144]);
    kq_block_q3_K b3;
    memset(&b3, 0, sizeof b3);
    b3.d = kq_f32_to_f16(0.5f);
    b3.scales[2] = 13 << 4;      /* sub-block 10: low nibble 13 (high nibble of byte 10-8) */
    b3.scales[10] = 2 << 4;      /* top bits 2 (bits 4-5 of byte 8 + 10%4) -> field 45, scale 13 */
    b3.qs[32] = 3 << 2;          /* element 160 = 128 + 32*1: bits 2-3 of qs[32] = 3 */
    b3.hmask[0] = 1 << 5;        /* element 160 = 32*5: bit 5 of hmask[0] set -> code 3 */
    kq_dequantize_row(GGUF_DTYPE_Q3_K, &b3, y, 256);
    T_CHECK(y[160] == 0.5f * 13 * 3 && y[161] == 0.5f * 13 * -4 && y[0] == 0.5f * -32 * -4 && y[176] == 0.5f * -32 * -4,
            "q3_K elems 160/161/0/176 = %g %g %g %g", y[160], y[161], y[0], y[176]);
    kq_block_iq4_nl bn;
    memset(&bn, 0, sizeof bn);
    bn.d = kq_f32_to_f16(0.5f);
    bn.qs[3] = 0xF2;
    kq_dequantize_row(GGUF_DTYPE_IQ4_NL, &bn, y, 32);
    T_CHECK(y[3] == 0.5f * lv[2] && y[19] == 0.5f * lv[15] && y[0] == 0.5f * lv[0], "iq4_nl elems 3/19/0 = %g %g %g", y[3], y[19], y[0]);
    kq_block_iq4_xs bx;
    memset(&bx, 0, sizeof bx);
    bx.d = kq_f32_to_f16(0.25f);
    bx.scales_l[2] = 8 << 4;     /* sub-block 5: low 4 bits 8 */
    bx.scales_h = 2 << 10;       /* top bits 2 -> field 40, scale 8 */
    bx.qs[16 * 5 + 7] = 0x9 | 0xE << 4;
    kq_dequantize_row(GGUF_DTYPE_IQ4_XS, &bx, y, 256);
    T_CHECK(y[167] == 0.25f * 8 * lv[9] && y[183] == 0.25f * 8 * lv[14] && y[0] == 0.25f * -32 * lv[0],
            "iq4_xs elems 167/183/0 = %g %g %g", y[167], y[183], y[0]);
}

/* The IQ4 quantizers search the scale: never worse (x²-weighted, as they optimise) than
 * the plain choice d = max/-127 with each value rounded to its nearest level. */
static void test_iq4_vs_plain(void) {
    static const int8_t lv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    float x[32], y[32];
    kq_block_iq4_nl b;
    int worse = 0;
    for (int trial = 0; trial < 200; trial++) {
        fill(x, 32, 1.0f);
        float max = 0;
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > fabsf(max)) max = x[j];
        const float d = max / -127.f;
        double e_plain = 0, e_q = 0;
        kq_quantize_row(GGUF_DTYPE_IQ4_NL, x, &b, 32);
        kq_dequantize_row(GGUF_DTYPE_IQ4_NL, &b, y, 32);
        for (int j = 0; j < 32; j++) {
            double best = INFINITY;
            for (int k = 0; k < 16; k++) best = fmin(best, fabs((double)x[j] - (double)d * lv[k]));
            e_plain += (double)x[j] * x[j] * best * best;
            e_q += (double)x[j] * x[j] * ((double)x[j] - y[j]) * ((double)x[j] - y[j]);
        }
        if (e_q > e_plain * 1.02 + 1e-9) worse++; /* 2%: the fp16 rounding of the stored scale */
    }
    T_CHECK(worse == 0, "iq4_nl: %d of 200 blocks worse than the plain scale", worse);
}

/* ---- reference matmul vs double precision ------------------------------------------- */

/* Dequantized activations exactly as the reference quantized them. */
static void act_dequant(uint32_t dtype, const float *x, float *out, int64_t n) {
    switch (dtype) {
    case GGUF_DTYPE_Q5_1: {
        kq_block_q8_1 *b = malloc((size_t)n / 32 * sizeof *b);
        kq_quantize_q8_1_act(x, b, n);
        for (int64_t i = 0; i < n; i++) out[i] = kq_f16_to_f32(b[i / 32].d) * b[i / 32].qs[i % 32];
        free(b);
        break;
    }
    case GGUF_DTYPE_Q8_0: case GGUF_DTYPE_Q4_0: case GGUF_DTYPE_Q5_0: case GGUF_DTYPE_IQ4_NL: {
        kq_block_q8_0 *b = malloc((size_t)n / 32 * sizeof *b);
        kq_quantize_q8_0_act(x, b, n);
        kq_dequantize_row(GGUF_DTYPE_Q8_0, b, out, n);
        free(b);
        break;
    }
    case GGUF_DTYPE_Q4_K: case GGUF_DTYPE_Q5_K: case GGUF_DTYPE_Q6_K:
    case GGUF_DTYPE_Q2_K: case GGUF_DTYPE_Q3_K: case GGUF_DTYPE_IQ4_XS: {
        kq_block_q8_K *b = malloc((size_t)n / 256 * sizeof *b);
        kq_quantize_q8_K(x, b, n);
        for (int64_t i = 0; i < n; i++) out[i] = b[i / 256].d * b[i / 256].qs[i % 256];
        free(b);
        break;
    }
    case GGUF_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) out[i] = kq_f16_to_f32(kq_f32_to_f16(x[i]));
        break;
    case GGUF_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) out[i] = kq_bf16_to_f32(kq_f32_to_bf16(x[i]));
        break;
    default: memcpy(out, x, (size_t)n * 4);
    }
}

/* Q5_1 · Q8_1 as ggml defines it, in double: per block d_w·d_x·Σ code·q + m_w·s_x, where
 * s_x = fp16(d·Σq) carries the activation scale before its fp16 rounding (so the min term
 * is not Σ m_w · dequantized x). Codes decoded here from the documented bit layout. */
static double q5_1_dot_double(const kq_block_q5_1 *w, const float *x, int64_t n) {
    kq_block_q8_1 *b = malloc((size_t)n / 32 * sizeof *b);
    kq_quantize_q8_1_act(x, b, n);
    double s = 0;
    for (int64_t k = 0; k < n / 32; k++) {
        const uint32_t qh = (uint32_t)w[k].qh[0] | (uint32_t)w[k].qh[1] << 8 | (uint32_t)w[k].qh[2] << 16 | (uint32_t)w[k].qh[3] << 24;
        double si = 0;
        for (int j = 0; j < 32; j++) {
            const int nib = j < 16 ? w[k].qs[j] & 15 : w[k].qs[j - 16] >> 4;
            si += (double)(nib | (int)((qh >> j) & 1) << 4) * b[k].qs[j];
        }
        s += (double)kq_f16_to_f32(w[k].d) * kq_f16_to_f32(b[k].d) * si + (double)kq_f16_to_f32(w[k].m) * kq_f16_to_f32(b[k].s);
    }
    free(b);
    return s;
}

static void test_ref_vs_double(void) {
    const int64_t n_in = 512, n_out = 19, n_tok = 3;
    float *wf = malloc(n_in * n_out * 4), *x = malloc(n_in * n_tok * 4), *y = malloc(n_out * n_tok * 4);
    float *wd = malloc(n_in * 4), *xd = malloc(n_in * 4);
    void *w = malloc(n_in * n_out * 4);
    void *scratch = aligned_alloc(64, (kq_matmul_scratch_bytes(GGUF_DTYPE_F32, n_in, n_tok) + 4095) & ~(size_t)4095);
    fill(wf, n_in * n_out, 0.1f);
    fill(x, n_in * n_tok, 1.0f);
    for (int d = 0; d < N_DTYPES; d++) {
        uint32_t dt = all_dtypes[d];
        for (int64_t o = 0; o < n_out; o++) kq_quantize_row(dt, wf + o * n_in, (uint8_t *)w + o * row_bytes(dt, n_in), n_in);
        kq_matmul_ref(dt, w, n_out, n_in, x, n_tok, y, scratch);
        double worst = 0, scale = 0;
        for (int64_t t = 0; t < n_tok; t++) {
            act_dequant(dt, x + t * n_in, xd, n_in);
            for (int64_t o = 0; o < n_out; o++) {
                kq_dequantize_row(dt, (uint8_t *)w + o * row_bytes(dt, n_in), wd, n_in);
                double s = 0, sa = 0;
                for (int64_t i = 0; i < n_in; i++) {
                    s += (double)wd[i] * xd[i];
                    sa += fabs((double)wd[i] * xd[i]);
                }
                if (dt == GGUF_DTYPE_Q5_1) s = q5_1_dot_double((const kq_block_q5_1 *)((uint8_t *)w + o * row_bytes(dt, n_in)), x + t * n_in, n_in);
                worst = fmax(worst, fabs(s - y[t * n_out + o]) / sa);
                scale = fmax(scale, fabs(s));
            }
        }
        T_CHECK(worst < 2e-6 && scale > 0.1, "%s: reference matmul vs double: rel err %g", dname(dt), worst);
    }
    free(wf); free(x); free(y); free(wd); free(xd); free(w); free(scratch);
}

/* ---- every ISA vs the reference ---------------------------------------------------- */

static void test_matmul_isa(const kq_ops *ops) {
    const int64_t toks[] = {1, 2, 3, 5, 8, 16, 17, 32, 48, 64};
    /* 352: 11 blocks of 32 (odd, not a multiple of 4); 4100 (float weights only): a tail
     * of 4 columns and token blocks that do not divide 64; 2304: 9 K-quant blocks / 72
     * blocks of 32, more than one (and a partial) chunk of the gemm paths' block chunks;
     * 7680: rows of over 4 KiB in every quantized type (AVX2's single-token GEMV) */
    const int64_t n_ins[] = {256, 768, 352, 4100, 2304, 7680};
    const int64_t n_out = 37;
    for (int d = 0; d < N_DTYPES; d++) {
        uint32_t dt = all_dtypes[d];
        for (size_t ii = 0; ii < sizeof n_ins / sizeof n_ins[0]; ii++) {
            int64_t n_in = n_ins[ii];
            if (n_in % kq_block_elems(dt)) continue;
            float *wf = malloc(n_in * n_out * 4), *x = malloc(n_in * 64 * 4);
            float *y = malloc(n_out * 64 * 4), *yr = malloc(n_out * 64 * 4);
            void *w = malloc(n_in * n_out * 4);
            size_t sb = kq_matmul_scratch_bytes(dt, n_in, 64);
            void *scratch = aligned_alloc(64, (sb + 63) & ~(size_t)63);
            fill(wf, n_in * n_out, 0.05f);
            fill(x, n_in * 64, 1.0f);
            for (int i = 0; i < 40; i++) x[rnd_u32() % (n_in * 64)] *= 8; /* outliers */
            memset(x + 5 * n_in, 0, (size_t)n_in * 4);                     /* an all-zero token */
            for (int64_t o = 0; o < n_out; o++) kq_quantize_row(dt, wf + o * n_in, (uint8_t *)w + o * row_bytes(dt, n_in), n_in);
            for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
                int64_t nt = toks[ti];
                kq_matmul_ref(dt, w, n_out, n_in, x, nt, yr, scratch);
                for (int64_t i = 0; i < n_out * nt; i++) y[i] = NAN;
                kq_matmul_ops(ops, dt, w, n_out, n_in, x, nt, y, scratch);
                float m = max_abs(yr, n_out * nt);
                double worst = 0;
                for (int64_t i = 0; i < n_out * nt; i++) {
                    double e = fabs((double)y[i] - yr[i]);
                    if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                }
                T_CHECK(worst <= 2e-5 * m + 1e-7, "%s %s n_in=%lld n_tok=%lld: max err %g (max |y| %g)", ops->name, dname(dt),
                        (long long)n_in, (long long)nt, worst, m);
            }
            free(wf); free(x); free(y); free(yr); free(w); free(scratch);
        }
    }
}

static bool close_rel(const float *a, const float *b, int64_t n, float tol) {
    float m = fmaxf(max_abs(b, n), 1e-30f);
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= tol * m)) return false;
    return true;
}

/* A token's products do not depend on how many tokens share the call while the row
 * kernels (not the gemm path) run: the single-token GEMV gives exactly the first token's
 * result of a 2- and a 3-token call, for the dtypes whose GEMV promises it (Q8_0, Q4_0:
 * same integer lanes and float operations) — decode of one sequence alone or in a small
 * batch yields the same logits. */
static void test_gemv_batch_exact(const kq_ops *ops) {
    const uint32_t dts[] = {GGUF_DTYPE_Q8_0, GGUF_DTYPE_Q4_0};
    const int64_t n_in = 8192, n_out = 23; /* long rows: AVX2 runs its GEMV kernels on them */
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        const uint32_t dt = dts[d];
        float *wf = malloc(n_in * n_out * 4), *x = malloc(n_in * 3 * 4), y1[23], y3[3 * 23];
        void *w = malloc(row_bytes(dt, n_in) * n_out);
        void *scratch = malloc(kq_matmul_scratch_bytes(dt, n_in, 3));
        fill(wf, n_in * n_out, 0.05f);
        fill(x, n_in * 3, 1.0f);
        for (int64_t o = 0; o < n_out; o++) kq_quantize_row(dt, wf + o * n_in, (uint8_t *)w + o * row_bytes(dt, n_in), n_in);
        kq_matmul_ops(ops, dt, w, n_out, n_in, x, 1, y1, scratch);
        for (int64_t nt = 2; nt <= 3; nt++) {
            if (ops->mm[dt].gemm && nt >= ops->mm[dt].gemm_min_tok) continue;
            kq_matmul_ops(ops, dt, w, n_out, n_in, x, nt, y3, scratch);
            T_CHECK(memcmp(y1, y3, sizeof y1) == 0, "%s %s: 1-token GEMV equals token 0 of a %lld-token call", ops->name,
                    dname(dt), (long long)nt);
        }
        free(wf); free(x); free(w); free(scratch);
    }
}

/* An ISA's activation prep that writes the standard layout (no prep_bytes of its own)
 * writes exactly the reference's blocks: random rows, rows whose largest magnitude comes
 * with both signs (the first one sets Q8_K's sign), rounding ties, zero blocks, huge and
 * tiny scales, and NaN / infinity in a block. */
static void test_prep_exact(const kq_ops *ops, const kq_ops *ref) {
    const int64_t n = 1024;
    float *x = malloc(n * 4);
    uint8_t *a = malloc(n * 4 + 256), *b = malloc(n * 4 + 256);
    for (int d = 0; d < N_DTYPES; d++) {
        const uint32_t dt = all_dtypes[d];
        const kq_mm_impl *im = &ops->mm[dt], *rm = &ref->mm[dt];
        if (!im->prep || im->prep_bytes || !rm->prep || n % kq_block_elems(dt)) continue;
        const size_t bytes = kq_act_row_bytes(dt, n);
        for (int c = 0; c < 8; c++) {
            fill(x, n, c == 3 ? 1e30f : c == 4 ? 1e-30f : 1.0f);
            if (c == 1)
                for (int64_t i = 0; i < n; i += 64) x[i + 7] = -(x[i + 40] = 5.0f); /* ±max, + first in a 32-block */
            if (c == 2)
                for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(rnd_u32() % 255) - 127) * 0.5f; /* halves: ties */
            if (c == 5) memset(x + 256, 0, 512 * 4);
            if (c == 6) { x[3] = NAN; x[300] = INFINITY; x[700] = -INFINITY; }
            if (c == 7)
                for (int64_t i = 0; i < n; i += 256) x[i + 100] = -(x[i + 10] = 3.0f); /* + first in a 256-block */
            memset(a, 0xAA, bytes);
            memset(b, 0x55, bytes);
            im->prep(x, a, n);
            rm->prep(x, b, n);
            T_CHECK(memcmp(a, b, bytes) == 0, "%s %s prep equals the reference's (case %d)", ops->name, dname(dt), c);
        }
    }
    free(x); free(a); free(b);
}

/* Degenerate shapes: one block per row, fewer rows than a tile, a 16-token group plus one. */
static void test_matmul_tiny(const kq_ops *ops) {
    for (int d = 0; d < N_DTYPES; d++) {
        const uint32_t dt = all_dtypes[d];
        const int64_t n_in = kq_block_elems(dt) == 1 ? 7 : kq_block_elems(dt), n_out = 3, n_tok = 17;
        float wf[3 * 256], x[17 * 256], y[17 * 3], yr[17 * 3];
        uint8_t w[3 * 1024];
        fill(wf, n_in * n_out, 0.1f);
        fill(x, n_in * n_tok, 1.0f);
        for (int64_t o = 0; o < n_out; o++) kq_quantize_row(dt, wf + o * n_in, w + o * row_bytes(dt, n_in), n_in);
        /* scratch deliberately misaligned: exactly kq_matmul_scratch_bytes from an odd address */
        size_t sb = kq_matmul_scratch_bytes(dt, n_in, n_tok);
        char *buf = malloc(sb + 8), *scratch = buf + 8;
        for (int64_t nt = 1; nt <= n_tok; nt += 16) {
            kq_matmul_ref(dt, w, n_out, n_in, x, nt, yr, scratch);
            kq_matmul_ops(ops, dt, w, n_out, n_in, x, nt, y, scratch);
            T_CHECK(close_rel(y, yr, n_out * nt, 2e-5f), "%s %s tiny shape n_tok=%lld", ops->name, dname(dt), (long long)nt);
        }
        free(buf);
    }
}

/* kq_matmul_n_team: three matrices of different heights sharing X (the threads' row
 * ranges straddle the matrix boundaries), each against its own reference. */
static void test_matmul_multi(const kq_ops *ops) {
    const int64_t n_outs[3] = {37, 5, 64}, toks[] = {2, 5, 17, 21}; /* the second call: 1, 4, 16, 20 */
    for (int d = 0; d < N_DTYPES; d++) {
        const uint32_t dt = all_dtypes[d];
        const int64_t n_in = kq_block_elems(dt) == 1 ? 100 : 2 * kq_block_elems(dt) * 3, n_tok = 21;
        float *x = malloc(n_in * n_tok * 4), *wf = malloc(n_in * 64 * 4), *yr = malloc(64 * n_tok * 4);
        void *w[3];
        float *y[3];
        for (int m = 0; m < 3; m++) {
            w[m] = malloc(n_in * n_outs[m] * 4);
            y[m] = malloc(n_outs[m] * n_tok * 4);
            fill(wf, n_in * n_outs[m], 0.05f);
            for (int64_t o = 0; o < n_outs[m]; o++) kq_quantize_row(dt, wf + o * n_in, (uint8_t *)w[m] + o * row_bytes(dt, n_in), n_in);
        }
        fill(x, n_in * n_tok, 1.0f);
        size_t sb = kq_matmul_scratch_bytes(dt, n_in, n_tok);
        void *scratch = malloc(sb);
        for (size_t ti = 0; ti < sizeof toks / sizeof toks[0]; ti++) {
            const int64_t nt = toks[ti];
            /* a region of 1, 2 and 3 threads calling it twice in a row (the second call
             * reuses the scratch the first one's slower threads may still read) */
            for (int team = 1; team <= 3 && nt >= 2; team++) {
                for (int m = 0; m < 3; m++)
                    for (int64_t i = 0; i < n_outs[m] * nt; i++) y[m][i] = NAN;
#pragma omp parallel num_threads(team)
                for (int rep = 0; rep < 2; rep++)
                    kq_matmul_n_team_ops(ops, 3, dt, (const void *const *)w, n_outs, n_in, x + rep * n_in, nt - rep, y, scratch);
                for (int m = 0; m < 3; m++) {
                    kq_matmul_ref(dt, w[m], n_outs[m], n_in, x + n_in, nt - 1, yr, scratch);
                    T_CHECK(close_rel(y[m], yr, n_outs[m] * (nt - 1), 2e-5f), "%s %s kq_matmul_n_team (%d threads) matrix %d n_tok=%lld",
                            ops->name, dname(dt), team, m, (long long)nt - 1);
                }
            }
        }
        for (int m = 0; m < 3; m++) { free(w[m]); free(y[m]); }
        free(x); free(wf); free(yr); free(scratch);
    }
}

/* Q8_0 K/V rows: the store's quantizer is bit-exact across ISAs and within half a step of
 * the input (plus d's F16 rounding); dot_q8_0 / axpy_q8_0 of each ISA match the scalar reference on random inputs,
 * and the reference matches the format's definition (Σ d·q·x) computed in double. */
static void test_kv_q8_0(const kq_ops *ops, const kq_ops *ref) {
    const int64_t sizes[] = {32, 64, 128, 256, 4096};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t n = sizes[si], nb = n / KQ_QK8_0;
        float *x = malloc(n * 4), *q = malloc(n * 4), *y0 = malloc(n * 4), *r1 = malloc(n * 4), *r2 = malloc(n * 4);
        kq_block_q8_0 *k1 = malloc(nb * sizeof *k1), *k2 = malloc(nb * sizeof *k2);
        for (int64_t b = 0; b < nb; b++) fill(x + b * KQ_QK8_0, KQ_QK8_0, b % 5 == 4 ? 0.0f : 0.05f * (float)(1 + b % 7));
        fill(q, n, 1.0f);
        fill(y0, n, 1.0f);
        kq_store_kv(GGUF_DTYPE_Q8_0, k1, x, n); /* whatever ISA is active: plain Q8_0 blocks */
        kq_quantize_q8_0_act(x, k2, n);
        T_CHECK(memcmp(k1, k2, nb * sizeof *k1) == 0, "%s q8_0 K/V store n=%lld", ops->name, (long long)n);
        double worst = 0, exact = 0;
        for (int64_t b = 0; b < nb; b++) {
            const double d = kq_f16_to_f32(k2[b].d);
            for (int j = 0; j < KQ_QK8_0; j++) {
                const int64_t i = b * KQ_QK8_0 + j;
                /* half a step, plus the F16 rounding of d (2^-11 relative) over up to 127 steps */
                worst = fmax(worst, fabs(d * k2[b].qs[j] - x[i]) - (0.5 * d + 127 * d / 2048 * 1.01));
                exact += d * k2[b].qs[j] * q[i];
            }
        }
        T_CHECK(worst <= 1e-6, "%s q8_0 store error beyond half a step: %g", ops->name, worst);
        const float d1 = ops->dot_q8_0(k2, q, n), d2 = ref->dot_q8_0(k2, q, n);
        T_CHECK(fabs(d2 - exact) <= 1e-5 * (double)n, "scalar dot_q8_0 n=%lld: %g vs exact %g", (long long)n, d2, exact);
        T_CHECK(fabsf(d1 - d2) <= 1e-5f * (float)n, "%s dot_q8_0 n=%lld: %g vs %g", ops->name, (long long)n, d1, d2);
        memcpy(r1, y0, n * 4);
        memcpy(r2, y0, n * 4);
        ops->axpy_q8_0(r1, 0.37f, k2, n);
        ref->axpy_q8_0(r2, 0.37f, k2, n);
        T_CHECK(close_rel(r1, r2, n, 1e-6f), "%s axpy_q8_0 n=%lld", ops->name, (long long)n);
        double aworst = 0;
        for (int64_t i = 0; i < n; i++)
            aworst = fmax(aworst, fabs(r2[i] - (y0[i] + 0.37 * kq_f16_to_f32(k2[i / KQ_QK8_0].d) * k2[i / KQ_QK8_0].qs[i % KQ_QK8_0])));
        T_CHECK(aworst <= 1e-5, "scalar axpy_q8_0 n=%lld off the definition by %g", (long long)n, aworst);
        free(x); free(q); free(y0); free(r1); free(r2); free(k1); free(k2);
    }
}

static void test_vector_ops(const kq_ops *ops, const kq_ops *ref) {
    const int64_t sizes[] = {1, 7, 16, 64, 100, 896, 4864};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        int64_t n = sizes[si];
        float *a = malloc(n * 4), *b = malloc(n * 4), *c = malloc(n * 4), *r1 = malloc(n * 4), *r2 = malloc(n * 4);
        kq_f16 *h = malloc(n * 2), *h2 = malloc(n * 2);
        fill(a, n, 3.0f);
        fill(b, n, 1.0f);
        fill(c, n, 1.0f);
        ops->rmsnorm(r1, a, b, n, 1e-6f);
        ref->rmsnorm(r2, a, b, n, 1e-6f);
        T_CHECK(close_rel(r1, r2, n, 1e-5f), "%s rmsnorm n=%lld", ops->name, (long long)n);
        memcpy(r1, a, n * 4);
        memcpy(r2, a, n * 4);
        ops->softmax(r1, n);
        ref->softmax(r2, n);
        T_CHECK(close_rel(r1, r2, n, 1e-5f), "%s softmax n=%lld", ops->name, (long long)n);
        for (int64_t i = 0; i < n; i++) a[i] *= 4; /* silu over a wide range */
        ops->silu_mul(r1, a, b, n);
        ref->silu_mul(r2, a, b, n);
        T_CHECK(close_rel(r1, r2, n, 1e-5f), "%s silu_mul n=%lld", ops->name, (long long)n);
        ops->add(r1, a, b, n);
        ref->add(r2, a, b, n);
        T_CHECK(memcmp(r1, r2, n * 4) == 0, "%s add n=%lld", ops->name, (long long)n);
        float d1 = ops->dot_f32(a, b, n), d2 = ref->dot_f32(a, b, n);
        T_CHECK(fabsf(d1 - d2) <= 1e-5f * (float)n * fmaxf(1, fabsf(d2)) / 16, "%s dot_f32 n=%lld: %g vs %g", ops->name,
                (long long)n, d1, d2);
        ops->store_f16(h, a, n);
        ref->store_f16(h2, a, n);
        T_CHECK(memcmp(h, h2, n * 2) == 0, "%s store_f16 n=%lld", ops->name, (long long)n);
        d1 = ops->dot_f16(h, b, n);
        d2 = ref->dot_f16(h, b, n);
        T_CHECK(fabsf(d1 - d2) <= 1e-5f * (float)n * fmaxf(1, fabsf(d2)) / 16, "%s dot_f16 n=%lld: %g vs %g", ops->name,
                (long long)n, d1, d2);
        memcpy(r1, c, n * 4);
        memcpy(r2, c, n * 4);
        ops->axpy_f16(r1, 0.37f, h, n);
        ref->axpy_f16(r2, 0.37f, h, n);
        T_CHECK(close_rel(r1, r2, n, 1e-6f), "%s axpy_f16 n=%lld", ops->name, (long long)n);
        memcpy(r1, c, n * 4);
        memcpy(r2, c, n * 4);
        ops->axpy_f32(r1, -1.5f, a, n);
        ref->axpy_f32(r2, -1.5f, a, n);
        T_CHECK(close_rel(r1, r2, n, 1e-6f), "%s axpy_f32 n=%lld", ops->name, (long long)n);
        free(a); free(b); free(c); free(r1); free(r2); free(h); free(h2);
    }
    /* softmax with -inf entries (masked positions) */
    float s[5] = {1, -INFINITY, 2, -INFINITY, 0.5f};
    ops->softmax(s, 5);
    T_CHECK(s[1] == 0 && s[3] == 0 && fabsf(s[0] + s[2] + s[4] - 1) < 1e-6f, "%s softmax with -inf", ops->name);
}

/* Public entry points (dispatched table) and RoPE against double-precision formulas. */
static void test_public_ops(void) {
    const int64_t hd = 64;
    float x[2 * 64], y[2 * 64];
    for (int neox = 0; neox < 2; neox++) {
        for (int64_t pos = 0; pos < 40; pos += 13) {
            fill(x, 2 * hd, 1.0f);
            memcpy(y, x, sizeof x);
            kq_rope_heads(y, 2, hd, pos, 10000.f, neox);
            double worst = 0;
            for (int h = 0; h < 2; h++)
                for (int64_t i = 0; i < hd / 2; i++) {
                    double ang = (double)pos * pow(10000.0, -2.0 * (double)i / (double)hd);
                    int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + hd / 2 : 2 * i + 1;
                    double x0 = x[h * hd + i0], x1 = x[h * hd + i1];
                    worst = fmax(worst, fabs(y[h * hd + i0] - (x0 * cos(ang) - x1 * sin(ang))));
                    worst = fmax(worst, fabs(y[h * hd + i1] - (x0 * sin(ang) + x1 * cos(ang))));
                }
            T_CHECK(worst < 2e-4, "rope neox=%d pos=%lld: err %g", neox, (long long)pos, worst);
            memcpy(y, x, sizeof x);
            kq_rope(y, hd, pos, 10000.f, neox);
            kq_rope(x, hd, pos, 10000.f, neox); /* single-head form agrees with itself on head 0 */
            T_CHECK(memcmp(x, y, hd * 4) == 0, "kq_rope deterministic");
        }
    }
    /* K/V helpers through the public API, F32 and F16 */
    float q[64], k[64], acc[64], acc2[64];
    kq_f16 kh[64];
    fill(q, 64, 1);
    fill(k, 64, 1);
    kq_store_kv(GGUF_DTYPE_F16, kh, k, 64);
    double s = 0, sh = 0;
    for (int i = 0; i < 64; i++) {
        s += (double)k[i] * q[i];
        sh += (double)kq_f16_to_f32(kh[i]) * q[i];
    }
    T_CHECK(fabs(kq_dot_kv(GGUF_DTYPE_F32, k, q, 64) - s) < 1e-4, "dot_kv f32");
    T_CHECK(fabs(kq_dot_kv(GGUF_DTYPE_F16, kh, q, 64) - sh) < 1e-4, "dot_kv f16");
    float kf[64];
    kq_store_kv(GGUF_DTYPE_F32, kf, k, 64);
    T_CHECK(memcmp(kf, k, sizeof kf) == 0, "store_kv f32");
    memset(acc, 0, sizeof acc);
    kq_axpy_kv(GGUF_DTYPE_F16, acc, 2.0f, kh, 64);
    kq_axpy_kv(GGUF_DTYPE_F32, acc, -2.0f, kf, 64);
    for (int i = 0; i < 64; i++) acc2[i] = 2.0f * (kq_f16_to_f32(kh[i]) - k[i]);
    T_CHECK(close_rel(acc, acc2, 64, 1e-5f) || max_abs(acc2, 64) < 1e-3f, "axpy_kv");
    /* Q8_0 rows through the public API: row sizes, store, dot and axpy */
    T_EQ_INT((int)kq_kv_row_bytes(GGUF_DTYPE_Q8_0, 64), 68);
    T_EQ_INT((int)kq_kv_row_bytes(GGUF_DTYPE_Q8_0, 40), 0);
    T_EQ_INT((int)kq_kv_row_bytes(GGUF_DTYPE_F16, 40), 80);
    T_EQ_INT((int)kq_kv_row_bytes(GGUF_DTYPE_Q4_0, 64), 0);
    kq_block_q8_0 kb[2];
    kq_store_kv(GGUF_DTYPE_Q8_0, kb, k, 64);
    double s8 = 0;
    for (int i = 0; i < 64; i++) s8 += (double)kq_f16_to_f32(kb[i / 32].d) * kb[i / 32].qs[i % 32] * q[i];
    T_CHECK(fabs(kq_dot_kv(GGUF_DTYPE_Q8_0, kb, q, 64) - s8) < 1e-4, "dot_kv q8_0");
    T_CHECK(fabs(s8 - s) < 0.02 * sqrt(64.0) * max_abs(q, 64) * max_abs(k, 64), "dot_kv q8_0 near f32: %g vs %g", s8, s);
    memset(acc, 0, sizeof acc);
    kq_axpy_kv(GGUF_DTYPE_Q8_0, acc, 2.0f, kb, 64);
    double aw = 0;
    for (int i = 0; i < 64; i++) aw = fmax(aw, fabs(acc[i] - 2.0 * kq_f16_to_f32(kb[i / 32].d) * kb[i / 32].qs[i % 32]));
    T_CHECK(aw < 1e-5, "axpy_kv q8_0: %g", aw);
    float w[64], o[64];
    for (int i = 0; i < 64; i++) w[i] = 1.0f + 0.01f * i;
    kq_rmsnorm(o, q, w, 64, 1e-5f);
    double ss = 0;
    for (int i = 0; i < 64; i++) ss += (double)q[i] * q[i];
    double inv = 1 / sqrt(ss / 64 + 1e-5);
    double worst = 0;
    for (int i = 0; i < 64; i++) worst = fmax(worst, fabs(o[i] - q[i] * inv * w[i]));
    T_CHECK(worst < 1e-5, "rmsnorm vs double: %g", worst);
    float sm[64];
    memcpy(sm, q, sizeof sm);
    kq_softmax(sm, 64);
    double tot = 0, mx = -1e30;
    for (int i = 0; i < 64; i++) mx = fmax(mx, q[i]);
    for (int i = 0; i < 64; i++) tot += exp(q[i] - mx);
    worst = 0;
    for (int i = 0; i < 64; i++) worst = fmax(worst, fabs(sm[i] - exp(q[i] - mx) / tot));
    T_CHECK(worst < 1e-6, "softmax vs double: %g", worst);
    for (int i = 0; i < 64; i++) x[i] = (float)(i - 32) * 0.7f;
    kq_silu_mul(o, x, w, 64);
    worst = 0;
    for (int i = 0; i < 64; i++) worst = fmax(worst, fabs(o[i] - x[i] / (1 + exp(-(double)x[i])) * w[i]) / (1 + fabs(x[i])));
    T_CHECK(worst < 1e-6, "silu_mul vs double: %g", worst);
    T_CHECK(kq_dtype_supported(GGUF_DTYPE_Q4_K) && kq_dtype_supported(GGUF_DTYPE_Q5_0) && kq_dtype_supported(GGUF_DTYPE_Q5_1) &&
                kq_dtype_supported(GGUF_DTYPE_Q5_K) && kq_dtype_supported(GGUF_DTYPE_Q2_K) &&
                kq_dtype_supported(GGUF_DTYPE_Q3_K) && kq_dtype_supported(GGUF_DTYPE_IQ4_NL) &&
                kq_dtype_supported(GGUF_DTYPE_IQ4_XS) && !kq_dtype_supported(GGUF_DTYPE_Q4_1),
            "dtype_supported");
    T_CHECK(strlen(kq_isa_name()) > 0, "isa name");
}

/* NaN and inf values (a model file may hold them) quantize without undefined behaviour
 * (found by the model_load fuzz target: UBSan on a NaN cast to int8): finite neighbours
 * keep their values, NaN becomes 0. (gcc's -fsanitize=undefined lacks float-cast-overflow, so
 * only clang's UBSan, as in the fuzz build, flagged the old casts.) */
static void test_nonfinite_quantize(void) {
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) - 3.0f;
    x[3] = NAN;
    x[40] = INFINITY;
    x[41] = -INFINITY;
    kq_block_q8_0 q[2];
    kq_quantize_q8_0_act(x, q, 64);
    T_EQ_INT(q[0].qs[3], 0);
    T_EQ_INT(q[0].qs[0], -127); /* -3 of amax 3 */
    kq_block_q8_1 q1[2];
    kq_quantize_q8_1_act(x, q1, 64);
    T_EQ_INT(q1[0].qs[3], 0);
    uint8_t w[2 * 34 + 64];
    for (size_t t = 0; t < 3; t++) {
        const uint32_t types[3] = {GGUF_DTYPE_Q8_0, GGUF_DTYPE_Q4_0, GGUF_DTYPE_Q5_0};
        T_CHECK(kq_quantize_row(types[t], x, w, 64) == SW_OK, "quantize %s", gguf_dtype_name(types[t]));
    }
}

int main(void) {
    test_nonfinite_quantize();
    test_conversions();
    test_roundtrip();
    test_layouts();
    test_layouts_q5();
    test_layouts_new();
    test_iq4_vs_plain();
    test_ref_vs_double();
    test_public_ops();
    kq_ops ref;
    kq_ops_for_isa("scalar", &ref);
#if defined(__aarch64__)
    const char *isas[] = {"scalar", "neon"};
#else
    const char *isas[] = {"scalar", "avx2", "avx512"};
#endif
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        kq_ops ops;
        if (kq_ops_for_isa(isas[i], &ops) != SW_OK) {
            T_SKIP("ISA %s not available here", isas[i]);
            continue;
        }
        fprintf(stderr, "checking ISA %s\n", isas[i]);
        test_matmul_isa(&ops);
        test_matmul_tiny(&ops);
        test_matmul_multi(&ops);
        test_gemv_batch_exact(&ops);
        test_prep_exact(&ops, &ref);
        test_vector_ops(&ops, &ref);
        test_kv_q8_0(&ops, &ref);
    }
    return t_done();
}
