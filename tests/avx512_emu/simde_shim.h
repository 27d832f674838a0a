/* simde_shim.h — the AVX-512 intrinsics kq_avx512.c uses that SIMDe 0.7.4 (Debian 12's
 * libsimde-dev) lacks, written as plain loops over stored lanes, for run.sh's emulated
 * build of the AVX-512 kernels on a CPU without AVX-512. Never part of swiftlet itself. */
#ifndef SW_SIMDE_SHIM_H
#define SW_SIMDE_SHIM_H
#include <math.h>
#include <stdint.h>
#include <string.h>
static inline simde__m512 simde_mm512_cvtepi32_ps(simde__m512i a) { int32_t i[16]; float f[16]; simde_mm512_storeu_si512(i, a); for (int k = 0; k < 16; k++) f[k] = (float)i[k]; return simde_mm512_loadu_ps(f); }
static inline simde__m512i simde_mm512_cvtepu16_epi32(simde__m256i a) { uint16_t s[16]; int32_t d[16]; simde_mm256_storeu_si256(s, a); for (int k = 0; k < 16; k++) d[k] = s[k]; return simde_mm512_loadu_si512(d); }
static inline simde__m512i simde_mm512_cvtepu8_epi32(simde__m128i a) { uint8_t s[16]; int32_t d[16]; simde_mm_storeu_si128(s, a); for (int k = 0; k < 16; k++) d[k] = s[k]; return simde_mm512_loadu_si512(d); }
static inline simde__m128i simde_mm512_cvtepi32_epi8(simde__m512i a) { int32_t s[16]; int8_t d[16]; simde_mm512_storeu_si512(s, a); for (int k = 0; k < 16; k++) d[k] = (int8_t)s[k]; return simde_mm_loadu_si128(d); }
static inline simde__m512 simde_mm512_cvtph_ps(simde__m256i a) { uint16_t s[16]; float d[16]; simde_mm256_storeu_si256(s, a); for (int k = 0; k < 16; k++) d[k] = _cvtsh_ss(s[k]); return simde_mm512_loadu_ps(d); }
static inline simde__m512i simde_mm512_cvtps_epi32(simde__m512 a) { float s[16]; int32_t d[16]; simde_mm512_storeu_ps(s, a); for (int k = 0; k < 16; k++) d[k] = (int32_t)nearbyintf(s[k]); return simde_mm512_loadu_si512(d); }
static inline simde__m256i simde_mm512_cvtps_ph(simde__m512 a, int r) { float s[16]; uint16_t d[16]; simde_mm512_storeu_ps(s, a); for (int k = 0; k < 16; k++) d[k] = _cvtss_sh(s[k], 0); return simde_mm256_loadu_si256(d); }
static inline simde__m512 simde_mm512_mask_loadu_ps(simde__m512 src, simde__mmask16 m, const void *p) { float d[16]; simde_mm512_storeu_ps(d, src); for (int k = 0; k < 16; k++) if (m >> k & 1) d[k] = ((const float *)p)[k]; return simde_mm512_loadu_ps(d); }
static inline simde__m512 simde_mm512_maskz_loadu_ps(simde__mmask16 m, const void *p) { float d[16]; for (int k = 0; k < 16; k++) d[k] = (m >> k & 1) ? ((const float *)p)[k] : 0.f; return simde_mm512_loadu_ps(d); }
static inline void simde_mm512_mask_storeu_ps(void *p, simde__mmask16 m, simde__m512 a) { float s[16]; simde_mm512_storeu_ps(s, a); for (int k = 0; k < 16; k++) if (m >> k & 1) ((float *)p)[k] = s[k]; }
static inline int simde_mm512_reduce_add_epi32(simde__m512i a) { int32_t s[16]; simde_mm512_storeu_si512(s, a); int r = 0; for (int k = 0; k < 16; k++) r += s[k]; return r; }
static inline float simde_mm512_reduce_add_ps(simde__m512 a) { float s[16]; simde_mm512_storeu_ps(s, a); float r = 0; for (int k = 0; k < 16; k++) r += s[k]; return r; }
static inline float simde_mm512_reduce_max_ps(simde__m512 a) { float s[16]; simde_mm512_storeu_ps(s, a); float r = s[0]; for (int k = 1; k < 16; k++) r = s[k] > r ? s[k] : r; return r; }
static inline simde__m512i simde_mm512_zextsi256_si512(simde__m256i a) { return simde_mm512_inserti64x4(simde_mm512_setzero_si512(), a, 0); }
static inline simde__m256i simde_mm256_mask_add_epi8(simde__m256i src, simde__mmask32 m, simde__m256i a, simde__m256i b) { int8_t s[32], x[32], y[32]; simde_mm256_storeu_si256(s, src); simde_mm256_storeu_si256(x, a); simde_mm256_storeu_si256(y, b); for (int k = 0; k < 32; k++) if (m >> k & 1) s[k] = (int8_t)(x[k] + y[k]); return simde_mm256_loadu_si256(s); }
static inline void simde_mm256_mask_storeu_epi16(void *p, simde__mmask16 m, simde__m256i a) { int16_t s[16]; simde_mm256_storeu_si256(s, a); for (int k = 0; k < 16; k++) if (m >> k & 1) ((int16_t *)p)[k] = s[k]; }
static inline simde__m256i simde_mm256_maskz_loadu_epi16(simde__mmask16 m, const void *p) { int16_t d[16]; for (int k = 0; k < 16; k++) d[k] = (m >> k & 1) ? ((const int16_t *)p)[k] : 0; return simde_mm256_loadu_si256(d); }
static inline simde__mmask32 simde_mm256_test_epi8_mask(simde__m256i a, simde__m256i b) { uint8_t x[32], y[32]; simde_mm256_storeu_si256(x, a); simde_mm256_storeu_si256(y, b); uint32_t r = 0; for (int k = 0; k < 32; k++) if (x[k] & y[k]) r |= 1u << k; return r; }
#endif
