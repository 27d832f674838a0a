/* model_attn_avx512.c — AVX-512 GQA attention for one token and one K/V head (contract
 * in model_attn.h). K (then V) rows of a tile of positions are converted to F32 once into
 * scratch and shared by all query heads of the GQA group; per head q stays in registers,
 * the scores of 16 positions share one transposed reduction; softmax uses a vector exp
 * (Cody-Waite range reduction + degree-6 polynomial, ~1 ulp) and rounds the weights to
 * F16 with vcvtps2ph when the store is F16 (unless model_kv.attn_f32); the V sum keeps the head's output in
 * registers. Compiled with AVX-512 flags (file name); called only when the kernels chose
 * avx512. A Q8_0 store goes to model_attn_generic. */
#include "model/model_attn.h"
#include "kernels/kq.h"
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#define MAXV 16 /* head_dim <= 256 */

/* Walks the K or V rows of one head through the block table, position start upward, without
 * a division per row; a block's start is looked up only when the walk enters it. */
typedef struct row_walk {
    const char *base, *cur;  /* store base + head offset; next row */
    const int32_t *bt;
    size_t block_bytes, stride, layer_off;
    int bs, blk, r;
} row_walk;

static inline void walk_init(row_walk *w, const model_kv *kv, const void *base, int layer, const int32_t *bt, int start, size_t off) {
    w->stride = kq_kv_row_bytes(kv->dtype, kv->kv_dim);
    w->block_bytes = (size_t)kv->block_size * w->stride;
    w->layer_off = (size_t)layer * (size_t)kv->n_blocks;
    w->base = (const char *)base + off;
    w->bt = bt;
    w->bs = kv->block_size;
    w->blk = start / w->bs;
    w->r = start % w->bs;
    w->cur = w->base + (w->layer_off + (size_t)bt[w->blk]) * w->block_bytes + (size_t)w->r * w->stride;
}

static inline const char *walk_next(row_walk *w) {
    if (w->r == w->bs) {
        w->r = 0;
        w->blk++;
        w->cur = w->base + (w->layer_off + (size_t)w->bt[w->blk]) * w->block_bytes;
    }
    const char *row = w->cur;
    w->cur += w->stride;
    w->r++;
    return row;
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

/* Lane sums of 16 vectors: result lane t = Σ lanes of a[t]. Three levels of in-lane
 * unpack/shuffle + add and one of 128-bit shuffles (45 ops instead of 16 full reductions). */
static inline __m512 reduce16(const __m512 a[16]) {
    __m512 b[8], c[4];
    for (int k = 0; k < 8; k++)
        b[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]), _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
    for (int k = 0; k < 4; k++)
        c[k] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(b[2 * k], b[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 d0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(c[0], c[1], _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 d1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(1, 0, 1, 0)),
                              _mm512_shuffle_f32x4(c[2], c[3], _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d0, d1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(d0, d1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Softmax of sc (n) in place; weights rounded to F16 when round. */
static void softmax_row(float *sc, int n, bool round) {
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
        if (round) w = _mm512_cvtph_ps(_mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm512_mask_storeu_ps(sc + p, k, w);
    }
}

/* Converts the next cnt rows of the walk to F32 rows of buf (cnt, NV * 16). */
static inline __attribute__((always_inline)) void tile_load(row_walk *w, int cnt, float *buf, const int NV, const bool F16) {
    for (int t = 0; t < cnt; t++) {
        const char *r = walk_next(w);
        _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) _mm512_store_ps(buf + (size_t)t * NV * 16 + 16 * i, load16(r, i, F16));
    }
}

/* All heads of the group: scores, softmax, V sum. NV (= head_dim / 16) and F16 are
 * compile-time constants in the specialised copies below, so the vector loops unroll and the
 * accumulators stay in registers. K and V rows are converted once per tile. */
static inline __attribute__((always_inline)) void attn_group(const model_attn_job *j, const int NV, const bool F16) {
    const model_kv *kv = j->kv;
    const int n = j->pos + 1 - j->start, hd = NV * 16, G = j->group;
    const size_t off = (size_t)j->kv_head * (size_t)hd * (F16 ? 2 : 4);
    const __m512 vscale = _mm512_set1_ps(j->scale);
    float *buf = j->tile;
    row_walk w;
    walk_init(&w, kv, kv->k, j->layer, j->block_table, j->start, off);
    for (int p0 = 0; p0 < n; p0 += MODEL_ATTN_TILE) {
        const int cnt = n - p0 < MODEL_ATTN_TILE ? n - p0 : MODEL_ATTN_TILE;
        tile_load(&w, cnt, buf, NV, F16);
        for (int h = 0; h < G; h++) {
            __m512 vq[MAXV];
            _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) vq[i] = _mm512_loadu_ps(j->q + (size_t)h * hd + 16 * i);
            float *sc = j->scores + (size_t)h * n + p0;
            int t = 0;
            for (; t + 16 <= cnt; t += 16) { /* 16 positions, one transposed reduction */
                __m512 a[16];
                _Pragma("GCC unroll 16") for (int u = 0; u < 16; u++) {
                    const float *kr = buf + (size_t)(t + u) * hd;
                    __m512 s = _mm512_mul_ps(_mm512_load_ps(kr), vq[0]);
                    _Pragma("GCC unroll 16") for (int i = 1; i < NV; i++) s = _mm512_fmadd_ps(_mm512_load_ps(kr + 16 * i), vq[i], s);
                    a[u] = s;
                }
                _mm512_storeu_ps(sc + t, _mm512_mul_ps(reduce16(a), vscale));
            }
            for (; t < cnt; t++) {
                const float *kr = buf + (size_t)t * hd;
                __m512 s = _mm512_mul_ps(_mm512_load_ps(kr), vq[0]);
                _Pragma("GCC unroll 16") for (int i = 1; i < NV; i++) s = _mm512_fmadd_ps(_mm512_load_ps(kr + 16 * i), vq[i], s);
                sc[t] = _mm512_reduce_add_ps(s) * j->scale;
            }
        }
    }
    for (int h = 0; h < G; h++) softmax_row(j->scores + (size_t)h * n, n, F16 && !kv->attn_f32);
    walk_init(&w, kv, kv->v, j->layer, j->block_table, j->start, off);
    for (int p0 = 0; p0 < n; p0 += MODEL_ATTN_TILE) {
        const int cnt = n - p0 < MODEL_ATTN_TILE ? n - p0 : MODEL_ATTN_TILE;
        tile_load(&w, cnt, buf, NV, F16);
        for (int h = 0; h < G; h++) {
            float *out = j->out + (size_t)h * hd;
            const float *sc = j->scores + (size_t)h * n + p0;
            __m512 acc[MAXV];
            _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) acc[i] = p0 ? _mm512_loadu_ps(out + 16 * i) : _mm512_setzero_ps();
            for (int t = 0; t < cnt; t++) {
                const __m512 wt = _mm512_set1_ps(sc[t]);
                const float *vr = buf + (size_t)t * hd;
                _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) acc[i] = _mm512_fmadd_ps(wt, _mm512_load_ps(vr + 16 * i), acc[i]);
            }
            _Pragma("GCC unroll 16") for (int i = 0; i < NV; i++) _mm512_storeu_ps(out + 16 * i, acc[i]);
        }
    }
}

#define GROUP_FNS(NV)                                                                   \
    static void group_##NV##_f16(const model_attn_job *j) { attn_group(j, NV, true); }  \
    static void group_##NV##_f32(const model_attn_job *j) { attn_group(j, NV, false); }
GROUP_FNS(1)
GROUP_FNS(2)
GROUP_FNS(4)
GROUP_FNS(6)
GROUP_FNS(8)
GROUP_FNS(16)

bool model_attn_avx512_supports(int head_dim) {
    int nv = head_dim / 16;
    return head_dim % 16 == 0 && (nv == 1 || nv == 2 || nv == 4 || nv == 6 || nv == 8 || nv == 16);
}

void model_attn_avx512(const model_attn_job *j) {
    if (j->kv->dtype == GGUF_DTYPE_Q8_0) { /* Q8_0 rows: the generic version (kernels' SIMD dot / axpy) */
        model_attn_generic(j);
        return;
    }
    const bool f16 = j->kv->dtype == GGUF_DTYPE_F16;
    switch (j->head_dim / 16) {
    case 1: (f16 ? group_1_f16 : group_1_f32)(j); break;
    case 2: (f16 ? group_2_f16 : group_2_f32)(j); break;
    case 4: (f16 ? group_4_f16 : group_4_f32)(j); break;
    case 6: (f16 ? group_6_f16 : group_6_f32)(j); break;
    case 8: (f16 ? group_8_f16 : group_8_f32)(j); break;
    default: (f16 ? group_16_f16 : group_16_f32)(j); break;
    }
}
#endif
