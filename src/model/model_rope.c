/* model_rope.c — RoPE variants (contract in model_rope.h): the angle of each pair with
 * frequency divisors, linear / YaRN scaling and attention factor as ggml computes them
 * (the angle advances by multiplying with base^(-2/n_rot) in float, as ggml does), then the
 * rotation of adjacent or NEOX pairs of the first n_rot dims of every head. */
#include "model/model_rope.h"
#include <math.h>
#include <stddef.h>

static float yarn_corr_dim(int n_rot, int n_ctx_orig, float n_turns, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (n_turns * 2.0f * (float)M_PI)) / (2.0f * logf(base));
}

void model_rope_yarn_dims(model_rope *r, int n_ctx_orig, float beta_fast, float beta_slow) {
    float lo = floorf(yarn_corr_dim(r->n_rot, n_ctx_orig, beta_fast, r->base));
    float hi = ceilf(yarn_corr_dim(r->n_rot, n_ctx_orig, beta_slow, r->base));
    r->corr[0] = lo > 0 ? lo : 0;
    r->corr[1] = hi < (float)(r->n_rot - 1) ? hi : (float)(r->n_rot - 1);
}

/* 1 below the low correction dim, 0 above the high one, linear between (per pair i). */
static float yarn_ramp(const float corr[2], int i) {
    float d = corr[1] - corr[0];
    float y = ((float)i - corr[0]) / (d > 0.001f ? d : 0.001f);
    return 1.0f - fminf(1.0f, fmaxf(0.0f, y));
}

void model_rope_table(const model_rope *r, int pos, float *cs, float *sn) {
    const int half = r->n_rot / 2;
    const float step = powf(r->base, -2.0f / (float)r->n_rot);
    float mscale = r->attn_factor;
    if (r->ext_factor != 0.0f) mscale *= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
    float th = (float)pos;
    for (int i = 0; i < half; i++, th *= step) {
        float extrap = r->factors ? th / r->factors[i] : th;
        float theta = r->freq_scale * extrap;
        if (r->ext_factor != 0.0f) {
            float mix = yarn_ramp(r->corr, i) * r->ext_factor;
            theta = theta * (1.0f - mix) + extrap * mix;
        }
        cs[i] = cosf(theta) * mscale;
        sn[i] = sinf(theta) * mscale;
    }
}

void model_rope_apply(const model_rope *r, float *x, int n_heads, int head_dim, const float *cs, const float *sn) {
    const int half = r->n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int a = r->neox ? i : 2 * i, b = r->neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}
