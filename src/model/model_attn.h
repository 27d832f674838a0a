/* model_attn.h — internal to the model module: causal attention of the query heads that
 * share one K/V head (a GQA group) for one token, over positions start..pos of its
 * sequence in the paged K/V store (start > 0 on a sliding-window layer). Two passes:
 * scores (q·k · scale) for every position, softmax, then the weighted sum of V rows. With
 * an F16 store q arrives rounded to F16 and the softmax weights are rounded before the V
 * sum (what llama.cpp does), unless model_kv.attn_f32 keeps both F32.
 * A generic version (kq_dot_kv / kq_axpy_kv) and an AVX-512 one (K/V rows converted to F32
 * once per tile of positions for all heads of the group, vector exp); the model picks one
 * at load time. */
#ifndef SW_MODEL_ATTN_H
#define SW_MODEL_ATTN_H
#include "model/model.h"

typedef struct model_attn_job {
    const model_kv *kv;
    int layer;
    const int32_t *block_table; /* the token's sequence: (pos / block_size + 1) block ids */
    int start;                  /* first attended position: 0, or pos - window + 1 (sliding window) */
    int pos;                    /* attends to start..pos */
    int kv_head;
    int head_dim;
    int group;                  /* query heads sharing kv_head */
    float scale;                /* q·k multiplier (1/sqrt(head_dim), or 1 when q is prescaled) */
    const float *q;             /* (group, head_dim) */
    float *out;                 /* (group, head_dim) */
    float *scores;              /* (group, pos + 1 - start) scratch */
    float *tile;                /* (MODEL_ATTN_TILE, head_dim) scratch, 64-byte aligned */
} model_attn_job;

/* Positions whose K (then V) rows are converted to F32 once and shared by the group's heads. */
#define MODEL_ATTN_TILE 256

typedef void (*model_attn_fn)(const model_attn_job *j);

void model_attn_generic(const model_attn_job *j);
/* For head_dim in {16, 32, 64, 96, 128, 256} (model_attn_avx512_supports); x86-64 only. */
void model_attn_avx512(const model_attn_job *j);
bool model_attn_avx512_supports(int head_dim);

/* The best implementation for this CPU (as the kernels chose: kq_isa_name()) and shape. */
model_attn_fn model_attn_pick(int head_dim);

#endif
