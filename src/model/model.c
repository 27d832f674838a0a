/* model.c — loading a Llama / Qwen2 / Qwen3 / Gemma 3 / Phi-3 model from GGUF and the
 * forward pass over a ragged batch. The loader reads the config from `ARCH.*` metadata,
 * finds every tensor, checks its dtype and shape against the config and keeps a pointer
 * into the mmap (weights are never copied; only the small 1-D norm/bias vectors are
 * converted when not F32). Fused tensors (phi3's attn_qkv and gate+up ffn_up) become
 * views of consecutive rows, so the forward sees separate Q/K/V and gate/up matrices.
 * A tensor the architecture does not use fails the load, naming it.
 *
 * Forward: embeddings (dequantized per token, × √n_embd for gemma3) -> per layer: RMSNorm,
 * Q/K/V for all batch rows in one matmul call (one activation conversion; gate/up
 * likewise), biases (qwen2), per-head q/k RMSNorm (qwen3, gemma3), RoPE (model_rope.h:
 * frequency factors, linear / YaRN / LongRoPE scaling, partial rotary; gemma3's local
 * layers have their own base), K/V written into the paged store through each sequence's
 * block table, causal attention per (token, K/V head) in parallel, each job serving the
 * query heads of its GQA group (model_attn.h) and starting at the window's first position
 * on sliding-window layers, output projection, (gemma3: post-attention norm) residual add
 * fused with the next RMSNorm, SwiGLU or GELU-tanh gated FFN, (gemma3: post-FFN norm)
 * residual -> final norm and output matmul for the rows that asked for logits only
 * (final logit soft-capping when the file asks for it). The whole pass is one OpenMP parallel region
 * (matmuls through kq_matmul_n_team, loops as orphaned `omp for`): barriers between steps
 * instead of a fork/join each. Every buffer lives in model_ws; nothing is allocated inside
 * model_forward.
 *
 * Numerics: K and V are stored in F16 (default) or F32. With an F16 store, q and the
 * softmax weights are rounded to F16 inside attention by default, as llama.cpp's CPU path
 * (the golden/ reference) does; model_kv.attn_f32 keeps them F32 as ik_llama.cpp (the
 * golden2 reference) does — within ~1e-6 of its logits on the F32 golden2 models, while
 * the default lands <= 1.9e-3 x max|logit| from them. With F16 weights the kernels round the activations
 * entering a matmul to F16, as both references do. */
#include "model/model.h"
#include "kernels/kq.h"
#include "model/model_attn.h"
#include "model/model_rope.h"
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits that keep every size product far from overflow. */
#define MODEL_MAX_DIM (1 << 20)
#define MODEL_MAX_LAYERS 4096
#define MODEL_MAX_VOCAB (1 << 24)

typedef struct model_mat {
    uint32_t dtype;
    const void *data; /* borrowed from the mmap: (n_out, n_in) of dtype */
    int64_t n_out, n_in;
    uint64_t nbytes;
} model_mat;

typedef struct model_layer {
    const float *attn_norm; /* (n_embd) */
    const float *q_norm;    /* (head_dim) per-head RMSNorm of q: qwen3, gemma3, else NULL */
    const float *k_norm;    /* (head_dim) likewise for k */
    const float *post_attn_norm; /* (n_embd) gemma3: norm of the attention output, else NULL */
    const float *post_ffn_norm;  /* (n_embd) gemma3: norm of the FFN output, else NULL */
    int window;             /* sliding window (attends to pos - window + 1 .. pos), 0 = all */
    bool local_rope;        /* gemma3 local layer: model.rope_local */
    model_mat wq;           /* (n_head*head_dim, n_embd) */
    model_mat wk;           /* (kv_dim, n_embd) */
    model_mat wv;           /* (kv_dim, n_embd) */
    const float *bq;        /* (n_head*head_dim) or NULL: required for qwen2, optional for llama */
    const float *bk;        /* (kv_dim) or NULL; each bias stands alone */
    const float *bv;        /* (kv_dim) or NULL */
    model_mat wo;           /* (n_embd, n_head*head_dim) */
    const float *ffn_norm;  /* (n_embd) */
    model_mat gate;         /* (n_ff, n_embd) */
    model_mat up;           /* (n_ff, n_embd) */
    model_mat down;         /* (n_embd, n_ff) */
} model_layer;

struct model {
    gguf_ctx *g;
    model_config cfg;
    model_mat embd;           /* (n_vocab, n_embd) token_embd */
    model_mat output;         /* (n_vocab, n_embd) output, or token_embd when tied */
    const float *output_norm; /* (n_embd) */
    model_layer *layers;      /* (n_layer) */
    model_rope rope;          /* RoPE of the (global) layers; phi3: short factors */
    model_rope rope_local;    /* gemma3 sliding-window layers */
    model_rope rope_long;     /* phi3: long factors, used when the workspace context > original */
    float embd_scale;         /* gemma3: sqrt(n_embd), else 1 */
    bool gelu;                /* gemma3: GELU-tanh gate, else SiLU */
    uint8_t *used;            /* (n_tensors) tensors the loader consumed */
    model_attn_fn attn;       /* attention implementation for this CPU and head_dim */
    float **owned;            /* 1-D vectors converted to F32 (non-F32 in the file) */
    int n_owned, cap_owned;
};

struct model_ws {
    int max_tokens, max_ctx, n_threads;
    bool long_rope;  /* phi3: max_ctx beyond the original context selects the long factors */
    int n_embd, q_dim, kv_dim, n_ff, n_vocab;
    float *x;       /* (max_tokens, n_embd) residual stream */
    float *xn;      /* (max_tokens, n_embd) normed input / projection output */
    float *q;       /* (max_tokens, q_dim) */
    float *k;       /* (max_tokens, kv_dim) */
    float *v;       /* (max_tokens, kv_dim) */
    float *att;     /* (max_tokens, q_dim) attention output */
    float *gate;    /* (max_tokens, n_ff) */
    float *up;      /* (max_tokens, n_ff) */
    float *scores;  /* (n_threads, n_head / n_head_kv, max_ctx) attention scores per thread */
    float *tile;    /* (n_threads, MODEL_ATTN_TILE, head_dim) converted K/V rows per thread */
    void *mm;       /* matmul scratch: the largest kq_matmul_scratch_bytes of any weight */
};

/* ---------------------------------------------------------------- loading */

static int get_dim(const gguf_ctx *g, const char *arch, const char *key, bool required, int dflt,
                   int *out, sw_err *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    uint32_t v;
    int rc = gguf_get_u32(g, full, &v);
    if (rc == SW_ERR_NOTFOUND && !required) { *out = dflt; return SW_OK; }
    if (rc == SW_ERR_NOTFOUND) return sw_err_set(err, SW_ERR_FORMAT, "model: missing metadata key %s", full);
    if (rc != SW_OK) return sw_err_set(err, SW_ERR_FORMAT, "model: metadata key %s is not an unsigned integer", full);
    if (v == 0 || v > MODEL_MAX_DIM) return sw_err_set(err, SW_ERR_RANGE, "model: %s = %u out of range", full, v);
    *out = (int)v;
    return SW_OK;
}

static int get_float(const gguf_ctx *g, const char *arch, const char *key, float dflt, float *out, sw_err *err) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    int rc = gguf_get_f32(g, full, out);
    if (rc == SW_ERR_NOTFOUND) { *out = dflt; return SW_OK; }
    if (rc != SW_OK) return sw_err_set(err, SW_ERR_FORMAT, "model: metadata key %s is not a float", full);
    if (!(*out > 0) || !isfinite(*out)) return sw_err_set(err, SW_ERR_RANGE, "model: %s = %g out of range", full, *out);
    return SW_OK;
}

static const struct { const char *name; model_arch arch; } ARCHS[] = {
    {"llama", MODEL_ARCH_LLAMA}, {"qwen2", MODEL_ARCH_QWEN2}, {"qwen3", MODEL_ARCH_QWEN3},
    {"gemma3", MODEL_ARCH_GEMMA3}, {"phi3", MODEL_ARCH_PHI3},
};

/* rope.scaling.type and its parameters; rope_freqs / LongRoPE tensors are seen later. */
static int read_rope_scaling(const gguf_ctx *g, const char *arch, model_config *c, sw_err *err) {
    char key[128];
    const char *type = NULL;
    size_t len;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    c->rope_scaling = MODEL_ROPE_NONE;
    if (gguf_get_str(g, key, &type, &len) == SW_OK) {
        if (!strcmp(type, "linear")) c->rope_scaling = MODEL_ROPE_LINEAR;
        else if (!strcmp(type, "yarn")) c->rope_scaling = MODEL_ROPE_YARN;
        else if (strcmp(type, "none") != 0)
            return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: RoPE scaling type '%.32s' is not supported (none, linear, yarn are)", type);
    }
    int rc;
    if ((rc = get_float(g, arch, "rope.scaling.factor", 1.0f, &c->rope_factor, err)) ||
        (rc = get_dim(g, arch, "rope.scaling.original_context_length", false, c->n_ctx_train, &c->rope_ctx_orig, err)))
        return rc;
    if (c->rope_scaling == MODEL_ROPE_NONE) c->rope_factor = 1.0f;
    return SW_OK;
}

static int read_config(model *m, sw_err *err) {
    const gguf_ctx *g = m->g;
    model_config *c = &m->cfg;
    const char *arch;
    size_t len;
    if (gguf_get_str(g, "general.architecture", &arch, &len) != SW_OK)
        return sw_err_set(err, SW_ERR_FORMAT, "model: no general.architecture in the file");
    size_t ai = 0;
    while (ai < sizeof ARCHS / sizeof ARCHS[0] && strcmp(arch, ARCHS[ai].name) != 0) ai++;
    if (ai == sizeof ARCHS / sizeof ARCHS[0])
        return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: unsupported architecture '%.64s' (llama, qwen2, qwen3, gemma3, phi3 are)", arch);
    c->arch = ARCHS[ai].arch;
    int rc;
    if ((rc = get_dim(g, arch, "context_length", true, 0, &c->n_ctx_train, err)) ||
        (rc = get_dim(g, arch, "embedding_length", true, 0, &c->n_embd, err)) ||
        (rc = get_dim(g, arch, "block_count", true, 0, &c->n_layer, err)) ||
        (rc = get_dim(g, arch, "feed_forward_length", true, 0, &c->n_ff, err)) ||
        (rc = get_dim(g, arch, "attention.head_count", true, 0, &c->n_head, err)) ||
        (rc = get_dim(g, arch, "attention.head_count_kv", false, c->n_head, &c->n_head_kv, err)))
        return rc;
    if ((rc = get_dim(g, arch, "attention.key_length", false, 0, &c->head_dim, err))) return rc;
    if (c->head_dim == 0) {
        if (c->n_embd % c->n_head) return sw_err_set(err, SW_ERR_FORMAT, "model: embedding_length %d not divisible by head_count %d", c->n_embd, c->n_head);
        c->head_dim = c->n_embd / c->n_head;
    }
    int vdim;
    if ((rc = get_dim(g, arch, "attention.value_length", false, c->head_dim, &vdim, err))) return rc;
    if (vdim != c->head_dim) return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: value_length %d != key_length %d", vdim, c->head_dim);
    if (c->n_layer > MODEL_MAX_LAYERS) return sw_err_set(err, SW_ERR_RANGE, "model: block_count %d too large", c->n_layer);
    if (c->n_head % c->n_head_kv) return sw_err_set(err, SW_ERR_FORMAT, "model: head_count %d not a multiple of head_count_kv %d", c->n_head, c->n_head_kv);
    if (c->head_dim % 2 || c->head_dim > 2 * MODEL_ROPE_MAX_PAIRS)
        return sw_err_set(err, SW_ERR_FORMAT, "model: head dim %d is odd or above %d", c->head_dim, 2 * MODEL_ROPE_MAX_PAIRS);
    if ((int64_t)c->n_head * c->head_dim > MODEL_MAX_DIM) return sw_err_set(err, SW_ERR_RANGE, "model: head_count x key_length too large");
    if ((rc = get_dim(g, arch, "rope.dimension_count", false, c->head_dim, &c->n_rot, err))) return rc;
    if (c->n_rot % 2 || c->n_rot > c->head_dim)
        return sw_err_set(err, SW_ERR_FORMAT, "model: rope.dimension_count %d is odd or above the head dim %d", c->n_rot, c->head_dim);
    if ((rc = get_float(g, arch, "rope.freq_base", 10000.0f, &c->rope_theta, err)) ||
        (rc = get_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &c->rms_eps, err)) ||
        (rc = read_rope_scaling(g, arch, c, err)))
        return rc;
    c->rope_neox = c->arch != MODEL_ARCH_LLAMA;
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    if (c->arch == MODEL_ARCH_GEMMA3) {
        /* llama.cpp's gemma3: every 6th layer global, local layers RoPE base 10000 unscaled */
        float qpas;
        if ((rc = get_dim(g, arch, "attention.sliding_window", true, 0, &c->sliding_window, err)) ||
            (rc = get_float(g, arch, "attention.query_pre_attn_scalar", (float)c->head_dim, &qpas, err)) ||
            (rc = get_float(g, arch, "final_logit_softcapping", 0.0f, &c->logit_softcap, err)))
            return rc;
        c->swa_pattern = 6;
        c->rope_theta_local = 10000.0f;
        c->attn_scale = 1.0f / sqrtf(qpas);
    }
    /* phi3's attention.sliding_window is ignored, as llama.cpp does (its converters wrote
     * values that do not match the models' attention) */
    return SW_OK;
}

static int find_tensor(model *m, const char *name, bool required, const gguf_tensor **out, sw_err *err) {
    int64_t i = gguf_find_tensor(m->g, name);
    *out = i < 0 ? NULL : gguf_tensor_at(m->g, i);
    if (i >= 0) m->used[i] = 1;
    if (!*out && required) return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s missing", name);
    return SW_OK;
}

/* A matmul weight: 2-D (n_in, n_out) in GGUF order, supported dtype, rows whole blocks. */
static int get_mat(model *m, const char *name, int64_t n_in, int64_t n_out, bool required, model_mat *out, sw_err *err) {
    out->data = NULL;
    const gguf_tensor *t;
    int rc = find_tensor(m, name, required, &t, err);
    if (rc || !t) return rc;
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1)
        return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                          name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                          (long long)n_in, (long long)n_out);
    if (!kq_dtype_supported(t->dtype))
        return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: tensor %s has unsupported type %s", name, gguf_dtype_name(t->dtype));
    uint64_t row = gguf_row_bytes(t->dtype, n_in);
    if (row == 0) return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s: row of %lld is not whole %s blocks", name, (long long)n_in, gguf_dtype_name(t->dtype));
    if (row * (uint64_t)n_out > t->nbytes) return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s is truncated", name);
    *out = (model_mat){.dtype = t->dtype, .data = t->data, .n_out = n_out, .n_in = n_in, .nbytes = row * (uint64_t)n_out};
    return SW_OK;
}

/* A fused weight of n parts stacked along the output rows (phi3's attn_qkv = Q;K;V and
 * ffn_up = gate;up): one view per part, rows n_outs[0], n_outs[1], ... */
static int get_mat_parts(model *m, const char *name, int64_t n_in, int n, const int64_t *n_outs, model_mat *parts, sw_err *err) {
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += n_outs[i];
    model_mat all;
    int rc = get_mat(m, name, n_in, total, true, &all, err);
    if (rc) return rc;
    uint64_t row = gguf_row_bytes(all.dtype, n_in), r0 = 0;
    for (int i = 0; i < n; i++) {
        parts[i] = (model_mat){.dtype = all.dtype, .data = (const char *)all.data + r0 * row, .n_out = n_outs[i],
                               .n_in = n_in, .nbytes = row * (uint64_t)n_outs[i]};
        r0 += (uint64_t)n_outs[i];
    }
    return SW_OK;
}

/* A 1-D F32 vector of n (borrowed), or converted to F32 when stored in another dtype. */
static int get_vec(model *m, const char *name, int64_t n, bool required, const float **out, sw_err *err) {
    const gguf_tensor *t;
    *out = NULL;
    int rc = find_tensor(m, name, required, &t, err);
    if (rc || !t) return rc;
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s has %lld x %lld elements, expected %lld", name,
                          (long long)t->ne[0], (long long)t->ne[1], (long long)n);
    uint64_t row = gguf_row_bytes(t->dtype, n);
    if (!kq_dtype_supported(t->dtype) || row == 0)
        return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: tensor %s has unsupported type %s", name, gguf_dtype_name(t->dtype));
    if (row > t->nbytes) return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s is truncated", name);
    if (t->dtype == GGUF_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) { *out = t->data; return SW_OK; }
    if (m->n_owned == m->cap_owned) {
        int ncap = m->cap_owned ? 2 * m->cap_owned : 16;
        float **no = realloc(m->owned, (size_t)ncap * sizeof *no);
        if (!no) return sw_err_set(err, SW_ERR_NOMEM, "model: out of memory");
        m->owned = no; m->cap_owned = ncap;
    }
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return sw_err_set(err, SW_ERR_NOMEM, "model: out of memory");
    kq_dequantize_row(t->dtype, t->data, v, n);
    m->owned[m->n_owned++] = v;
    *out = v;
    return SW_OK;
}

static int load_layer(model *m, int il, sw_err *err) {
    const model_config *c = &m->cfg;
    model_layer *L = &m->layers[il];
    int64_t D = c->n_embd, QD = (int64_t)c->n_head * c->head_dim, KD = (int64_t)c->n_head_kv * c->head_dim, F = c->n_ff;
    bool bias = c->arch == MODEL_ARCH_QWEN2, fused = c->arch == MODEL_ARCH_PHI3, gemma = c->arch == MODEL_ARCH_GEMMA3;
    bool qk_norm = c->arch == MODEL_ARCH_QWEN3 || gemma;
    /* q/k/v biases: required for qwen2; llama files may carry any subset (as llama.cpp) */
    bool may_bias = bias || c->arch == MODEL_ARCH_LLAMA;
    char n[96];
    int rc;
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", il, s), n)
    if (fused) {
        model_mat qkv[3], gu[2];
        if ((rc = get_mat_parts(m, NAME("attn_qkv.weight"), D, 3, (int64_t[]){QD, KD, KD}, qkv, err)) ||
            (rc = get_mat_parts(m, NAME("ffn_up.weight"), D, 2, (int64_t[]){F, F}, gu, err)))
            return rc;
        L->wq = qkv[0]; L->wk = qkv[1]; L->wv = qkv[2];
        L->gate = gu[0]; L->up = gu[1];
    } else if ((rc = get_mat(m, NAME("attn_q.weight"), D, QD, true, &L->wq, err)) ||
               (rc = get_mat(m, NAME("attn_k.weight"), D, KD, true, &L->wk, err)) ||
               (rc = get_mat(m, NAME("attn_v.weight"), D, KD, true, &L->wv, err)) ||
               (rc = get_mat(m, NAME("ffn_gate.weight"), D, F, true, &L->gate, err)) ||
               (rc = get_mat(m, NAME("ffn_up.weight"), D, F, true, &L->up, err)))
        return rc;
    if ((rc = get_vec(m, NAME("attn_norm.weight"), D, true, &L->attn_norm, err)) ||
        (may_bias && (rc = get_vec(m, NAME("attn_q.bias"), QD, bias, &L->bq, err))) ||
        (may_bias && (rc = get_vec(m, NAME("attn_k.bias"), KD, bias, &L->bk, err))) ||
        (may_bias && (rc = get_vec(m, NAME("attn_v.bias"), KD, bias, &L->bv, err))) ||
        (qk_norm && (rc = get_vec(m, NAME("attn_q_norm.weight"), c->head_dim, true, &L->q_norm, err))) ||
        (qk_norm && (rc = get_vec(m, NAME("attn_k_norm.weight"), c->head_dim, true, &L->k_norm, err))) ||
        (gemma && (rc = get_vec(m, NAME("post_attention_norm.weight"), D, true, &L->post_attn_norm, err))) ||
        (gemma && (rc = get_vec(m, NAME("post_ffw_norm.weight"), D, true, &L->post_ffn_norm, err))) ||
        (rc = get_mat(m, NAME("attn_output.weight"), QD, D, true, &L->wo, err)) ||
        (rc = get_vec(m, NAME("ffn_norm.weight"), D, true, &L->ffn_norm, err)) ||
        (rc = get_mat(m, NAME("ffn_down.weight"), F, D, true, &L->down, err)))
        return rc;
#undef NAME
    if (c->sliding_window && (il + 1) % c->swa_pattern != 0) {
        L->window = c->sliding_window;
        L->local_rope = true;
    }
    return SW_OK;
}

/* RoPE of every layer kind from the config and the frequency-factor tensors
 * (rope_freqs.weight: Llama 3.1; rope_factors_short / _long: Phi-3 LongRoPE). */
static int load_rope(model *m, sw_err *err) {
    model_config *c = &m->cfg;
    const char *arch = NULL;
    size_t len;
    gguf_get_str(m->g, "general.architecture", &arch, &len);
    model_rope r = {.n_rot = c->n_rot, .neox = c->rope_neox, .base = c->rope_theta, .freq_scale = 1.0f / c->rope_factor,
                    .attn_factor = 1.0f};
    int rc;
    if (c->rope_scaling == MODEL_ROPE_YARN) {
        float ext, attn, fast, slow;
        if ((rc = get_float(m->g, arch, "rope.scaling.yarn_ext_factor", 1.0f, &ext, err)) ||
            (rc = get_float(m->g, arch, "rope.scaling.yarn_attn_factor", 1.0f, &attn, err)) ||
            (rc = get_float(m->g, arch, "rope.scaling.yarn_beta_fast", 32.0f, &fast, err)) ||
            (rc = get_float(m->g, arch, "rope.scaling.yarn_beta_slow", 1.0f, &slow, err)))
            return rc;
        r.ext_factor = ext;
        r.attn_factor = attn;
        model_rope_yarn_dims(&r, c->rope_ctx_orig, fast, slow);
    }
    const float *freqs = NULL, *fshort = NULL, *flong = NULL;
    if ((rc = get_vec(m, "rope_freqs.weight", c->n_rot / 2, false, &freqs, err)) ||
        (rc = get_vec(m, "rope_factors_short.weight", c->n_rot / 2, false, &fshort, err)) ||
        (rc = get_vec(m, "rope_factors_long.weight", c->n_rot / 2, false, &flong, err)))
        return rc;
    if (!fshort != !flong) return sw_err_set(err, SW_ERR_FORMAT, "model: rope_factors_short and rope_factors_long come as a pair");
    if (freqs && fshort) return sw_err_set(err, SW_ERR_FORMAT, "model: both rope_freqs and rope_factors tensors");
    if (freqs || fshort) {
        if (c->rope_scaling != MODEL_ROPE_NONE) return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: RoPE frequency factors combined with rope.scaling.type");
        c->rope_scaling = freqs ? MODEL_ROPE_FREQS : MODEL_ROPE_LONGROPE;
    }
    if (fshort && (rc = get_float(m->g, arch, "rope.scaling.attn_factor", 1.0f, &r.attn_factor, err))) return rc;
    r.factors = freqs ? freqs : fshort;
    r.plain = r.n_rot == c->head_dim && !r.factors && r.freq_scale == 1.0f && r.ext_factor == 0.0f && r.attn_factor == 1.0f;
    m->rope = r;
    m->rope_long = r;
    if (flong) { m->rope_long.factors = flong; m->rope_long.plain = false; }
    m->rope_local = (model_rope){.n_rot = c->n_rot, .neox = c->rope_neox, .base = c->rope_theta_local, .freq_scale = 1.0f,
                                 .attn_factor = 1.0f, .plain = c->n_rot == c->head_dim};
    return SW_OK;
}

/* The dtype most matmul weights have (by count), for reports. */
static uint32_t main_dtype(const model *m) {
    int count[64] = {0};
    for (int il = 0; il < m->cfg.n_layer; il++) {
        const model_layer *L = &m->layers[il];
        const model_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (int a = 0; a < 7; a++) count[mats[a]->dtype % 64]++;
    }
    uint32_t best = 0;
    for (uint32_t d = 1; d < 64; d++) if (count[d] > count[best]) best = d;
    return best;
}

int model_load_gguf(gguf_ctx *g, model **out, sw_err *err) {
    *out = NULL;
    model *m = calloc(1, sizeof *m);
    if (!m) {
        gguf_close(g);
        return sw_err_set(err, SW_ERR_NOMEM, "model: out of memory");
    }
    m->g = g;
    int rc;
    if ((rc = read_config(m, err))) goto fail;
    model_config *c = &m->cfg;
    m->used = calloc((size_t)gguf_n_tensors(m->g) + 1, 1);
    if (!m->used) { rc = sw_err_set(err, SW_ERR_NOMEM, "model: out of memory"); goto fail; }
    const gguf_tensor *te;
    if ((rc = find_tensor(m, "token_embd.weight", true, &te, err))) goto fail;
    if (te->ne[1] <= 0 || te->ne[1] > MODEL_MAX_VOCAB) {
        rc = sw_err_set(err, SW_ERR_FORMAT, "model: token_embd.weight has %lld rows", (long long)te->ne[1]);
        goto fail;
    }
    c->n_vocab = (int)te->ne[1];
    if ((rc = get_mat(m, "token_embd.weight", c->n_embd, c->n_vocab, true, &m->embd, err))) goto fail;
    if ((rc = get_vec(m, "output_norm.weight", c->n_embd, true, &m->output_norm, err))) goto fail;
    if ((rc = get_mat(m, "output.weight", c->n_embd, c->n_vocab, false, &m->output, err))) goto fail;
    c->tied_output = m->output.data == NULL;
    if (c->tied_output) m->output = m->embd;
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) { rc = sw_err_set(err, SW_ERR_NOMEM, "model: out of memory"); goto fail; }
    for (int il = 0; il < c->n_layer; il++)
        if ((rc = load_layer(m, il, err))) goto fail;
    if ((rc = load_rope(m, err))) goto fail;
    for (int64_t i = 0; i < gguf_n_tensors(m->g); i++)
        if (!m->used[i]) {
            rc = sw_err_set(err, SW_ERR_UNSUPPORTED, "model: tensor %.96s is not part of the %s architecture as implemented",
                            gguf_tensor_at(m->g, i)->name, ARCHS[c->arch].name);
            goto fail;
        }
    m->embd_scale = c->arch == MODEL_ARCH_GEMMA3 ? sqrtf((float)c->n_embd) : 1.0f;
    m->gelu = c->arch == MODEL_ARCH_GEMMA3;
    c->weight_dtype = main_dtype(m);
    m->attn = model_attn_pick(c->head_dim);
    *out = m;
    return SW_OK;
fail:
    model_free(m);
    return rc;
}

int model_load(const char *path, model **out, sw_err *err) {
    *out = NULL;
    gguf_ctx *g;
    int rc = gguf_open(path, &g, err);
    if (!rc) rc = model_load_gguf(g, out, err);
    if (rc && err && err->msg[0] && strncmp(err->msg, path, strlen(path)) != 0) {
        char tmp[sizeof err->msg];
        snprintf(tmp, sizeof tmp, "%.200s: %.300s", path, err->msg);
        memcpy(err->msg, tmp, sizeof tmp);
    }
    return rc;
}

void model_free(model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->used);
    free(m->layers);
    gguf_close(m->g);
    free(m);
}

const model_config *model_get_config(const model *m) { return &m->cfg; }
const char *model_arch_name(model_arch a) { return a < sizeof ARCHS / sizeof ARCHS[0] ? ARCHS[a].name : "?"; }
const gguf_ctx *model_gguf(const model *m) { return m->g; }

uint64_t model_weight_bytes(const model *m) {
    uint64_t s = m->output.nbytes;
    for (int il = 0; il < m->cfg.n_layer; il++) {
        const model_layer *L = &m->layers[il];
        s += L->wq.nbytes + L->wk.nbytes + L->wv.nbytes + L->wo.nbytes + L->gate.nbytes + L->up.nbytes + L->down.nbytes;
    }
    return s;
}

uint64_t model_param_count(const model *m) {
    uint64_t n = 0;
    for (int64_t i = 0; i < gguf_n_tensors(m->g); i++) {
        const gguf_tensor *t = gguf_tensor_at(m->g, i);
        n += (uint64_t)t->ne[0] * (uint64_t)t->ne[1] * (uint64_t)t->ne[2] * (uint64_t)t->ne[3];
    }
    return n;
}

uint64_t model_kv_bytes_per_token(const model *m, uint32_t kv_dtype) {
    const model_config *c = &m->cfg;
    /* per head: Q8_0 needs whole blocks in each head (0 otherwise) */
    return 2 * (uint64_t)c->n_layer * (uint64_t)c->n_head_kv * kq_kv_row_bytes(kv_dtype, c->head_dim);
}

/* ---------------------------------------------------------------- K/V store */

void *model_kv_row(const model_kv *kv, void *base, int layer, int block, int row) {
    size_t idx = ((size_t)layer * (size_t)kv->n_blocks + (size_t)block) * (size_t)kv->block_size + (size_t)row;
    return (char *)base + idx * kq_kv_row_bytes(kv->dtype, kv->kv_dim);
}

/* The row types are the kernels' (kq_kv_row_bytes is 0 for any other dtype, and for a head
 * that is not whole blocks). */
int model_kv_check_dtype(const model_config *cfg, uint32_t dtype, sw_err *err) {
    const int64_t blck = gguf_dtype_block_elems(dtype);
    if (kq_kv_row_bytes(dtype, blck) == 0)
        return sw_err_set(err, SW_ERR_ARG, "kv: dtype must be F16, F32 or Q8_0, not %s", gguf_dtype_name(dtype));
    if (kq_kv_row_bytes(dtype, cfg->head_dim) == 0)
        return sw_err_set(err, SW_ERR_UNSUPPORTED, "kv: a %s K/V cache needs head_dim a multiple of %lld; this model's head_dim is %d (use --kv-type f16)",
                          gguf_dtype_name(dtype), (long long)blck, cfg->head_dim);
    return SW_OK;
}

int model_kv_create(const model_config *cfg, uint32_t dtype, int block_size, int n_blocks, model_kv **out, sw_err *err) {
    *out = NULL;
    int rc = model_kv_check_dtype(cfg, dtype, err);
    if (rc) return rc;
    if (block_size <= 0 || n_blocks <= 0) return sw_err_set(err, SW_ERR_ARG, "kv: block_size %d / n_blocks %d must be positive", block_size, n_blocks);
    uint64_t n = kq_kv_row_bytes(dtype, (int64_t)cfg->n_head_kv * cfg->head_dim);
    if (!sw_mul_u64(n, (uint64_t)cfg->n_layer, &n) || !sw_mul_u64(n, (uint64_t)n_blocks, &n) ||
        !sw_mul_u64(n, (uint64_t)block_size, &n) || n > SIZE_MAX / 2)
        return sw_err_set(err, SW_ERR_RANGE, "kv: store of %d blocks x %d tokens is too large", n_blocks, block_size);
    model_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return sw_err_set(err, SW_ERR_NOMEM, "kv: out of memory");
    *kv = (model_kv){.dtype = dtype, .block_size = block_size, .n_blocks = n_blocks, .n_layer = cfg->n_layer,
                     .kv_dim = cfg->n_head_kv * cfg->head_dim};
    kv->k = calloc(1, (size_t)n);
    kv->v = calloc(1, (size_t)n);
    if (!kv->k || !kv->v) {
        model_kv_destroy(kv);
        return sw_err_set(err, SW_ERR_NOMEM, "kv: cannot allocate 2 x %llu bytes", (unsigned long long)n);
    }
    *out = kv;
    return SW_OK;
}

void model_kv_destroy(model_kv *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv);
}

/* ---------------------------------------------------------------- workspace */

static void *alloc64(size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, n ? n : 64);
    if (p) memset(p, 0, n ? n : 64);
    return p;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

int model_ws_create(const model *m, int max_tokens, int max_ctx, model_ws **out, sw_err *err) {
    *out = NULL;
    const model_config *c = &m->cfg;
    if (max_tokens <= 0 || max_tokens > (1 << 16) || max_ctx <= 0 || max_ctx > (1 << 24))
        return sw_err_set(err, SW_ERR_ARG, "model: workspace of %d tokens x %d context out of range", max_tokens, max_ctx);
    model_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return sw_err_set(err, SW_ERR_NOMEM, "model: out of memory");
    ws->max_tokens = max_tokens;
    ws->max_ctx = max_ctx;
    ws->long_rope = max_ctx > c->rope_ctx_orig;
    ws->n_threads = omp_get_max_threads();
    ws->n_embd = c->n_embd;
    ws->q_dim = c->n_head * c->head_dim;
    ws->kv_dim = c->n_head_kv * c->head_dim;
    ws->n_ff = c->n_ff;
    ws->n_vocab = c->n_vocab;
    size_t T = (size_t)max_tokens, f = sizeof(float);
    ws->x = alloc64(T * (size_t)ws->n_embd * f);
    ws->xn = alloc64(T * (size_t)ws->n_embd * f);
    ws->q = alloc64(T * (size_t)ws->q_dim * f);
    ws->k = alloc64(T * (size_t)ws->kv_dim * f);
    ws->v = alloc64(T * (size_t)ws->kv_dim * f);
    ws->att = alloc64(T * (size_t)ws->q_dim * f);
    ws->gate = alloc64(T * (size_t)ws->n_ff * f);
    ws->up = alloc64(T * (size_t)ws->n_ff * f);
    ws->scores = alloc64((size_t)ws->n_threads * (size_t)(c->n_head / c->n_head_kv) * (size_t)max_ctx * f);
    ws->tile = alloc64((size_t)ws->n_threads * MODEL_ATTN_TILE * (size_t)c->head_dim * f);
    size_t mm = kq_matmul_scratch_bytes(m->output.dtype, c->n_embd, max_tokens);
    for (int il = 0; il < c->n_layer; il++) {
        const model_layer *L = &m->layers[il];
        const model_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up, &L->down};
        for (int a = 0; a < 7; a++) mm = max_sz(mm, kq_matmul_scratch_bytes(mats[a]->dtype, mats[a]->n_in, max_tokens));
    }
    ws->mm = alloc64(mm);
    if (!ws->x || !ws->xn || !ws->q || !ws->k || !ws->v || !ws->att || !ws->gate || !ws->up || !ws->scores || !ws->tile || !ws->mm) {
        model_ws_destroy(ws);
        return sw_err_set(err, SW_ERR_NOMEM, "model: cannot allocate a workspace of %d tokens x %d context", max_tokens, max_ctx);
    }
    *out = ws;
    return SW_OK;
}

void model_ws_destroy(model_ws *ws) {
    if (!ws) return;
    free(ws->x); free(ws->xn); free(ws->q); free(ws->k); free(ws->v);
    free(ws->att); free(ws->gate); free(ws->up); free(ws->scores); free(ws->tile); free(ws->mm);
    free(ws);
}

/* ---------------------------------------------------------------- forward */

/* Rounds n values to F16 in place: q before it meets an F16 K store (unless model_kv.attn_f32). */
static void round_f16_rows(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = kq_f16_to_f32(kq_f32_to_f16(x[i]));
}

/* The helpers below run inside model_forward's one parallel region: every thread of the
 * team calls each of them (their loops are split with orphaned `omp for`, whose implicit
 * barrier ends each step), so a layer costs barriers instead of fork/joins. */

/* Y[i] (n_tok, W[i]->n_out) = X (n_tok, n_in) · W[i]ᵀ for i < n, matrices sharing their
 * input (Q/K/V, gate/up): one kq_matmul_n_team call (one activation conversion) when they
 * have one dtype, else one each. F16 weights: the kernel rounds X to F16. */
static void matmul_team(model_ws *ws, int n, const model_mat *const *W, const float *X, int64_t n_tok, float *const *Y) {
    const void *data[3];
    int64_t n_out[3];
    bool same = n <= 3;
    for (int i = 0; i < n && same; i++) {
        same = W[i]->dtype == W[0]->dtype && W[i]->n_in == W[0]->n_in;
        data[i] = W[i]->data;
        n_out[i] = W[i]->n_out;
    }
    if (same) kq_matmul_n_team(n, W[0]->dtype, data, n_out, W[0]->n_in, X, n_tok, Y, ws->mm);
    else
        for (int i = 0; i < n; i++) kq_matmul_n_team(1, W[i]->dtype, &W[i]->data, &W[i]->n_out, W[i]->n_in, X, n_tok, &Y[i], ws->mm);
}

/* Per batch row j: delta[j] = rmsnorm(delta[j]) * dw (when dw: gemma3's post-attention /
 * post-FFN norms), x[j] += delta[j] (when delta), then xn[j] = rmsnorm(x[j]) * w (when w).
 * One pass over the residual stream for the add and the next layer's norm. delta may be xn. */
static void residual_norm(model_ws *ws, int T, int D, float *delta, const float *dw, const float *w, float eps) {
#pragma omp for
    for (int j = 0; j < T; j++) {
        float *x = ws->x + (size_t)j * D;
        if (dw) kq_rmsnorm(delta + (size_t)j * D, delta + (size_t)j * D, dw, D, eps);
        if (delta) kq_add(x, x, delta + (size_t)j * D, D);
        if (w) kq_rmsnorm(ws->xn + (size_t)j * D, x, w, D, eps);
    }
}

static int check_batch(const model *m, const model_ws *ws, const model_kv *kv, const model_batch *b, sw_err *err) {
    const model_config *c = &m->cfg;
    if (!b || b->n_tokens <= 0 || b->n_tokens > ws->max_tokens)
        return sw_err_set(err, SW_ERR_ARG, "forward: batch of %d tokens (workspace holds 1..%d)", b ? b->n_tokens : 0, ws->max_tokens);
    if (ws->n_embd != c->n_embd || ws->q_dim != c->n_head * c->head_dim || ws->n_ff != c->n_ff || ws->n_vocab != c->n_vocab)
        return sw_err_set(err, SW_ERR_ARG, "forward: workspace was made for another model");
    if (!kv || model_kv_check_dtype(c, kv->dtype, NULL) != SW_OK || kv->n_layer != c->n_layer ||
        kv->kv_dim != c->n_head_kv * c->head_dim || kv->block_size <= 0 || kv->n_blocks <= 0 || !kv->k || !kv->v)
        return sw_err_set(err, SW_ERR_ARG, "forward: K/V store does not match the model");
    if (!b->tokens || !b->pos || !b->seq || !b->block_tables || b->n_seqs <= 0)
        return sw_err_set(err, SW_ERR_ARG, "forward: batch arrays missing");
    for (int j = 0; j < b->n_tokens; j++) {
        int32_t t = b->tokens[j], p = b->pos[j], s = b->seq[j];
        if (t < 0 || t >= c->n_vocab) return sw_err_set(err, SW_ERR_ARG, "forward: token id %d out of range [0, %d)", t, c->n_vocab);
        if (p < 0 || p >= ws->max_ctx) return sw_err_set(err, SW_ERR_ARG, "forward: position %d out of range [0, %d)", p, ws->max_ctx);
        if (s < 0 || s >= b->n_seqs || !b->block_tables[s]) return sw_err_set(err, SW_ERR_ARG, "forward: sequence index %d out of range", s);
        const int32_t *bt = b->block_tables[s];
        for (int blk = 0; blk <= p / kv->block_size; blk++)
            if (bt[blk] < 0 || bt[blk] >= kv->n_blocks)
                return sw_err_set(err, SW_ERR_ARG, "forward: block id %d (seq %d, block %d) out of range", bt[blk], s, blk);
    }
    return SW_OK;
}

/* Attention for every (token, K/V head) pair of the batch, split over the team; each pair
 * handles the query heads of its GQA group (model_attn.h). */
static void attention(model_ws *ws, const model *m, const model_kv *kv, const model_batch *b, int il) {
    const model_config *c = &m->cfg;
    const int n_tok = b->n_tokens, HK = c->n_head_kv, hd = c->head_dim, group = c->n_head / c->n_head_kv;
    const int window = m->layers[il].window;
    const int n_items = n_tok * HK;
    const size_t per_thread = (size_t)group * (size_t)ws->max_ctx;
#pragma omp for schedule(dynamic, 1)
    for (int it = 0; it < n_items; it++) {
        int j = it / HK, g = it % HK;
        size_t qoff = (size_t)j * ws->q_dim + (size_t)g * group * hd;
        int start = window && b->pos[j] >= window ? b->pos[j] - window + 1 : 0;
        model_attn_job job = {.kv = kv, .layer = il, .block_table = b->block_tables[b->seq[j]], .start = start, .pos = b->pos[j],
                              .kv_head = g, .head_dim = hd, .group = group, .scale = c->attn_scale, .q = ws->q + qoff,
                              .out = ws->att + qoff, .scores = ws->scores + (size_t)omp_get_thread_num() * per_thread,
                              .tile = ws->tile + (size_t)omp_get_thread_num() * MODEL_ATTN_TILE * (size_t)hd};
        m->attn(&job);
    }
}

/* Per-token work between the Q/K/V matmuls and attention: biases, q/k norms, RoPE, the q
 * and the K/V rows written to the token's slot. */
static void qkv_token(const model *m, const model_ws *ws, const model_kv *kv, const model_batch *b, int il, int j) {
    const model_config *c = &m->cfg;
    const model_layer *L = &m->layers[il];
    const int QD = ws->q_dim, KD = ws->kv_dim, hd = c->head_dim, pos = b->pos[j];
    float *q = ws->q + (size_t)j * QD, *k = ws->k + (size_t)j * KD, *v = ws->v + (size_t)j * KD;
    /* each bias is optional on its own (a file may carry any subset) */
    if (L->bq) kq_add(q, q, L->bq, QD);
    if (L->bk) kq_add(k, k, L->bk, KD);
    if (L->bv) kq_add(v, v, L->bv, KD);
    if (L->q_norm) {
        for (int h = 0; h < c->n_head; h++) kq_rmsnorm(q + (size_t)h * hd, q + (size_t)h * hd, L->q_norm, hd, c->rms_eps);
        for (int h = 0; h < c->n_head_kv; h++) kq_rmsnorm(k + (size_t)h * hd, k + (size_t)h * hd, L->k_norm, hd, c->rms_eps);
    }
    const model_rope *r = L->local_rope ? &m->rope_local : ws->long_rope ? &m->rope_long : &m->rope;
    if (r->plain) {
        kq_rope_heads(q, c->n_head, hd, pos, r->base, r->neox);
        kq_rope_heads(k, c->n_head_kv, hd, pos, r->base, r->neox);
    } else {
        float cs[MODEL_ROPE_MAX_PAIRS], sn[MODEL_ROPE_MAX_PAIRS];
        model_rope_table(r, pos, cs, sn);
        model_rope_apply(r, q, c->n_head, hd, cs, sn);
        model_rope_apply(r, k, c->n_head_kv, hd, cs, sn);
    }
    if (!kv->attn_f32 && kv->dtype == GGUF_DTYPE_F16) round_f16_rows(q, QD);
    const int32_t *bt = b->block_tables[b->seq[j]];
    int blk = bt[pos / kv->block_size], row = pos % kv->block_size;
    kq_store_kv(kv->dtype, model_kv_row(kv, kv->k, il, blk, row), k, KD);
    kq_store_kv(kv->dtype, model_kv_row(kv, kv->v, il, blk, row), v, KD);
}

/* out = gelu_tanh(gate) * up (ggml's tanh approximation of GELU). */
static void gelu_mul(float *out, const float *gate, const float *up, int n) {
    const float c0 = 0.7978845608028654f, c1 = 0.044715f;
    for (int i = 0; i < n; i++) {
        float x = gate[i];
        out[i] = 0.5f * x * (1.0f + tanhf(c0 * x * (1.0f + c1 * x * x))) * up[i];
    }
}

int model_forward(model *m, model_ws *ws, const model_kv *kv, const model_batch *b, float *out, sw_err *err) {
    int rc = check_batch(m, ws, kv, b, err);
    if (rc) return rc;
    const model_config *c = &m->cfg;
    const int T = b->n_tokens, D = c->n_embd, F = c->n_ff;
    const uint64_t erow = gguf_row_bytes(m->embd.dtype, D);
    int n_out = 0; /* rows that want logits, gathered to the front of xn */
    /* one parallel region for the whole pass (see matmul_team) */
#pragma omp parallel num_threads(ws->n_threads)
    {
#pragma omp for
        for (int j = 0; j < T; j++) {
            float *x = ws->x + (size_t)j * D;
            kq_dequantize_row(m->embd.dtype, (const char *)m->embd.data + (uint64_t)b->tokens[j] * erow, x, D);
            if (m->embd_scale != 1.0f)
                for (int i = 0; i < D; i++) x[i] *= m->embd_scale;
        }
        residual_norm(ws, T, D, NULL, NULL, m->layers[0].attn_norm, c->rms_eps);
        for (int il = 0; il < c->n_layer; il++) {
            const model_layer *L = &m->layers[il];
            matmul_team(ws, 3, (const model_mat *[]){&L->wq, &L->wk, &L->wv}, ws->xn, T, (float *[]){ws->q, ws->k, ws->v});
#pragma omp for
            for (int j = 0; j < T; j++) qkv_token(m, ws, kv, b, il, j);
            attention(ws, m, kv, b, il);
            matmul_team(ws, 1, (const model_mat *[]){&L->wo}, ws->att, T, (float *[]){ws->xn});
            residual_norm(ws, T, D, ws->xn, L->post_attn_norm, L->ffn_norm, c->rms_eps);
            matmul_team(ws, 2, (const model_mat *[]){&L->gate, &L->up}, ws->xn, T, (float *[]){ws->gate, ws->up});
#pragma omp for
            for (int j = 0; j < T; j++) {
                float *g = ws->gate + (size_t)j * F;
                if (m->gelu) gelu_mul(g, g, ws->up + (size_t)j * F, F);
                else kq_silu_mul(g, g, ws->up + (size_t)j * F, F);
            }
            matmul_team(ws, 1, (const model_mat *[]){&L->down}, ws->gate, T, (float *[]){ws->xn});
            residual_norm(ws, T, D, ws->xn, L->post_ffn_norm, il + 1 < c->n_layer ? m->layers[il + 1].attn_norm : NULL, c->rms_eps);
        }
        /* final norm only for the rows that want logits */
#pragma omp single
        for (int j = 0; j < T; j++) {
            bool want = b->logits ? b->logits[j] != 0 : j == T - 1;
            if (!want) continue;
            kq_rmsnorm(ws->xn + (size_t)n_out * D, ws->x + (size_t)j * D, m->output_norm, D, c->rms_eps);
            n_out++;
        }
        if (n_out > 0) matmul_team(ws, 1, (const model_mat *[]){&m->output}, ws->xn, n_out, (float *[]){out});
        if (c->logit_softcap > 0) {
            const float cap = c->logit_softcap;
#pragma omp for
            for (int j = 0; j < n_out; j++)
                for (int v = 0; v < c->n_vocab; v++) out[(size_t)j * c->n_vocab + v] = cap * tanhf(out[(size_t)j * c->n_vocab + v] / cap);
        }
    }
    return SW_OK;
}
