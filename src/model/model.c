/* model.c — loading a Llama / Qwen2 model from GGUF and the forward pass over a ragged
 * batch. The loader reads the config from `ARCH.*` metadata, finds every tensor, checks
 * its dtype and shape against the config and keeps a pointer into the mmap (weights are
 * never copied; only the small 1-D norm/bias vectors are converted when not F32).
 *
 * Forward: embeddings (dequantized per token) -> per layer: RMSNorm, Q/K/V for all batch
 * rows in one matmul call (one activation conversion; gate/up likewise), biases, RoPE, K/V written into the paged store through each
 * sequence's block table, causal attention per (token, K/V head) in parallel, each job
 * serving the query heads of its GQA group (model_attn.h), output projection, residual
 * add fused with the next RMSNorm, SwiGLU FFN, residual -> final norm and output matmul
 * for the rows that asked for logits only. The whole pass is one OpenMP parallel region
 * (matmuls through kq_matmul_n_team, loops as orphaned `omp for`): barriers between steps
 * instead of a fork/join each. Every buffer lives in model_ws; nothing is allocated inside
 * model_forward.
 *
 * Numerics follow the reference engine: with an F16 K/V store, q and the softmax weights
 * are rounded to F16 inside attention; with F16 weights the kernels round the activations
 * entering a matmul to F16. */
#include "model/model.h"
#include "kernels/kq.h"
#include "model/model_attn.h"
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
    model_attn_fn attn;       /* attention implementation for this CPU and head_dim */
    float **owned;            /* 1-D vectors converted to F32 (non-F32 in the file) */
    int n_owned, cap_owned;
};

struct model_ws {
    int max_tokens, max_ctx, n_threads;
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

static int read_config(model *m, sw_err *err) {
    const gguf_ctx *g = m->g;
    model_config *c = &m->cfg;
    const char *arch;
    size_t len;
    if (gguf_get_str(g, "general.architecture", &arch, &len) != SW_OK)
        return sw_err_set(err, SW_ERR_FORMAT, "model: no general.architecture in the file");
    if (!strcmp(arch, "llama")) c->arch = MODEL_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2")) c->arch = MODEL_ARCH_QWEN2;
    else return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: unsupported architecture '%.64s' (llama and qwen2 are)", arch);
    int rc;
    if ((rc = get_dim(g, arch, "context_length", true, 0, &c->n_ctx_train, err)) ||
        (rc = get_dim(g, arch, "embedding_length", true, 0, &c->n_embd, err)) ||
        (rc = get_dim(g, arch, "block_count", true, 0, &c->n_layer, err)) ||
        (rc = get_dim(g, arch, "feed_forward_length", true, 0, &c->n_ff, err)) ||
        (rc = get_dim(g, arch, "attention.head_count", true, 0, &c->n_head, err)) ||
        (rc = get_dim(g, arch, "attention.head_count_kv", false, c->n_head, &c->n_head_kv, err)))
        return rc;
    if (c->n_embd % c->n_head) return sw_err_set(err, SW_ERR_FORMAT, "model: embedding_length %d not divisible by head_count %d", c->n_embd, c->n_head);
    if ((rc = get_dim(g, arch, "attention.key_length", false, c->n_embd / c->n_head, &c->head_dim, err))) return rc;
    int vdim;
    if ((rc = get_dim(g, arch, "attention.value_length", false, c->head_dim, &vdim, err))) return rc;
    if (vdim != c->head_dim) return sw_err_set(err, SW_ERR_UNSUPPORTED, "model: value_length %d != key_length %d", vdim, c->head_dim);
    if (c->n_layer > MODEL_MAX_LAYERS) return sw_err_set(err, SW_ERR_RANGE, "model: block_count %d too large", c->n_layer);
    if (c->n_head % c->n_head_kv) return sw_err_set(err, SW_ERR_FORMAT, "model: head_count %d not a multiple of head_count_kv %d", c->n_head, c->n_head_kv);
    if (c->head_dim % 2) return sw_err_set(err, SW_ERR_FORMAT, "model: head dim %d is odd", c->head_dim);
    if ((int64_t)c->n_head * c->head_dim > MODEL_MAX_DIM) return sw_err_set(err, SW_ERR_RANGE, "model: head_count x key_length too large");
    if ((rc = get_float(g, arch, "rope.freq_base", 10000.0f, &c->rope_theta, err)) ||
        (rc = get_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &c->rms_eps, err)))
        return rc;
    c->rope_neox = c->arch == MODEL_ARCH_QWEN2;
    char key[128];
    const char *scaling = NULL;
    size_t slen;
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (gguf_get_str(g, key, &scaling, &slen) == SW_OK && strcmp(scaling, "none") != 0)
        sw_warn("model: RoPE scaling '%.32s' is not implemented; plain RoPE is used (outputs differ from the reference)", scaling);
    else if (gguf_find_tensor(g, "rope_freqs.weight") >= 0)
        sw_warn("model: rope_freqs.weight (Llama 3 RoPE frequency factors) is not implemented; plain RoPE is used");
    return SW_OK;
}

static int find_tensor(const model *m, const char *name, bool required, const gguf_tensor **out, sw_err *err) {
    int64_t i = gguf_find_tensor(m->g, name);
    *out = i < 0 ? NULL : gguf_tensor_at(m->g, i);
    if (!*out && required) return sw_err_set(err, SW_ERR_FORMAT, "model: tensor %s missing", name);
    return SW_OK;
}

/* A matmul weight: 2-D (n_in, n_out) in GGUF order, supported dtype, rows whole blocks. */
static int get_mat(model *m, const char *name, int64_t n_in, int64_t n_out, bool required, model_mat *out, sw_err *err) {
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
    bool bias = c->arch == MODEL_ARCH_QWEN2;
    char n[96];
    int rc;
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", il, s), n)
    if ((rc = get_vec(m, NAME("attn_norm.weight"), D, true, &L->attn_norm, err)) ||
        (rc = get_mat(m, NAME("attn_q.weight"), D, QD, true, &L->wq, err)) ||
        (rc = get_mat(m, NAME("attn_k.weight"), D, KD, true, &L->wk, err)) ||
        (rc = get_mat(m, NAME("attn_v.weight"), D, KD, true, &L->wv, err)) ||
        (rc = get_vec(m, NAME("attn_q.bias"), QD, bias, &L->bq, err)) ||
        (rc = get_vec(m, NAME("attn_k.bias"), KD, bias, &L->bk, err)) ||
        (rc = get_vec(m, NAME("attn_v.bias"), KD, bias, &L->bv, err)) ||
        (rc = get_mat(m, NAME("attn_output.weight"), QD, D, true, &L->wo, err)) ||
        (rc = get_vec(m, NAME("ffn_norm.weight"), D, true, &L->ffn_norm, err)) ||
        (rc = get_mat(m, NAME("ffn_gate.weight"), D, F, true, &L->gate, err)) ||
        (rc = get_mat(m, NAME("ffn_up.weight"), D, F, true, &L->up, err)) ||
        (rc = get_mat(m, NAME("ffn_down.weight"), F, D, true, &L->down, err)))
        return rc;
#undef NAME
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
    free(m->layers);
    gguf_close(m->g);
    free(m);
}

const model_config *model_get_config(const model *m) { return &m->cfg; }
const gguf_ctx *model_gguf(const model *m) { return m->g; }

uint64_t model_weight_bytes(const model *m) {
    uint64_t s = m->output.nbytes;
    for (int il = 0; il < m->cfg.n_layer; il++) {
        const model_layer *L = &m->layers[il];
        s += L->wq.nbytes + L->wk.nbytes + L->wv.nbytes + L->wo.nbytes + L->gate.nbytes + L->up.nbytes + L->down.nbytes;
    }
    return s;
}

/* ---------------------------------------------------------------- K/V store */

static size_t kv_elem_size(uint32_t dtype) { return dtype == GGUF_DTYPE_F16 ? 2 : 4; }

void *model_kv_row(const model_kv *kv, void *base, int layer, int block, int row) {
    size_t idx = (((size_t)layer * (size_t)kv->n_blocks + (size_t)block) * (size_t)kv->block_size + (size_t)row) * (size_t)kv->kv_dim;
    return (char *)base + idx * kv_elem_size(kv->dtype);
}

int model_kv_create(const model_config *cfg, uint32_t dtype, int block_size, int n_blocks, model_kv **out, sw_err *err) {
    *out = NULL;
    if (dtype != GGUF_DTYPE_F16 && dtype != GGUF_DTYPE_F32)
        return sw_err_set(err, SW_ERR_ARG, "kv: dtype must be F16 or F32, not %s", gguf_dtype_name(dtype));
    if (block_size <= 0 || n_blocks <= 0) return sw_err_set(err, SW_ERR_ARG, "kv: block_size %d / n_blocks %d must be positive", block_size, n_blocks);
    uint64_t n = kv_elem_size(dtype);
    if (!sw_mul_u64(n, (uint64_t)cfg->n_layer, &n) || !sw_mul_u64(n, (uint64_t)n_blocks, &n) ||
        !sw_mul_u64(n, (uint64_t)block_size, &n) || !sw_mul_u64(n, (uint64_t)cfg->n_head_kv * (uint64_t)cfg->head_dim, &n) ||
        n > SIZE_MAX / 2)
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

/* Rounds n values to F16 in place: q before it meets an F16 K store, as the reference does. */
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

/* Per batch row j: x[j] += delta[j] (when delta), then xn[j] = rmsnorm(x[j]) * w (when w).
 * One pass over the residual stream for the add and the next layer's norm. delta may be xn. */
static void residual_norm(model_ws *ws, int T, int D, const float *delta, const float *w, float eps) {
#pragma omp for
    for (int j = 0; j < T; j++) {
        float *x = ws->x + (size_t)j * D;
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
    if (!kv || (kv->dtype != GGUF_DTYPE_F16 && kv->dtype != GGUF_DTYPE_F32) || kv->n_layer != c->n_layer ||
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
    const float scale = 1.0f / sqrtf((float)hd);
    const int n_items = n_tok * HK;
    const size_t per_thread = (size_t)group * (size_t)ws->max_ctx;
#pragma omp for schedule(dynamic, 1)
    for (int it = 0; it < n_items; it++) {
        int j = it / HK, g = it % HK;
        size_t qoff = (size_t)j * ws->q_dim + (size_t)g * group * hd;
        model_attn_job job = {.kv = kv, .layer = il, .block_table = b->block_tables[b->seq[j]], .pos = b->pos[j],
                              .kv_head = g, .head_dim = hd, .group = group, .scale = scale, .q = ws->q + qoff,
                              .out = ws->att + qoff, .scores = ws->scores + (size_t)omp_get_thread_num() * per_thread,
                              .tile = ws->tile + (size_t)omp_get_thread_num() * MODEL_ATTN_TILE * (size_t)hd};
        m->attn(&job);
    }
}

int model_forward(model *m, model_ws *ws, const model_kv *kv, const model_batch *b, float *out, sw_err *err) {
    int rc = check_batch(m, ws, kv, b, err);
    if (rc) return rc;
    const model_config *c = &m->cfg;
    const int T = b->n_tokens, D = c->n_embd, QD = ws->q_dim, KD = ws->kv_dim, F = c->n_ff, hd = c->head_dim;
    const uint64_t erow = gguf_row_bytes(m->embd.dtype, D);
    int n_out = 0; /* rows that want logits, gathered to the front of xn */
    /* one parallel region for the whole pass (see matmul_team) */
#pragma omp parallel num_threads(ws->n_threads)
    {
#pragma omp for
        for (int j = 0; j < T; j++)
            kq_dequantize_row(m->embd.dtype, (const char *)m->embd.data + (uint64_t)b->tokens[j] * erow, ws->x + (size_t)j * D, D);
        residual_norm(ws, T, D, NULL, m->layers[0].attn_norm, c->rms_eps);
        for (int il = 0; il < c->n_layer; il++) {
            const model_layer *L = &m->layers[il];
            matmul_team(ws, 3, (const model_mat *[]){&L->wq, &L->wk, &L->wv}, ws->xn, T, (float *[]){ws->q, ws->k, ws->v});
#pragma omp for
            for (int j = 0; j < T; j++) {
                float *q = ws->q + (size_t)j * QD, *k = ws->k + (size_t)j * KD, *v = ws->v + (size_t)j * KD;
                /* each bias is optional on its own (a file may carry any subset) */
                if (L->bq) kq_add(q, q, L->bq, QD);
                if (L->bk) kq_add(k, k, L->bk, KD);
                if (L->bv) kq_add(v, v, L->bv, KD);
                kq_rope_heads(q, c->n_head, hd, b->pos[j], c->rope_theta, c->rope_neox);
                kq_rope_heads(k, c->n_head_kv, hd, b->pos[j], c->rope_theta, c->rope_neox);
                if (kv->dtype == GGUF_DTYPE_F16) round_f16_rows(q, QD);
                const int32_t *bt = b->block_tables[b->seq[j]];
                int blk = bt[b->pos[j] / kv->block_size], row = b->pos[j] % kv->block_size;
                kq_store_kv(kv->dtype, model_kv_row(kv, kv->k, il, blk, row), k, KD);
                kq_store_kv(kv->dtype, model_kv_row(kv, kv->v, il, blk, row), v, KD);
            }
            attention(ws, m, kv, b, il);
            matmul_team(ws, 1, (const model_mat *[]){&L->wo}, ws->att, T, (float *[]){ws->xn});
            residual_norm(ws, T, D, ws->xn, L->ffn_norm, c->rms_eps);
            matmul_team(ws, 2, (const model_mat *[]){&L->gate, &L->up}, ws->xn, T, (float *[]){ws->gate, ws->up});
#pragma omp for
            for (int j = 0; j < T; j++)
                kq_silu_mul(ws->gate + (size_t)j * F, ws->gate + (size_t)j * F, ws->up + (size_t)j * F, F);
            matmul_team(ws, 1, (const model_mat *[]){&L->down}, ws->gate, T, (float *[]){ws->xn});
            residual_norm(ws, T, D, ws->xn, il + 1 < c->n_layer ? m->layers[il + 1].attn_norm : NULL, c->rms_eps);
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
    }
    return SW_OK;
}
