/* model_attn_avx512.c — AVX-512 GQA attention for one token and one K/V head (contract
 * in model_attn.h). Per query head, q stays in registers while each K row (F16 or F32) is
 * loaded and converted once; scores are reduced per position; softmax uses a vector exp
 * (Cody-Waite range reduction + degree-6 polynomial, ~1 ulp) and rounds the weights to
 * F16 with vcvtps2ph when the store is F16; the V sum keeps the head's output in
 * registers. Compiled with AVX-512 flags (file name); called only when the kernels chose
 * avx512. */
#include "model/model_attn.h"
#include <immintrin.h>
#include <math.h>

#define MAXV 16 /* head_dim <= 256 */

static inline const char *kv_row(const model_kv *kv, const void *base, int layer, const int32_t *bt, int p, size_t off) {
    size_t esz = kv->dtype == GGUF_DTYPE_F16 ? 2 : 4;
    size_t idx = (((size_t)layer * (size_t)kv->n_blocks + (size_t)bt[p / kv->block_size]) * (size_t)kv->block_size +
                  (size_t)(p % kv->block_size)) * (size_t)kv->kv_dim;
    return (const char *)base + idx * esz + off;
}

static inline __m512 load16(const char *row, int i, bool f16) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + (size_t)i * 32)));
    return _mm512_loadu_ps((const float *)(row + (size_t)i * 64));
}

/* e^x for x <= 0 (inputs below -87.3 give 0). */
static inline __m512 exp512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, x);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Softmax of sc (n) in place; weights rounded to F16 when f16. */
static void softmax_row(float *sc, int n, bool f16) {
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    int p = 0;
    for (; p + 16 <= n; p += 16) vmx = _mm512_max_ps(vmx, _mm512_loadu_ps(sc + p));
    float mx = _mm512_reduce_max_ps(vmx);
    for (; p < n; p++) if (sc[p] > mx) mx = sc[p];
    __m512 vm = _mm512_set1_ps(mx), vs = _mm512_setzero_ps();
    for (p = 0; p + 16 <= n; p += 16) {
        __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(sc + p), vm));
        _mm512_storeu_ps(sc + p, e);
        vs = _mm512_add_ps(vs, e);
    }
    if (p < n) {
        __mmask16 k = (__mmask16)((1u << (n - p)) - 1);
        __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, sc + p), vm));
        e = _mm512_maskz_mov_ps(k, e);
        _mm512_mask_storeu_ps(sc + p, k, e);
        vs = _mm512_add_ps(vs, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vs));
    for (p = 0; p < n; p += 16) {
        __mmask16 k = n - p >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - p)) - 1);
        __m512 w = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, sc + p), inv);
        if (f16) w = _mm512_cvtph_ps(_mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(sc + p, k, w);
    }
}

void model_attn_avx512(const model_attn_job *j) {
    const model_kv *kv = j->kv;
    const int n = j->pos + 1, hd = j->head_dim, nv = hd / 16;
    const bool f16 = kv->dtype == GGUF_DTYPE_F16;
    const size_t off = (size_t)j->kv_head * (size_t)hd * (f16 ? 2 : 4);
    for (int h = 0; h < j->group; h++) {
        const float *q = j->q + (size_t)h * hd;
        float *sc = j->scores + (size_t)h * n, *out = j->out + (size_t)h * hd;
        __m512 vq[MAXV], acc[MAXV];
        for (int i = 0; i < nv; i++) vq[i] = _mm512_loadu_ps(q + 16 * i);
        for (int p = 0; p < n; p++) {
            const char *kr = kv_row(kv, kv->k, j->layer, j->block_table, p, off);
            __m512 s = _mm512_mul_ps(load16(kr, 0, f16), vq[0]);
            for (int i = 1; i < nv; i++) s = _mm512_fmadd_ps(load16(kr, i, f16), vq[i], s);
            sc[p] = _mm512_reduce_add_ps(s) * j->scale;
        }
        softmax_row(sc, n, f16);
        for (int i = 0; i < nv; i++) acc[i] = _mm512_setzero_ps();
        for (int p = 0; p < n; p++) {
            const char *vr = kv_row(kv, kv->v, j->layer, j->block_table, p, off);
            __m512 w = _mm512_set1_ps(sc[p]);
            for (int i = 0; i < nv; i++) acc[i] = _mm512_fmadd_ps(w, load16(vr, i, f16), acc[i]);
        }
        for (int i = 0; i < nv; i++) _mm512_storeu_ps(out + 16 * i, acc[i]);
    }
}
