/* model_rope.h — internal to the model module: rotary position embeddings with the
 * variants the supported families use, computed as llama.cpp's ggml_rope_ext does: pair i
 * (of n_rot / 2) at position p turns by p · base^(-2i/n_rot) / factor[i], scaled by
 * freq_scale (linear / YaRN interpolation), blended with the unscaled angle by YaRN's ramp
 * between its correction dims, and cos/sin are multiplied by attn_factor (YaRN adds
 * 0.1·ln(1/freq_scale) to it). Dimensions from n_rot to head_dim pass through unchanged
 * (partial rotary). A plain RoPE (full head, no scaling) is flagged so the caller can use
 * the kernels' kq_rope_heads. */
#ifndef SW_MODEL_ROPE_H
#define SW_MODEL_ROPE_H
#include <stdbool.h>

/* Largest n_rot / 2 supported (head_dim <= 1024). */
#define MODEL_ROPE_MAX_PAIRS 512

typedef struct model_rope {
    int n_rot;            /* rotated dims per head (even, <= head_dim) */
    bool neox;            /* pairs (i, i + n_rot/2) instead of (2i, 2i+1) */
    bool plain;           /* no scaling, no factors, n_rot == head_dim */
    float base;           /* frequency base (theta) */
    float freq_scale;     /* 1 / rope.scaling.factor for linear and YaRN, else 1 */
    float ext_factor;     /* YaRN extrapolation mix (1 for YaRN, else 0) */
    float attn_factor;    /* cos/sin multiplier */
    float corr[2];        /* YaRN correction dims (pair indices) */
    const float *factors; /* (n_rot / 2) frequency divisors (rope_freqs / LongRoPE), or NULL */
} model_rope;

/* Fills r for YaRN: the correction dims from the original context and beta_fast / slow. */
void model_rope_yarn_dims(model_rope *r, int n_ctx_orig, float beta_fast, float beta_slow);
/* cos and sin of every pair at position pos (cs, sn: n_rot / 2 each). */
void model_rope_table(const model_rope *r, int pos, float *cs, float *sn);
/* Rotates n_heads consecutive head vectors (x: (n_heads, head_dim)) with that table. */
void model_rope_apply(const model_rope *r, float *x, int n_heads, int head_dim, const float *cs, const float *sn);

#endif
