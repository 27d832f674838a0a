/* model_attn_test.c — the attention implementations against a direct double-precision
 * computation of softmax(q·K/sqrt(d))·V over a paged store with a scattered block table:
 * head dims 16/48/64/96/128 (48: generic only), F16, F32 and Q8_0 stores (Q8_0: head dims
 * that are multiples of 32; the reference reads the same quantized rows), lengths that are and are not multiples of
 * 16 or of the block size, GQA groups of 1 and 7, from position 0 and from a sliding
 * window's start inside a block (start..pos). The AVX-512 version runs when the
 * kernels chose avx512. */
#include "kernels/kq.h"
#include "model/model_attn.h"
#include "t.h"
#include <math.h>

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void check(model_attn_fn fn, const char *name, int hd, int group, int n_head_kv, uint32_t dtype, int pos, int start) {
    enum { BS = 16, NB = 40 };
    model_config c = {.n_layer = 2, .n_head_kv = n_head_kv, .head_dim = hd};
    model_kv *kv;
    sw_err e = {0};
    if (model_kv_create(&c, dtype, BS, NB, &kv, &e)) { T_CHECK(0, "%s", e.msg); return; }
    int32_t bt[NB];
    for (int i = 0; i < NB; i++) bt[i] = (i * 7 + 3) % NB; /* a permutation */
    unsigned s = 99;
    int kvd = n_head_kv * hd, layer = 1, kvh = n_head_kv - 1;
    float *row = malloc((size_t)kvd * sizeof *row);
    for (int p = 0; p <= pos; p++)
        for (int which = 0; which < 2; which++) {
            for (int i = 0; i < kvd; i++) row[i] = frand(&s) * 2.0f;
            kq_store_kv(dtype, model_kv_row(kv, which ? kv->v : kv->k, layer, bt[p / BS], p % BS), row, kvd);
        }
    float *q = malloc((size_t)group * hd * sizeof *q), *out = malloc((size_t)group * hd * sizeof *out);
    float *scores = malloc((size_t)group * (pos + 1) * sizeof *scores);
    float *tile = aligned_alloc(64, (size_t)MODEL_ATTN_TILE * hd * sizeof *tile);
    for (int i = 0; i < group * hd; i++) q[i] = frand(&s) * 3.0f;
    model_attn_job j = {.kv = kv, .layer = layer, .block_table = bt, .start = start, .pos = pos, .kv_head = kvh, .head_dim = hd,
                        .group = group, .scale = 1.0f / sqrtf((float)hd), .q = q, .out = out, .scores = scores,
                        .tile = tile};
    fn(&j);
    double worst = 0;
    double *w = malloc((size_t)(pos + 1) * sizeof *w);
    float *kr = malloc((size_t)kvd * sizeof *kr), *vr = malloc((size_t)kvd * sizeof *vr);
    for (int h = 0; h < group; h++) {
        double mx = -INFINITY, z = 0;
        for (int p = start; p <= pos; p++) {
            kq_dequantize_row(dtype, model_kv_row(kv, kv->k, layer, bt[p / BS], p % BS), kr, kvd);
            double d = 0;
            for (int i = 0; i < hd; i++) d += (double)q[h * hd + i] * kr[kvh * hd + i];
            w[p] = d / sqrt((double)hd);
            if (w[p] > mx) mx = w[p];
        }
        for (int p = start; p <= pos; p++) z += (w[p] = exp(w[p] - mx));
        for (int i = 0; i < hd; i++) {
            double o = 0;
            for (int p = start; p <= pos; p++) {
                kq_dequantize_row(dtype, model_kv_row(kv, kv->v, layer, bt[p / BS], p % BS), vr, kvd);
                o += w[p] / z * vr[kvh * hd + i];
            }
            double err = fabs(o - out[h * hd + i]);
            if (err > worst) worst = err;
        }
    }
    /* F16 stores round the weights to F16 (relative 2^-11), values are O(1) */
    double tol = dtype == GGUF_DTYPE_F16 ? 2e-3 : dtype == GGUF_DTYPE_Q8_0 ? 2e-5 : 1e-5;
    T_CHECK(worst <= tol, "%s hd %d group %d %s pos %d start %d: max err %.3g", name, hd, group, gguf_dtype_name(dtype), pos, start, worst);
    free(w); free(kr); free(vr); free(q); free(out); free(scores); free(tile); free(row);
    model_kv_destroy(kv);
}

int main(void) {
    struct { model_attn_fn fn; const char *name; } impls[2] = {{model_attn_generic, "generic"}, {NULL, "avx512"}};
#if defined(__x86_64__)
    if (!strcmp(kq_isa_name(), "avx512")) impls[1].fn = model_attn_avx512;
#endif
    if (!impls[1].fn) T_SKIP("avx512 attention: kernels chose %s", kq_isa_name());
    int hds[] = {16, 48, 64, 96, 128}, poss[] = {0, 7, 15, 16, 31, 100, 255, 256, 300, 511};
    uint32_t dts[] = {GGUF_DTYPE_F16, GGUF_DTYPE_F32, GGUF_DTYPE_Q8_0};
    for (int f = 0; f < 2; f++) {
        if (!impls[f].fn) continue;
        for (size_t a = 0; a < 5; a++)
            for (size_t b = 0; b < 10; b++)
                for (size_t d = 0; d < 3; d++) {
                    if (f == 1 && !model_attn_avx512_supports(hds[a])) continue;
                    if (dts[d] == GGUF_DTYPE_Q8_0 && hds[a] % 32) continue;
                    int p = poss[b], win = p > 300 ? p - 300 : p > 5 ? p - 5 : 0; /* window start mid-block */
                    check(impls[f].fn, impls[f].name, hds[a], 7, 2, dts[d], p, 0);
                    check(impls[f].fn, impls[f].name, hds[a], 1, 1, dts[d], p, 0);
                    check(impls[f].fn, impls[f].name, hds[a], 7, 2, dts[d], p, win);
                    check(impls[f].fn, impls[f].name, hds[a], 1, 1, dts[d], p, win);
                }
    }
    T_OK(model_attn_pick(64) != NULL && model_attn_pick(40) == model_attn_generic);
    /* a Q8_0 store needs head_dim % 32 == 0: a clear error naming it */
    model_config c48 = {.n_layer = 1, .n_head_kv = 2, .head_dim = 48};
    model_kv *kv = NULL;
    sw_err e = {0};
    T_EQ_INT(model_kv_create(&c48, GGUF_DTYPE_Q8_0, 16, 2, &kv, &e), SW_ERR_UNSUPPORTED);
    T_CHECK(strstr(e.msg, "head_dim") && strstr(e.msg, "48"), "error names head_dim 48: %s", e.msg);
    T_EQ_INT(model_kv_create(&c48, GGUF_DTYPE_Q4_0, 16, 2, &kv, &e), SW_ERR_ARG);
    return t_done();
}
