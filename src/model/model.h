/* model.h — Llama (2, 3.x), Qwen2, Qwen3, Gemma 3 (text) and Phi-3 decoder-only transformers read from GGUF (weights borrowed
 * from the mmap, never copied) and one forward function over a ragged batch: tokens of
 * many sequences at different positions, each sequence reading and writing its K/V
 * through its own block table into a shared paged store. Prefix `model_`.
 *
 * Forward semantics: for every layer, the K/V of all batch tokens are first written to
 * their slots (seq's block_table[pos / block_size], row pos % block_size), then each
 * token attends causally to positions 0..pos of its own sequence. So a batch may mix
 * decodes (1 token), prefill chunks (many consecutive positions) and sequences whose
 * earlier positions are already in the store (prefix cache, earlier chunks). */
#ifndef SW_MODEL_H
#define SW_MODEL_H
#include "base/base.h"
#include "gguf/gguf.h"

typedef enum model_arch { MODEL_ARCH_LLAMA, MODEL_ARCH_QWEN2, MODEL_ARCH_QWEN3, MODEL_ARCH_GEMMA3, MODEL_ARCH_PHI3 } model_arch;

/* How RoPE frequencies are modified (llama.cpp's names and semantics). */
typedef enum model_rope_scaling {
    MODEL_ROPE_NONE,
    MODEL_ROPE_LINEAR,   /* positions × 1/factor */
    MODEL_ROPE_YARN,     /* NTK-by-parts interpolation + attention temperature */
    MODEL_ROPE_FREQS,    /* Llama 3.1: per-dimension divisors from rope_freqs.weight */
    MODEL_ROPE_LONGROPE, /* Phi-3: rope_factors_short / _long, chosen by context, + attn_factor */
} model_rope_scaling;

typedef struct model_config {
    model_arch arch;
    int n_vocab;
    int n_embd;      /* model dim */
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;    /* n_embd / n_head unless the file says otherwise */
    int n_ff;
    int n_ctx_train; /* context length from the file */
    float rope_theta;
    float rms_eps;
    bool rope_neox;  /* qwen2/qwen3/gemma3/phi3: halves; llama: adjacent pairs */
    int n_rot;       /* rotated dims of each head (rope.dimension_count; phi3 < head_dim) */
    model_rope_scaling rope_scaling;
    float rope_factor;     /* rope.scaling.factor (linear / yarn), else 1 */
    int rope_ctx_orig;     /* rope.scaling.original_context_length (yarn, LongRoPE), else n_ctx_train */
    float rope_theta_local;/* gemma3: RoPE base of the sliding-window layers (10000) */
    int sliding_window;    /* gemma3: window of the local layers (0 = none) */
    int swa_pattern;       /* gemma3: layer il is global iff (il + 1) % swa_pattern == 0 */
    float attn_scale;      /* softmax scale of q·k (1/sqrt(head_dim) unless the file says) */
    float logit_softcap;   /* final_logit_softcapping (0 = none) */
    bool tied_output;/* output = token_embd */
    uint32_t weight_dtype; /* dtype of most matmul weights (for reports) */
} model_config;

/* The paged K/V store a forward pass reads and writes. Memory is owned by whoever
 * created it (the kv module, or model_kv_create for simple single-sequence use). */
typedef struct model_kv {
    uint32_t dtype;   /* GGUF_DTYPE_F16 (default), GGUF_DTYPE_F32, or GGUF_DTYPE_Q8_0 (rows of
                         34-byte blocks: 32 int8 + an F16 scale; head_dim % 32 == 0) */
    bool attn_f32;    /* F16 store: keep q and the softmax weights in F32 inside attention,
                         as ik_llama.cpp (Aug 2026) computes them; default false: round
                         them to F16, as llama.cpp's CPU attention (Feb 2025) does */
    int block_size;   /* tokens per block */
    int n_blocks;
    int n_layer;
    int kv_dim;       /* n_head_kv * head_dim */
    void *k;          /* (n_layer, n_blocks, block_size, kv_dim) of dtype (rows kq_kv_row_bytes apart) */
    void *v;          /* (n_layer, n_blocks, block_size, kv_dim) of dtype */
} model_kv;

/* Address of the K (or V) row of (layer, block, row). */
void *model_kv_row(const model_kv *kv, void *base, int layer, int block, int row);
/* SW_OK when a K/V store of dtype can serve cfg (F16, F32, or Q8_0 with head_dim % 32 == 0),
 * else a clear error naming what is wrong. */
int model_kv_check_dtype(const model_config *cfg, uint32_t dtype, sw_err *err);
/* Allocates a store for cfg; free with model_kv_destroy. */
int model_kv_create(const model_config *cfg, uint32_t dtype, int block_size, int n_blocks, model_kv **out, sw_err *err);
void model_kv_destroy(model_kv *kv);

/* One ragged batch. Token j belongs to sequence seq[j] at position pos[j]. */
typedef struct model_batch {
    int n_tokens;
    const int32_t *tokens;      /* (n_tokens) */
    const int32_t *pos;         /* (n_tokens) position within its sequence */
    const int32_t *seq;         /* (n_tokens) index into block_tables */
    const uint8_t *logits;      /* (n_tokens) 1 = compute logits for this row; NULL = last token only */
    int n_seqs;
    const int32_t *const *block_tables; /* (n_seqs) each (ceil((max pos+1)/block_size)) physical block ids */
} model_batch;

typedef struct model model;

/* Loads path (mmap). Unknown arch / missing tensor / unsupported dtype -> clear error. */
int model_load(const char *path, model **out, sw_err *err);
/* The same from an open GGUF (e.g. gguf_parse of a memory image): takes ownership of g
 * (closed by model_free, or at once when loading fails). */
int model_load_gguf(gguf_ctx *g, model **out, sw_err *err);
void model_free(model *m);
const model_config *model_get_config(const model *m);
const char *model_arch_name(model_arch a); /* "llama", "qwen2", ... as general.architecture spells it */
const gguf_ctx *model_gguf(const model *m); /* borrowed: tokenizer reads its metadata */
/* Every weight tensor's element count (including norms and embeddings). */
uint64_t model_param_count(const model *m);
/* K and V bytes one token occupies in a store of kv_dtype (all layers); 0 when the dtype
 * cannot hold this model (Q8_0 with head_dim % 32). */
uint64_t model_kv_bytes_per_token(const model *m, uint32_t kv_dtype);
/* Bytes of matmul weights one token reads (every layer's projections + the output
 * matrix): the memory traffic per decode step, for GB/s reports. */
uint64_t model_weight_bytes(const model *m);

/* Scratch for forward passes of up to max_tokens tokens attending to up to max_ctx
 * positions. One workspace per engine thread; no allocation on the hot path. */
typedef struct model_ws model_ws;
int model_ws_create(const model *m, int max_tokens, int max_ctx, model_ws **out, sw_err *err);
void model_ws_destroy(model_ws *ws);

/* Runs the batch; writes one row of n_vocab logits per row with logits[j] = 1, in batch
 * order, to out (n_logit_rows, n_vocab). Returns SW_OK or a negative status. */
int model_forward(model *m, model_ws *ws, const model_kv *kv, const model_batch *b, float *out, sw_err *err);

#endif
