/* model_attn.c — generic (any ISA) GQA attention for one token and one K/V head, built on
 * the kernels' kq_dot_kv / kq_axpy_kv, and the choice between it and the AVX-512 version
 * (model_attn_avx512.c). Contract in model_attn.h. */
#include "model/model_attn.h"
#include "kernels/kq.h"
#include <math.h>
#include <string.h>

static const char *kv_row(const model_kv *kv, const void *base, int layer, const int32_t *bt, int p, size_t off) {
    return (const char *)model_kv_row(kv, (void *)base, layer, bt[p / kv->block_size], p % kv->block_size) + off;
}

void model_attn_generic(const model_attn_job *j) {
    const model_kv *kv = j->kv;
    const bool round = !kv->attn_f32 && kv->dtype == GGUF_DTYPE_F16;
    const int n = j->pos + 1 - j->start, p0 = j->start, hd = j->head_dim;
    const size_t off = kq_kv_row_bytes(kv->dtype, (int64_t)j->kv_head * hd);
    for (int h = 0; h < j->group; h++) {
        const float *q = j->q + (size_t)h * hd;
        float *sc = j->scores + (size_t)h * n, *out = j->out + (size_t)h * hd;
        float mx = -INFINITY;
        for (int p = 0; p < n; p++) {
            sc[p] = kq_dot_kv(kv->dtype, kv_row(kv, kv->k, j->layer, j->block_table, p0 + p, off), q, hd) * j->scale;
            if (sc[p] > mx) mx = sc[p];
        }
        double sum = 0;
        for (int p = 0; p < n; p++) sum += (sc[p] = expf(sc[p] - mx));
        float inv = (float)(1.0 / sum);
        memset(out, 0, (size_t)hd * sizeof *out);
        for (int p = 0; p < n; p++) {
            float w = sc[p] * inv;
            if (round) w = kq_f16_to_f32(kq_f32_to_f16(w));
            kq_axpy_kv(kv->dtype, out, w, kv_row(kv, kv->v, j->layer, j->block_table, p0 + p, off), hd);
        }
    }
}

model_attn_fn model_attn_pick(int head_dim) {
#if defined(__x86_64__)
    if (!strcmp(kq_isa_name(), "avx512") && model_attn_avx512_supports(head_dim)) return model_attn_avx512;
#endif
    return model_attn_generic;
}
