/* model_gen_test.c — the random-model generator and requantizer. Generates tiny models
 * of every weight type into /tmp and checks, through the GGUF reader: metadata and
 * tokenizer keys (copied from the vocab, padded with [PADn] tokens), tensor names /
 * shapes / per-tensor types (llama.cpp's Q4_K_M, Q5_K_M, Q3_K_M, Q2_K, IQ4_NL, IQ4_XS, Q4_0 and Q5_0 rules with their
 * fallbacks for rows that are not a multiple of 256, hard-coded here, and compared with
 * the types of ../shared/models/llama-spm-kq.q4_k_m.gguf written by llama.cpp and of
 * ../shared/models2/llama3-rope-kq.q3_k_m.gguf), that
 * quantized tensors dequantize close to the F32 file of the same seed, same seed ->
 * identical bytes, requantizing the F32 file reproduces the generated quantized file,
 * and that the logits are O(10) and separated — with a one-token (position 0) F32
 * forward written here and first validated against ../shared/golden top-5 logits.
 * The presets of the newer families (llama-3.2-1b with rope_freqs, qwen3-0.6b, gemma3-1b,
 * phi-4-mini) are written at a tiny size with their family's tensors and metadata and run
 * through the model module (config read back, finite logits, chunked = one-shot). */
#include "gguf/gguf.h"
#include "kernels/kq.h"
#include "model/model.h"
#include "model/model_gen.h"
#include "t.h"
#include <math.h>

#define VOCAB_SPM SHARED "/vocab/ggml-vocab-llama-spm.gguf"
#define VOCAB_GPT2 SHARED "/vocab/ggml-vocab-gpt-2.gguf"

static char *tmp_path(char *buf, size_t n) {
    snprintf(buf, n, "/tmp/model_gen_test_XXXXXX");
    int fd = mkstemp(buf);
    if (fd >= 0) close(fd);
    return buf;
}

static const gguf_tensor *tensor(const gguf_ctx *g, const char *name) {
    return gguf_tensor_at(g, gguf_find_tensor(g, name));
}

/* y (rows) = W (rows x n) · x, W any dtype the kernels dequantize. */
static void matvec(const gguf_tensor *w, const float *x, float *y) {
    int64_t n = w->ne[0];
    uint64_t rb = gguf_row_bytes(w->dtype, n);
    float *row = malloc((size_t)n * sizeof *row);
    for (int64_t r = 0; r < w->ne[1]; r++) {
        kq_dequantize_row(w->dtype, (const char *)w->data + (uint64_t)r * rb, row, n);
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)row[i] * x[i];
        y[r] = (float)s;
    }
    free(row);
}

static void rmsnorm(float *o, const float *x, const gguf_tensor *w, int64_t n, float eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float sc = 1.0f / sqrtf((float)(ss / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) o[i] = x[i] * sc * ((const float *)w->data)[i];
}

/* Logits (n_vocab) of token tok at position 0: attention over one position is just V. */
static int forward_pos0(const gguf_ctx *g, int tok, float *logits) {
    const char *arch;
    char key[128];
    uint32_t D, L, H, HK, F;
    float eps;
    gguf_get_str(g, "general.architecture", &arch, NULL);
#define U(suffix, out) (snprintf(key, sizeof key, "%s." suffix, arch), gguf_get_u32(g, key, out))
    if (U("embedding_length", &D) || U("block_count", &L) || U("attention.head_count", &H) ||
        U("attention.head_count_kv", &HK) || U("feed_forward_length", &F))
        return -1;
#undef U
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    if (gguf_get_f32(g, key, &eps)) return -1;
    int64_t hd = D / H, kvd = hd * HK;
    float *x = calloc(D, 4), *h = calloc(D, 4), *v = calloc(kvd, 4), *o = calloc(D, 4), *t = calloc(D, 4);
    float *a = calloc(F, 4), *b = calloc(F, 4);
    const gguf_tensor *te = tensor(g, "token_embd.weight");
    kq_dequantize_row(te->dtype, (const char *)te->data + (uint64_t)tok * gguf_row_bytes(te->dtype, D), x, D);
    for (uint32_t l = 0; l < L; l++) {
        char nm[64];
#define T(s) (snprintf(nm, sizeof nm, "blk.%u." s, l), tensor(g, nm))
        rmsnorm(h, x, T("attn_norm.weight"), D, eps);
        matvec(T("attn_v.weight"), h, v);
        const gguf_tensor *bv = T("attn_v.bias");
        if (bv)
            for (int64_t i = 0; i < kvd; i++) v[i] += ((const float *)bv->data)[i];
        for (int64_t i = 0; i < D; i++) o[i] = v[(i / hd) / (H / HK) * hd + i % hd];
        matvec(T("attn_output.weight"), o, t);
        for (int64_t i = 0; i < D; i++) x[i] += t[i];
        rmsnorm(h, x, T("ffn_norm.weight"), D, eps);
        matvec(T("ffn_gate.weight"), h, a);
        matvec(T("ffn_up.weight"), h, b);
        for (int64_t i = 0; i < F; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
        matvec(T("ffn_down.weight"), a, t);
        for (int64_t i = 0; i < D; i++) x[i] += t[i];
#undef T
    }
    rmsnorm(h, x, tensor(g, "output_norm.weight"), D, eps);
    const gguf_tensor *out = tensor(g, "output.weight");
    matvec(out ? out : te, h, logits);
    free(x); free(h); free(v); free(o); free(t); free(a); free(b);
    return 0;
}

static void top2(const float *l, int64_t n, int *best, float *gap) {
    int i1 = 0, i2 = -1;
    for (int64_t i = 1; i < n; i++) {
        if (l[i] > l[i1]) { i2 = i1; i1 = (int)i; }
        else if (i2 < 0 || l[i] > l[i2]) i2 = (int)i;
    }
    *best = i1;
    *gap = l[i1] - l[i2];
}

/* First prompt token and top-5 at position 0 from a golden cases.json. */
static int golden_pos0(const char *path, int *tok, int ids[5], float lg[5]) {
    char *js;
    size_t len;
    if (sw_read_file(path, &js, &len, NULL)) return -1;
    char *p = strstr(js, "\"prompt_tokens\"");
    char *q = p ? strstr(p, "\"prompt_top5\"") : NULL;
    char *pi = q ? strstr(q, "\"ids\"") : NULL, *pl = q ? strstr(q, "\"logits\"") : NULL;
    int rc = -1;
    if (p && pi && pl) {
        *tok = (int)strtol(strchr(p, '[') + 1, NULL, 10);
        char *s = strchr(pi, '[') + 1, *e = strchr(pl, '[') + 1;
        for (int k = 0; k < 5; k++) {
            ids[k] = (int)strtol(s, &s, 10);
            lg[k] = strtof(e, &e);
            s++; e++; /* skip ',' */
        }
        rc = 0;
    }
    free(js);
    return rc;
}

static void test_forward_vs_golden(void) {
    const char *models[2] = {"llama-spm-tiny.f32", "qwen2-gpt2-tiny.f32"};
    for (int m = 0; m < 2; m++) {
        char path[512], gpath[512];
        snprintf(path, sizeof path, SHARED "/models/%s.gguf", models[m]);
        snprintf(gpath, sizeof gpath, SHARED "/golden/%s/cases.json", models[m]);
        int tok = 0, ids[5];
        float lg[5];
        gguf_ctx *g;
        sw_err e;
        T_CHECK(golden_pos0(gpath, &tok, ids, lg) == 0, "%s", gpath);
        T_CHECK(gguf_open(path, &g, &e) == 0, "%s", e.msg);
        if (!g) continue;
        uint64_t nv;
        gguf_get_arr_info(g, "tokenizer.ggml.tokens", NULL, &nv);
        float *l = malloc(nv * 4);
        T_EQ_INT(forward_pos0(g, tok, l), 0);
        float maxerr = 0;
        for (int k = 0; k < 5; k++) maxerr = fmaxf(maxerr, fabsf(l[ids[k]] - lg[k]));
        int best;
        float gap;
        top2(l, (int64_t)nv, &best, &gap);
        fprintf(stderr, "info: %s pos 0: argmax %d (golden %d), max top-5 logit error %.4f\n", models[m], best, ids[0], maxerr);
        T_CHECK(best == ids[0] && maxerr < 0.02f * fabsf(lg[0]), "%s: argmax %d (golden %d), max top-5 error %g",
                models[m], best, ids[0], maxerr);
        free(l);
        gguf_close(g);
    }
}

/* ---- generation ---- */

static int gen(const char *type, const char *arch, const char *vocab, int64_t embd, int64_t ff, int64_t n_vocab,
               uint64_t seed, const char *path) {
    model_gen_params p;
    model_gen_params_init(&p);
    p.type = type;
    p.arch = arch;
    p.vocab_path = vocab;
    p.n_embd = embd;
    p.n_ff = ff;
    p.n_vocab = n_vocab;
    p.seed = seed;
    if (arch && !strcmp(arch, "qwen2")) p.tied = 1;
    sw_err e = {0};
    int rc = model_gen_write(&p, path, &e);
    if (rc) fprintf(stderr, "model_gen_write(%s): %s\n", type, e.msg);
    return rc;
}

static bool same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    if (sw_read_file(a, &x, &nx, NULL)) return false;
    if (sw_read_file(b, &y, &ny, NULL)) { free(x); return false; }
    bool same = nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

/* Relative RMS error of every 2-D tensor of q against the same tensor of f (F32). */
static double max_rel_err(const gguf_ctx *f, const gguf_ctx *q, uint32_t dtype_filter) {
    double worst = 0;
    for (int64_t i = 0; i < gguf_n_tensors(q); i++) {
        const gguf_tensor *tq = gguf_tensor_at(q, i), *tf = tensor(f, tq->name);
        if (!tf || tq->n_dims < 2 || tq->dtype != dtype_filter) continue;
        int64_t n = tq->ne[0];
        float *row = malloc((size_t)n * 4);
        double se = 0, ss = 0;
        for (int64_t r = 0; r < tq->ne[1]; r += 7) {
            kq_dequantize_row(tq->dtype, (const char *)tq->data + (uint64_t)r * gguf_row_bytes(tq->dtype, n), row, n);
            const float *ref = (const float *)tf->data + r * n;
            for (int64_t k = 0; k < n; k++) {
                se += (double)(row[k] - ref[k]) * (row[k] - ref[k]);
                ss += (double)ref[k] * ref[k];
            }
        }
        free(row);
        double rel = sqrt(se / ss);
        if (rel > worst) worst = rel;
    }
    return worst;
}

typedef struct expect { const char *name; uint32_t dtype; int64_t ne0, ne1; } expect;

static void check_tensors(const gguf_ctx *g, const expect *ex, int n_ex, int n_total, const char *what) {
    T_CHECK(gguf_n_tensors(g) == n_total, "%s: %lld tensors, want %d", what, (long long)gguf_n_tensors(g), n_total);
    for (int i = 0; i < n_ex; i++) {
        const gguf_tensor *t = tensor(g, ex[i].name);
        T_CHECK(t && t->dtype == ex[i].dtype && t->ne[0] == ex[i].ne0 && t->ne[1] == ex[i].ne1 &&
                    t->n_dims == (ex[i].ne1 > 1 ? 2u : 1u),
                "%s: %s is %s [%lld, %lld], want %s [%lld, %lld]", what, ex[i].name, t ? gguf_dtype_name(t->dtype) : "absent",
                t ? (long long)t->ne[0] : 0, t ? (long long)t->ne[1] : 0, gguf_dtype_name(ex[i].dtype),
                (long long)ex[i].ne0, (long long)ex[i].ne1);
    }
}

static void test_tiny_llama(void) {
    const char *types[] = {"f32", "f16", "q8_0", "q4_0"};
    char paths[4][64];
    gguf_ctx *g[4] = {0};
    sw_err e;
    for (int i = 0; i < 4; i++) {
        tmp_path(paths[i], sizeof paths[i]);
        T_EQ_INT(gen(types[i], NULL, VOCAB_SPM, 0, 0, 0, 7, paths[i]), 0);
        T_CHECK(gguf_open(paths[i], &g[i], &e) == 0, "%s: %s", types[i], e.msg);
    }
    gguf_ctx *v;
    T_CHECK(gguf_open(VOCAB_SPM, &v, &e) == 0, "%s", e.msg);
    if (!g[0] || !g[1] || !g[2] || !g[3] || !v) return;

    /* metadata, as llama.cpp writes it */
    const char *s;
    uint32_t u;
    float f;
    T_CHECK(gguf_get_str(g[0], "general.architecture", &s, NULL) == 0 && !strcmp(s, "llama"), "arch");
    struct { const char *key; uint32_t v; } kv[] = {
        {"llama.embedding_length", 64}, {"llama.block_count", 2}, {"llama.attention.head_count", 4},
        {"llama.attention.head_count_kv", 2}, {"llama.feed_forward_length", 128}, {"llama.rope.dimension_count", 16},
        {"llama.context_length", 2048}, {"llama.vocab_size", 32000}, {"general.file_type", 0}};
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        T_CHECK(gguf_get_u32(g[0], kv[i].key, &u) == 0 && u == kv[i].v, "%s = %u", kv[i].key, u);
    uint32_t ftypes[4] = {0, 1, 7, 2};
    for (int i = 0; i < 4; i++)
        T_CHECK(gguf_get_u32(g[i], "general.file_type", &u) == 0 && u == ftypes[i], "%s file_type %u", types[i], u);
    T_CHECK(gguf_get_f32(g[0], "llama.attention.layer_norm_rms_epsilon", &f) == 0 && f == 1e-5f, "eps");
    T_CHECK(gguf_get_f32(g[0], "llama.rope.freq_base", &f) == 0 && f == 1e4f, "theta");
    /* every tokenizer key of the vocab, byte for byte */
    int n_tok_keys = 0, diff = 0;
    for (int64_t i = 0; i < gguf_n_kv(v); i++) {
        const char *k = gguf_key_name(v, i);
        if (strncmp(k, "tokenizer.", 10)) continue;
        n_tok_keys++;
        int64_t j = gguf_find_key(g[0], k);
        const void *d1, *d2;
        uint64_t l1, l2;
        gguf_kv_raw(v, i, &d1, &l1);
        if (j < 0 || gguf_kv_raw(g[0], j, &d2, &l2) || l1 != l2 || memcmp(d1, d2, l1)) diff++;
    }
    T_CHECK(n_tok_keys >= 8 && diff == 0, "%d tokenizer keys, %d differ", n_tok_keys, diff);
    T_EQ_INT(gguf_find_key(g[0], "general.alignment"), -1);

    /* tensors: names, shapes, and types per weight type */
    expect ex_f32[] = {
        {"token_embd.weight", GGUF_DTYPE_F32, 64, 32000}, {"output.weight", GGUF_DTYPE_F32, 64, 32000},
        {"output_norm.weight", GGUF_DTYPE_F32, 64, 1}, {"blk.0.attn_norm.weight", GGUF_DTYPE_F32, 64, 1},
        {"blk.1.attn_q.weight", GGUF_DTYPE_F32, 64, 64}, {"blk.1.attn_k.weight", GGUF_DTYPE_F32, 64, 32},
        {"blk.1.attn_v.weight", GGUF_DTYPE_F32, 64, 32}, {"blk.1.attn_output.weight", GGUF_DTYPE_F32, 64, 64},
        {"blk.1.ffn_norm.weight", GGUF_DTYPE_F32, 64, 1}, {"blk.1.ffn_gate.weight", GGUF_DTYPE_F32, 64, 128},
        {"blk.1.ffn_up.weight", GGUF_DTYPE_F32, 64, 128}, {"blk.1.ffn_down.weight", GGUF_DTYPE_F32, 128, 64}};
    check_tensors(g[0], ex_f32, 12, 21, "f32");
    T_EQ_INT(gguf_find_tensor(g[0], "blk.0.attn_q.bias"), -1);
    expect ex_f16[] = {{"token_embd.weight", GGUF_DTYPE_F16, 64, 32000}, {"output.weight", GGUF_DTYPE_F16, 64, 32000},
                       {"blk.0.ffn_down.weight", GGUF_DTYPE_F16, 128, 64}, {"blk.0.ffn_norm.weight", GGUF_DTYPE_F32, 64, 1}};
    check_tensors(g[1], ex_f16, 4, 21, "f16");
    expect ex_q8[] = {{"token_embd.weight", GGUF_DTYPE_Q8_0, 64, 32000}, {"output.weight", GGUF_DTYPE_Q8_0, 64, 32000},
                      {"blk.1.attn_v.weight", GGUF_DTYPE_Q8_0, 64, 32}, {"output_norm.weight", GGUF_DTYPE_F32, 64, 1}};
    check_tensors(g[2], ex_q8, 4, 21, "q8_0");
    /* like ../shared/models/llama-spm-tiny.q4_0.gguf: output Q8_0, token_embd Q4_0 */
    expect ex_q4[] = {{"token_embd.weight", GGUF_DTYPE_Q4_0, 64, 32000}, {"output.weight", GGUF_DTYPE_Q8_0, 64, 32000},
                      {"blk.1.attn_v.weight", GGUF_DTYPE_Q4_0, 64, 32}, {"blk.0.ffn_down.weight", GGUF_DTYPE_Q4_0, 128, 64}};
    check_tensors(g[3], ex_q4, 4, 21, "q4_0");

    /* well-scaled weights (mirroring the reference models) */
    const gguf_tensor *te = tensor(g[0], "token_embd.weight"), *nw = tensor(g[0], "blk.0.attn_norm.weight");
    const gguf_tensor *wq = tensor(g[0], "blk.0.attn_q.weight"), *wd = tensor(g[0], "blk.0.ffn_down.weight");
    double s1 = 0, s2 = 0, s3 = 0, nmin = 9, nmax = -9;
    for (int64_t i = 0; i < 64 * 1000; i++) s1 += (double)((const float *)te->data)[i] * ((const float *)te->data)[i];
    for (int64_t i = 0; i < 64 * 64; i++) s2 += (double)((const float *)wq->data)[i] * ((const float *)wq->data)[i];
    for (int64_t i = 0; i < 128 * 64; i++) s3 += (double)((const float *)wd->data)[i] * ((const float *)wd->data)[i];
    for (int64_t i = 0; i < 64; i++) { nmin = fmin(nmin, ((const float *)nw->data)[i]); nmax = fmax(nmax, ((const float *)nw->data)[i]); }
    double sd1 = sqrt(s1 / 64000), sd2 = sqrt(s2 / 4096), sd3 = sqrt(s3 / 8192);
    T_CHECK(fabs(sd1 - 1.0) < 0.03, "embedding std %g", sd1);
    T_CHECK(fabs(sd2 - 0.25) < 0.02, "attn_q std %g (2/sqrt(64))", sd2);
    T_CHECK(fabs(sd3 - 1 / sqrt(128.0)) < 0.01, "ffn_down std %g (1/sqrt(128))", sd3);
    T_CHECK(nmin >= 0.75 && nmax <= 1.25 && nmax - nmin > 0.2, "norm range [%g, %g]", nmin, nmax);

    /* quantized tensors are the F32 ones of the same seed, quantized */
    double ef16 = max_rel_err(g[0], g[1], GGUF_DTYPE_F16), eq8 = max_rel_err(g[0], g[2], GGUF_DTYPE_Q8_0);
    double eq4 = max_rel_err(g[0], g[3], GGUF_DTYPE_Q4_0), eq48 = max_rel_err(g[0], g[3], GGUF_DTYPE_Q8_0);
    fprintf(stderr, "info: rel rms error f16 %.2e q8_0 %.2e q4_0 %.2e\n", ef16, eq8, eq4);
    T_CHECK(ef16 > 0 && ef16 < 1e-3, "f16 rel err %g", ef16);
    T_CHECK(eq8 > 0 && eq8 < 0.01, "q8_0 rel err %g", eq8);
    T_CHECK(eq4 > 0.02 && eq4 < 0.15, "q4_0 rel err %g", eq4);
    T_CHECK(eq48 > 0 && eq48 < 0.01, "q4_0 file's q8_0 output rel err %g", eq48);
    for (int i = 1; i < 4; i++) {
        const gguf_tensor *a = tensor(g[0], "blk.1.ffn_norm.weight"), *b = tensor(g[i], "blk.1.ffn_norm.weight");
        T_CHECK(!memcmp(a->data, b->data, 256), "%s norms identical to f32", types[i]);
    }

    /* logits O(10), top candidates separated, depending on the token */
    float *l = malloc(32000 * 4);
    int argmax[6], distinct = 0;
    for (int t = 0; t < 6; t++) {
        float gap;
        forward_pos0(g[0], 100 + 1000 * t, l);
        top2(l, 32000, &argmax[t], &gap);
        double ss = 0;
        for (int i = 0; i < 32000; i++) ss += (double)l[i] * l[i];
        float sd = (float)sqrt(ss / 32000);
        fprintf(stderr, "info: token %d: logit std %.2f top %.2f gap %.3f\n", 100 + 1000 * t, sd, l[argmax[t]], gap);
        T_CHECK(sd > 1.5f && sd < 8 && l[argmax[t]] > 8 && l[argmax[t]] < 40 && gap > 0.01f,
                "token %d: logit std %g, top %g, gap %g", 100 + 1000 * t, sd, l[argmax[t]], gap);
        int seen = 0;
        for (int k = 0; k < t; k++) seen |= argmax[k] == argmax[t];
        distinct += !seen;
    }
    T_CHECK(distinct >= 4, "argmax over 6 tokens: %d distinct", distinct);
    free(l);

    /* same seed -> same bytes; other seed -> other bytes; requantizing the F32 file gives
     * the generated Q8_0/Q4_0 file (up to general.quantization_version's position) */
    char again[64], other[64], rq[64];
    tmp_path(again, sizeof again);
    tmp_path(other, sizeof other);
    tmp_path(rq, sizeof rq);
    T_EQ_INT(gen("q4_0", NULL, VOCAB_SPM, 0, 0, 0, 7, again), 0);
    T_CHECK(same_file(paths[3], again), "same seed, same bytes");
    T_EQ_INT(gen("q4_0", NULL, VOCAB_SPM, 0, 0, 0, 8, other), 0);
    T_CHECK(!same_file(paths[3], other), "other seed, other bytes");
    for (int i = 1; i < 4; i++) {
        T_CHECK(model_gen_quantize(paths[0], rq, types[i], &e) == 0, "%s", e.msg);
        gguf_ctx *r;
        T_CHECK(gguf_open(rq, &r, &e) == 0, "%s", e.msg);
        if (!r) continue;
        int bad = gguf_n_tensors(r) != gguf_n_tensors(g[i]);
        for (int64_t k = 0; k < gguf_n_tensors(g[i]); k++) {
            const gguf_tensor *a = gguf_tensor_at(g[i], k), *b = tensor(r, a->name);
            bad += !b || a->dtype != b->dtype || a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes);
        }
        T_CHECK(bad == 0, "quantize f32 -> %s: %d tensors differ from gen-model %s", types[i], bad, types[i]);
        T_CHECK(gguf_get_u32(r, "general.file_type", &u) == 0 && u == ftypes[i], "requant file_type");
        gguf_close(r);
    }
    T_EQ_INT(model_gen_quantize(paths[0], rq, "q5_1", &e), SW_ERR_ARG);
    remove(again);
    remove(other);
    remove(rq);
    for (int i = 0; i < 4; i++) {
        gguf_close(g[i]);
        remove(paths[i]);
    }
    gguf_close(v);
}

/* Q4_K_M on a shape whose rows are multiples of 256, and fallbacks on the tiny one. */
static void test_q4_k_m(void) {
    char pf[64], pq[64], pt[64];
    tmp_path(pf, sizeof pf);
    tmp_path(pq, sizeof pq);
    tmp_path(pt, sizeof pt);
    T_EQ_INT(gen("f32", NULL, VOCAB_SPM, 256, 512, 0, 3, pf), 0);
    T_EQ_INT(gen("q4_k_m", NULL, VOCAB_SPM, 256, 512, 0, 3, pq), 0);
    T_EQ_INT(gen("q4_k_m", NULL, VOCAB_SPM, 0, 0, 0, 3, pt), 0);
    gguf_ctx *f = NULL, *q = NULL, *t = NULL;
    sw_err e;
    T_CHECK(gguf_open(pf, &f, &e) == 0 && gguf_open(pq, &q, &e) == 0 && gguf_open(pt, &t, &e) == 0, "%s", e.msg);
    if (f && q && t) {
        /* as ../shared/models/llama-spm-kq.q4_k_m.gguf (2 layers): layer 1's attn_v/ffn_down Q6_K */
        expect ex[] = {{"token_embd.weight", GGUF_DTYPE_Q4_K, 256, 32000}, {"output.weight", GGUF_DTYPE_Q6_K, 256, 32000},
                       {"blk.0.attn_v.weight", GGUF_DTYPE_Q4_K, 256, 128}, {"blk.1.attn_v.weight", GGUF_DTYPE_Q6_K, 256, 128},
                       {"blk.0.ffn_down.weight", GGUF_DTYPE_Q4_K, 512, 256}, {"blk.1.ffn_down.weight", GGUF_DTYPE_Q6_K, 512, 256},
                       {"blk.1.attn_q.weight", GGUF_DTYPE_Q4_K, 256, 256}, {"blk.1.attn_norm.weight", GGUF_DTYPE_F32, 256, 1}};
        check_tensors(q, ex, 8, 21, "q4_k_m");
        uint32_t u;
        T_CHECK(gguf_get_u32(q, "general.file_type", &u) == 0 && u == 15, "file_type 15");
        double e4 = max_rel_err(f, q, GGUF_DTYPE_Q4_K), e6 = max_rel_err(f, q, GGUF_DTYPE_Q6_K);
        fprintf(stderr, "info: rel rms error q4_K %.2e q6_K %.2e\n", e4, e6);
        T_CHECK(e4 > 0.01 && e4 < 0.1, "q4_K rel err %g", e4);
        T_CHECK(e6 > 0 && e6 < 0.03, "q6_K rel err %g", e6);
        /* rows of 64 cannot hold K-quant blocks: Q4_K -> Q5_0, Q6_K -> Q8_0 (output: Q8_0 directly) */
        expect ext[] = {{"token_embd.weight", GGUF_DTYPE_Q5_0, 64, 32000}, {"output.weight", GGUF_DTYPE_Q8_0, 64, 32000},
                        {"blk.1.attn_v.weight", GGUF_DTYPE_Q8_0, 64, 32}, {"blk.0.attn_v.weight", GGUF_DTYPE_Q5_0, 64, 32},
                        {"blk.0.ffn_down.weight", GGUF_DTYPE_Q5_0, 128, 64}, {"blk.1.ffn_down.weight", GGUF_DTYPE_Q8_0, 128, 64},
                        {"blk.0.ffn_gate.weight", GGUF_DTYPE_Q5_0, 64, 128}};
        check_tensors(t, ext, 7, 21, "tiny q4_k_m");
        /* requantize the F32 file: identical tensors */
        char rq[64];
        tmp_path(rq, sizeof rq);
        T_CHECK(model_gen_quantize(pf, rq, "q4_k_m", &e) == 0, "%s", e.msg);
        gguf_ctx *r;
        T_CHECK(gguf_open(rq, &r, &e) == 0, "%s", e.msg);
        if (r) {
            int bad = 0;
            for (int64_t k = 0; k < gguf_n_tensors(q); k++) {
                const gguf_tensor *a = gguf_tensor_at(q, k), *b = tensor(r, a->name);
                bad += !b || a->dtype != b->dtype || memcmp(a->data, b->data, a->nbytes);
            }
            T_EQ_INT(bad, 0);
            gguf_close(r);
        }
        remove(rq);
    }
    gguf_close(f);
    gguf_close(q);
    gguf_close(t);
    remove(pf);
    remove(pq);
    remove(pt);
}

/* The shape of ../shared/models/llama-spm-kq.q4_k_m.gguf (llama.cpp's own Q4_K_M file):
 * every tensor gets the type llama.cpp chose. */
static void test_q4_k_m_vs_llama_cpp(void) {
    gguf_ctx *ref;
    sw_err e;
    if (gguf_open(SHARED "/models/llama-spm-kq.q4_k_m.gguf", &ref, &e)) {
        T_SKIP("llama-spm-kq.q4_k_m.gguf: %s", e.msg);
        return;
    }
    char p[64];
    tmp_path(p, sizeof p);
    model_gen_params mp;
    model_gen_params_init(&mp);
    mp.type = "q4_k_m";
    mp.vocab_path = VOCAB_SPM;
    mp.preset = NULL;
    mp.arch = "llama";
    mp.n_embd = 256, mp.n_layer = 2, mp.n_head = 4, mp.n_head_kv = 1, mp.n_ff = 768, mp.tied = 0;
    T_CHECK(model_gen_write(&mp, p, &e) == 0, "%s", e.msg);
    gguf_ctx *g;
    if (gguf_open(p, &g, &e) == 0) {
        T_EQ_INT(gguf_n_tensors(g), gguf_n_tensors(ref));
        int bad = 0;
        for (int64_t i = 0; i < gguf_n_tensors(ref); i++) {
            const gguf_tensor *a = gguf_tensor_at(ref, i), *b = tensor(g, a->name);
            if (!b || a->dtype != b->dtype) {
                fprintf(stderr, "%s: llama.cpp %s, generated %s\n", a->name, gguf_dtype_name(a->dtype), b ? gguf_dtype_name(b->dtype) : "absent");
                bad++;
            }
        }
        T_EQ_INT(bad, 0);
        gguf_close(g);
    }
    gguf_close(ref);
    remove(p);
}

/* Q5_K_M and Q5_0: base types, Q6_K where llama.cpp uses it, fallbacks on 64-wide rows
 * (Q5_K -> Q5_1, Q6_K -> Q8_0), errors against the F32 file, and requantization. */
static void test_q5_types(void) {
    char pf[64], pq[64], pt[64], p0[64], p0w[64];
    tmp_path(pf, sizeof pf);
    tmp_path(pq, sizeof pq);
    tmp_path(pt, sizeof pt);
    tmp_path(p0, sizeof p0);
    tmp_path(p0w, sizeof p0w);
    T_EQ_INT(gen("f32", NULL, VOCAB_SPM, 256, 512, 0, 3, pf), 0);
    T_EQ_INT(gen("q5_k_m", NULL, VOCAB_SPM, 256, 512, 0, 3, pq), 0);
    T_EQ_INT(gen("q5_k_m", NULL, VOCAB_SPM, 0, 0, 0, 3, pt), 0);
    T_EQ_INT(gen("q5_0", NULL, VOCAB_SPM, 0, 0, 0, 3, p0), 0);
    T_EQ_INT(gen("q5_0", NULL, VOCAB_SPM, 256, 512, 0, 3, p0w), 0);
    gguf_ctx *f = NULL, *q = NULL, *t = NULL, *z = NULL, *zw = NULL;
    sw_err e;
    T_CHECK(gguf_open(pf, &f, &e) == 0 && gguf_open(pq, &q, &e) == 0 && gguf_open(pt, &t, &e) == 0 &&
                gguf_open(p0, &z, &e) == 0 && gguf_open(p0w, &zw, &e) == 0,
            "%s", e.msg);
    if (f && q && t && z && zw) {
        expect ex[] = {{"token_embd.weight", GGUF_DTYPE_Q5_K, 256, 32000}, {"output.weight", GGUF_DTYPE_Q6_K, 256, 32000},
                       {"blk.0.attn_v.weight", GGUF_DTYPE_Q5_K, 256, 128}, {"blk.1.attn_v.weight", GGUF_DTYPE_Q6_K, 256, 128},
                       {"blk.0.ffn_down.weight", GGUF_DTYPE_Q5_K, 512, 256}, {"blk.1.ffn_down.weight", GGUF_DTYPE_Q6_K, 512, 256},
                       {"blk.1.attn_q.weight", GGUF_DTYPE_Q5_K, 256, 256}, {"blk.1.ffn_norm.weight", GGUF_DTYPE_F32, 256, 1}};
        check_tensors(q, ex, 8, 21, "q5_k_m");
        uint32_t u;
        T_CHECK(gguf_get_u32(q, "general.file_type", &u) == 0 && u == 17, "q5_k_m file_type 17");
        T_CHECK(gguf_get_u32(z, "general.file_type", &u) == 0 && u == 8, "q5_0 file_type 8");
        double e5 = max_rel_err(f, q, GGUF_DTYPE_Q5_K), e50 = max_rel_err(f, zw, GGUF_DTYPE_Q5_0);
        fprintf(stderr, "info: rel rms error q5_K %.2e q5_0 %.2e\n", e5, e50);
        T_CHECK(e5 > 0.005 && e5 < 0.05, "q5_K rel err %g", e5);
        T_CHECK(e50 > 0.005 && e50 < 0.06, "q5_0 rel err %g", e50);
        expect ext[] = {{"token_embd.weight", GGUF_DTYPE_Q5_1, 64, 32000}, {"output.weight", GGUF_DTYPE_Q8_0, 64, 32000},
                        {"blk.1.attn_v.weight", GGUF_DTYPE_Q8_0, 64, 32}, {"blk.0.attn_v.weight", GGUF_DTYPE_Q5_1, 64, 32},
                        {"blk.1.ffn_down.weight", GGUF_DTYPE_Q8_0, 128, 64}, {"blk.0.attn_output.weight", GGUF_DTYPE_Q5_1, 64, 64}};
        check_tensors(t, ext, 6, 21, "tiny q5_k_m");
        expect ex0[] = {{"token_embd.weight", GGUF_DTYPE_Q5_0, 64, 32000}, {"output.weight", GGUF_DTYPE_Q8_0, 64, 32000},
                        {"blk.1.attn_v.weight", GGUF_DTYPE_Q5_0, 64, 32}, {"blk.1.ffn_down.weight", GGUF_DTYPE_Q5_0, 128, 64}};
        check_tensors(z, ex0, 4, 21, "tiny q5_0");
        expect ex0w[] = {{"output.weight", GGUF_DTYPE_Q6_K, 256, 32000}, {"blk.1.attn_v.weight", GGUF_DTYPE_Q5_0, 256, 128}};
        check_tensors(zw, ex0w, 2, 21, "q5_0");
        char rq[64];
        tmp_path(rq, sizeof rq);
        T_CHECK(model_gen_quantize(pf, rq, "q5_k_m", &e) == 0, "%s", e.msg);
        gguf_ctx *r;
        T_CHECK(gguf_open(rq, &r, &e) == 0, "%s", e.msg);
        if (r) {
            int bad = 0;
            for (int64_t k = 0; k < gguf_n_tensors(q); k++) {
                const gguf_tensor *a = gguf_tensor_at(q, k), *b = tensor(r, a->name);
                bad += !b || a->dtype != b->dtype || memcmp(a->data, b->data, a->nbytes);
            }
            T_EQ_INT(bad, 0);
            gguf_close(r);
        }
        remove(rq);
    }
    gguf_close(f);
    gguf_close(q);
    gguf_close(t);
    gguf_close(z);
    gguf_close(zw);
    remove(pf);
    remove(pq);
    remove(pt);
    remove(p0);
    remove(p0w);
}

/* The shape of ../shared/models2/llama3-rope-kq.* (256/2/4/1/768, tied): gen-model's
 * Q3_K_M types equal those llama.cpp's rules gave the reference's Q3_K_M file (tensors in
 * both; rope_freqs is not generated here), and with n_head/n_head_kv = 4 attn_v is bumped
 * for q2_k (Q4_K) and iq4_nl / iq4_xs (Q5_K). */
static void gen_kq_shape(const char *type, const char *path) {
    model_gen_params mp;
    model_gen_params_init(&mp);
    mp.type = type;
    mp.vocab_path = VOCAB_SPM;
    mp.preset = NULL;
    mp.arch = "llama";
    mp.n_embd = 256, mp.n_layer = 2, mp.n_head = 4, mp.n_head_kv = 1, mp.n_ff = 768, mp.tied = 1;
    sw_err e;
    T_CHECK(model_gen_write(&mp, path, &e) == 0, "%s: %s", type, e.msg);
}

static void test_q3_k_m_vs_reference(void) {
    gguf_ctx *ref, *g;
    sw_err e;
    if (gguf_open(SHARED "/models2/llama3-rope-kq.q3_k_m.gguf", &ref, &e)) {
        T_SKIP("llama3-rope-kq.q3_k_m.gguf: %s", e.msg);
        return;
    }
    char p[64];
    tmp_path(p, sizeof p);
    gen_kq_shape("q3_k_m", p);
    if (gguf_open(p, &g, &e) == 0) {
        int bad = 0, n = 0;
        for (int64_t i = 0; i < gguf_n_tensors(ref); i++) {
            const gguf_tensor *a = gguf_tensor_at(ref, i), *b = tensor(g, a->name);
            if (!b) continue;
            n++;
            if (a->dtype != b->dtype) {
                fprintf(stderr, "%s: reference %s, generated %s\n", a->name, gguf_dtype_name(a->dtype), gguf_dtype_name(b->dtype));
                bad++;
            }
        }
        T_CHECK(bad == 0 && n == gguf_n_tensors(ref) - 1, "q3_k_m: %d of %d tensors differ from the reference's types", bad, n);
        gguf_close(g);
    }
    gguf_close(ref);
    const struct { const char *type; uint32_t v, base; } bumps[] = {
        {"q2_k", GGUF_DTYPE_Q4_K, GGUF_DTYPE_Q2_K}, {"iq4_nl", GGUF_DTYPE_Q5_K, GGUF_DTYPE_IQ4_NL}, {"iq4_xs", GGUF_DTYPE_Q5_K, GGUF_DTYPE_IQ4_XS}};
    for (int k = 0; k < 3; k++) {
        gen_kq_shape(bumps[k].type, p);
        if (gguf_open(p, &g, &e)) continue;
        expect ex[] = {{"blk.1.attn_v.weight", bumps[k].v, 256, 64}, {"token_embd.weight", GGUF_DTYPE_Q6_K, 256, 32000},
                       {"blk.0.attn_k.weight", bumps[k].base, 256, 64}};
        check_tensors(g, ex, 3, 20, bumps[k].type);
        gguf_close(g);
    }
    remove(p);
}

/* q3_k_m / q2_k / iq4_nl / iq4_xs on the 2-layer shape (4 heads, 2 kv heads): llama.cpp's
 * per-tensor types, written out here; the fallbacks of 64-wide rows (Q2_K / Q3_K / IQ4_XS
 * -> IQ4_NL, Q4_K -> Q5_0, Q5_K -> Q5_1); quantization error against the F32 file of the
 * same seed; requantizing the F32 file gives the same tensors; file_type. */
static void test_low_bit_types(void) {
    char pf[64], pq[64], pt[64], rq[64];
    tmp_path(pf, sizeof pf);
    tmp_path(pq, sizeof pq);
    tmp_path(pt, sizeof pt);
    tmp_path(rq, sizeof rq);
    T_EQ_INT(gen("f32", NULL, VOCAB_SPM, 256, 512, 0, 3, pf), 0);
    gguf_ctx *f = NULL;
    sw_err e;
    T_CHECK(gguf_open(pf, &f, &e) == 0, "%s", e.msg);
    const uint32_t Q2 = GGUF_DTYPE_Q2_K, Q3 = GGUF_DTYPE_Q3_K, Q4 = GGUF_DTYPE_Q4_K, Q5 = GGUF_DTYPE_Q5_K, Q6 = GGUF_DTYPE_Q6_K;
    const uint32_t NL = GGUF_DTYPE_IQ4_NL, XS = GGUF_DTYPE_IQ4_XS, Q8 = GGUF_DTYPE_Q8_0;
    /* wide: token_embd, output, attn_v 0, attn_v 1, ffn_down 0, attn_output 1, attn_q 1; tiny: the same tensors */
    const struct { const char *type; uint32_t ftype, wide[7], tiny[7]; double max_err; } cases[] = {
        {"q3_k_m", 12, {Q3, Q6, Q5, Q5, Q4, Q4, Q3}, {NL, Q8, GGUF_DTYPE_Q5_1, GGUF_DTYPE_Q5_1, GGUF_DTYPE_Q5_0, GGUF_DTYPE_Q5_0, NL}, 0.17},
        {"q2_k", 10, {Q2, Q6, Q3, Q3, Q3, Q3, Q2}, {NL, Q8, NL, NL, NL, NL, NL}, 0.32},
        {"iq4_nl", 25, {NL, Q6, NL, NL, NL, NL, NL}, {NL, Q8, NL, NL, NL, NL, NL}, 0.085},
        {"iq4_xs", 30, {XS, Q6, XS, XS, XS, XS, XS}, {NL, Q8, NL, NL, NL, NL, NL}, 0.085},
    };
    const char *names[7] = {"token_embd.weight", "output.weight", "blk.0.attn_v.weight", "blk.1.attn_v.weight",
                            "blk.0.ffn_down.weight", "blk.1.attn_output.weight", "blk.1.attn_q.weight"};
    const int64_t ne_wide[7][2] = {{256, 32000}, {256, 32000}, {256, 128}, {256, 128}, {512, 256}, {256, 256}, {256, 256}};
    const int64_t ne_tiny[7][2] = {{64, 32000}, {64, 32000}, {64, 32}, {64, 32}, {128, 64}, {64, 64}, {64, 64}};
    for (size_t c = 0; f && c < sizeof cases / sizeof cases[0]; c++) {
        T_EQ_INT(gen(cases[c].type, NULL, VOCAB_SPM, 256, 512, 0, 3, pq), 0);
        T_EQ_INT(gen(cases[c].type, NULL, VOCAB_SPM, 0, 0, 0, 3, pt), 0);
        gguf_ctx *q = NULL, *t = NULL, *r = NULL;
        if (gguf_open(pq, &q, &e) || gguf_open(pt, &t, &e)) {
            T_CHECK(0, "%s: %s", cases[c].type, e.msg);
            gguf_close(q);
            continue;
        }
        expect ew[7], et[7];
        for (int i = 0; i < 7; i++) {
            ew[i] = (expect){names[i], cases[c].wide[i], ne_wide[i][0], ne_wide[i][1]};
            et[i] = (expect){names[i], cases[c].tiny[i], ne_tiny[i][0], ne_tiny[i][1]};
        }
        check_tensors(q, ew, 7, 21, cases[c].type);
        check_tensors(t, et, 7, 21, cases[c].type);
        uint32_t u;
        T_CHECK(gguf_get_u32(q, "general.file_type", &u) == 0 && u == cases[c].ftype, "%s file_type %u", cases[c].type, u);
        const double err = max_rel_err(f, q, cases[c].wide[6]);
        fprintf(stderr, "info: %s: rel rms error of %s tensors %.3f\n", cases[c].type, gguf_dtype_name(cases[c].wide[6]), err);
        T_CHECK(err > 0.01 && err < cases[c].max_err, "%s rel err %g", cases[c].type, err);
        T_CHECK(model_gen_quantize(pf, rq, cases[c].type, &e) == 0, "%s", e.msg);
        if (gguf_open(rq, &r, &e) == 0) {
            int bad = 0;
            for (int64_t k = 0; k < gguf_n_tensors(q); k++) {
                const gguf_tensor *a = gguf_tensor_at(q, k), *b = tensor(r, a->name);
                bad += !b || a->dtype != b->dtype || memcmp(a->data, b->data, a->nbytes);
            }
            T_CHECK(bad == 0, "quantize f32 -> %s: %d tensors differ", cases[c].type, bad);
            gguf_close(r);
        }
        gguf_close(q);
        gguf_close(t);
    }
    gguf_close(f);
    remove(pf);
    remove(pq);
    remove(pt);
    remove(rq);
}

/* qwen2: biases, tied output, eps 1e-6, vocab padded with [PADn] tokens. */
static void test_qwen2_padded(void) {
    char p[64];
    tmp_path(p, sizeof p);
    T_EQ_INT(gen("q8_0", "qwen2", VOCAB_GPT2, 0, 0, 50304, 5, p), 0);
    gguf_ctx *g;
    sw_err e;
    T_CHECK(gguf_open(p, &g, &e) == 0, "%s", e.msg);
    if (!g) return;
    const char *s;
    uint32_t u;
    float f;
    T_CHECK(gguf_get_str(g, "general.architecture", &s, NULL) == 0 && !strcmp(s, "qwen2"), "arch");
    T_CHECK(gguf_get_f32(g, "qwen2.attention.layer_norm_rms_epsilon", &f) == 0 && f == 1e-6f, "eps");
    T_CHECK(gguf_get_u32(g, "qwen2.vocab_size", &u) == 0 && u == 50304, "vocab_size");
    expect ex[] = {{"token_embd.weight", GGUF_DTYPE_Q8_0, 64, 50304}, {"blk.0.attn_q.bias", GGUF_DTYPE_F32, 64, 1},
                   {"blk.1.attn_k.bias", GGUF_DTYPE_F32, 32, 1}, {"blk.1.attn_v.bias", GGUF_DTYPE_F32, 32, 1},
                   {"blk.1.attn_v.weight", GGUF_DTYPE_Q8_0, 64, 32}};
    check_tensors(g, ex, 5, 3 + 2 * 12 - 1, "qwen2");
    T_EQ_INT(gguf_find_tensor(g, "output.weight"), -1);
    gguf_type et;
    uint64_t n;
    T_CHECK(gguf_get_arr_info(g, "tokenizer.ggml.tokens", &et, &n) == 0 && n == 50304, "tokens %llu", (unsigned long long)n);
    T_CHECK(!strcmp(gguf_get_arr_str(g, "tokenizer.ggml.tokens", 50256, NULL), "<|endoftext|>"), "eot kept");
    const char *pad = gguf_get_arr_str(g, "tokenizer.ggml.tokens", 50300, NULL);
    T_CHECK(pad && !strcmp(pad, "[PAD50300]"), "pad token '%s'", pad ? pad : "");
    int32_t ty[2];
    T_CHECK(gguf_get_arr_i32(g, "tokenizer.ggml.token_type", 50256, 2, ty) == 0 && ty[0] == 3 && ty[1] == 4,
            "token types %d %d", ty[0], ty[1]);
    T_CHECK(gguf_get_arr_info(g, "tokenizer.ggml.merges", &et, &n) == 0 && n == 50000, "merges kept as is");
    float *l = malloc(50304 * 4);
    int best;
    float gap;
    T_EQ_INT(forward_pos0(g, 7454, l), 0);
    top2(l, 50304, &best, &gap);
    fprintf(stderr, "info: tied qwen2 pos 0: top %.2f gap %.3f\n", l[best], gap);
    T_CHECK(l[best] > 8 && l[best] < 60 && gap > 0.01f && best < 50257, "tied qwen2: top %g gap %g id %d", l[best], gap, best);
    free(l);
    gguf_close(g);
    remove(p);
}

/* Each new preset at a tiny size (its family's tensors, metadata and RoPE kind) loads and
 * runs: 20 tokens in one batch vs in chunks of 3, logits finite. */
static void test_presets_tiny(void) {
    static const struct { const char *preset; int64_t kv_heads, head_dim, layers; model_arch arch; model_rope_scaling rope; int n_rot; } ps[] = {
        {"llama-3.2-1b", 2, 0, 2, MODEL_ARCH_LLAMA, MODEL_ROPE_FREQS, 16},
        {"qwen3-0.6b", 2, 32, 2, MODEL_ARCH_QWEN3, MODEL_ROPE_NONE, 32},
        {"gemma3-1b", 1, 32, 7, MODEL_ARCH_GEMMA3, MODEL_ROPE_NONE, 32},
        {"phi-4-mini", 2, 0, 2, MODEL_ARCH_PHI3, MODEL_ROPE_LONGROPE, 12},
    };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        char path[64];
        tmp_path(path, sizeof path);
        model_gen_params p;
        model_gen_params_init(&p);
        p.preset = ps[i].preset;
        p.n_embd = 64; p.n_head = 4; p.n_head_kv = ps[i].kv_heads; p.head_dim = ps[i].head_dim;
        p.n_layer = ps[i].layers; p.n_ff = 128; p.n_vocab = 259; /* built-in vocab */
        sw_err e = {0};
        T_CHECK(model_gen_write(&p, path, &e) == SW_OK, "%s: %s", ps[i].preset, e.msg);
        model *m = NULL;
        if (model_load(path, &m, &e)) { T_CHECK(0, "%s: %s", ps[i].preset, e.msg); remove(path); continue; }
        const model_config *c = model_get_config(m);
        T_CHECK(c->arch == ps[i].arch && c->rope_scaling == ps[i].rope && c->n_rot == ps[i].n_rot &&
                c->head_dim == (ps[i].head_dim ? ps[i].head_dim : 16) && c->tied_output,
                "%s: arch %d rope %d n_rot %d head_dim %d", ps[i].preset, c->arch, c->rope_scaling, c->n_rot, c->head_dim);
        if (ps[i].arch == MODEL_ARCH_GEMMA3) T_CHECK(c->sliding_window == 512 && c->swa_pattern == 6, "gemma3 window %d", c->sliding_window);
        enum { N = 20 };
        model_ws *ws;
        model_kv *kv;
        T_EQ_INT(model_ws_create(m, N, 64, &ws, &e), SW_OK);
        T_EQ_INT(model_kv_create(c, GGUF_DTYPE_F32, 4, 8, &kv, &e), SW_OK);
        int32_t toks[N], pos[N], seq[N] = {0}, bt[8] = {5, 3, 7, 1, 0, 2, 4, 6};
        uint8_t want[N];
        for (int j = 0; j < N; j++) { toks[j] = (int32_t)((j * 37 + 11) % 259); pos[j] = j; want[j] = 1; }
        const int32_t *tables[1] = {bt};
        float *a = malloc((size_t)N * c->n_vocab * sizeof *a), *b = malloc((size_t)N * c->n_vocab * sizeof *b);
        model_batch bat = {.n_tokens = N, .tokens = toks, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .block_tables = tables};
        T_EQ_INT(model_forward(m, ws, kv, &bat, a, &e), SW_OK);
        for (int s0 = 0; s0 < N; s0 += 3) {
            model_batch ch = bat;
            ch.n_tokens = N - s0 < 3 ? N - s0 : 3;
            ch.tokens = toks + s0; ch.pos = pos + s0; ch.logits = want + s0;
            T_EQ_INT(model_forward(m, ws, kv, &ch, b + (size_t)s0 * c->n_vocab, &e), SW_OK);
        }
        double d = 0, mx = 0;
        bool finite = true;
        for (size_t k = 0; k < (size_t)N * c->n_vocab; k++) {
            finite &= isfinite(a[k]);
            if (fabs(a[k] - b[k]) > d) d = fabs(a[k] - b[k]);
            if (fabs(a[k]) > mx) mx = fabs(a[k]);
        }
        T_CHECK(finite && mx > 0.1 && d <= 1e-4 * mx, "%s: finite %d max|logit| %g chunked diff %g", ps[i].preset, finite, mx, d);
        printf("preset %-13s tiny: %lld tensors, max|logit| %.2f, chunked vs one batch %.2g\n", ps[i].preset,
               (long long)gguf_n_tensors(model_gguf(m)), mx, d);
        free(a); free(b);
        model_kv_destroy(kv);
        model_ws_destroy(ws);
        model_free(m);
        remove(path);
    }
}

static void test_bad_params(void) {
    model_gen_params p;
    sw_err e = {0};
    char path[64];
    tmp_path(path, sizeof path);
    model_gen_params_init(&p);
    p.vocab_path = VOCAB_SPM;
    p.preset = "gpt-5";
    T_CHECK(model_gen_write(&p, path, &e) == SW_ERR_ARG && strstr(e.msg, "preset"), "%s", e.msg);
    model_gen_params_init(&p);
    p.vocab_path = VOCAB_SPM;
    p.n_head = 3;
    T_CHECK(model_gen_write(&p, path, &e) == SW_ERR_ARG && strstr(e.msg, "heads"), "%s", e.msg);
    model_gen_params_init(&p);
    p.vocab_path = VOCAB_SPM;
    p.type = "iq1_s";
    T_CHECK(model_gen_write(&p, path, &e) == SW_ERR_ARG && strstr(e.msg, "iq1_s"), "%s", e.msg);
    model_gen_params_init(&p);
    p.arch = "gpt2";
    p.vocab_path = VOCAB_SPM;
    T_CHECK(model_gen_write(&p, path, &e) == SW_ERR_ARG && strstr(e.msg, "arch"), "%s", e.msg);
    model_gen_params_init(&p);
    p.n_vocab = 1000; /* the built-in vocab (no vocab_path) has 259 tokens */
    T_CHECK(model_gen_write(&p, path, &e) == SW_ERR_ARG && strstr(e.msg, "vocab"), "%s", e.msg);
    p.vocab_path = "/nonexistent.gguf";
    T_EQ_INT(model_gen_write(&p, path, &e), SW_ERR_IO);
    model_gen_params_init(&p);
    p.vocab_path = VOCAB_SPM;
    p.preset = NULL; /* explicit shape with missing fields */
    p.n_embd = 64;
    T_CHECK(model_gen_write(&p, path, &e) == SW_ERR_ARG && strstr(e.msg, "bad shape"), "%s", e.msg);
    remove(path);
}

int main(void) {
    if (t_shared_missing()) {
        T_SKIP("../shared absent: model_gen tests need its vocab files");
        return t_done();
    }
    test_forward_vs_golden();
    test_tiny_llama();
    test_q4_k_m();
    test_q4_k_m_vs_llama_cpp();
    test_q5_types();
    test_q3_k_m_vs_reference();
    test_low_bit_types();
    test_qwen2_padded();
    test_presets_tiny();
    test_bad_params();
    return t_done();
}
