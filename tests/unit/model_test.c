/* model_test.c — the loader and the forward pass's input checks: configs read from the
 * shared models (and the newer families of models2: head size from key_length, partial
 * rotary, sliding window, RoPE kinds), clear errors for a missing file, a non-GGUF file, a
 * vocab-only file, an unknown architecture, a wrong tensor shape, an unsupported tensor
 * type, a tensor the architecture does not use and an unknown RoPE scaling type (files
 * written with the gguf writer), the RoPE variants' defining properties (model_rope.h),
 * the K/V row layout of model.h, bad batches refused (token, position, sequence, block
 * id, size), weights borrowed from the mapping, not copied, and every subset of the
 * optional q/k/v biases loading and being applied. */
#include "kernels/kq.h"
#include "model/model.h"
#include "model/model_rope.h"
#include "t.h"
#include <math.h>
#include <stdint.h>
#include <unistd.h>

/* The scratch model file, one per process (the -O2 and sanitizer builds of this test may
 * run at the same time). */
static char tmp_path[64];
#define TMP tmp_path

/* A tiny llama file: D=32, 1 layer, 2 heads, 1 kv head, ff 64, vocab 16. Knobs break it. */
typedef struct knobs {
    const char *arch; int64_t bad_q_rows; uint32_t ffn_dtype; bool drop_output_norm, extra_tensor;
    const char *rope_scaling;
    unsigned biases; /* bit 0: attn_q.bias, 1: attn_k.bias, 2: attn_v.bias */
} knobs;

static int write_model(const knobs *k) {
    enum { D = 32, F = 64, V = 16, KD = 16 };
    gguf_writer *w = gguf_writer_create();
    const char *arch = k->arch ? k->arch : "llama";
    char key[128];
    gguf_writer_set_str(w, "general.architecture", arch);
#define SETU(name, v) (snprintf(key, sizeof key, "%s." name, arch), gguf_writer_set_u32(w, key, v))
    SETU("context_length", 64);
    SETU("embedding_length", D);
    SETU("block_count", 1);
    SETU("feed_forward_length", F);
    SETU("attention.head_count", 2);
    SETU("attention.head_count_kv", 1);
#undef SETU
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    gguf_writer_set_f32(w, key, 1e-5f);
    if (k->rope_scaling) {
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        gguf_writer_set_str(w, key, k->rope_scaling);
    }
    static float buf[V * F * 2];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++) buf[i] = (float)(((uint32_t)i * 2654435761u >> 9) % 1000) / 500.0f - 1.0f;
    static uint8_t qbuf[F * D];
    struct { const char *name; int64_t ne0, ne1; uint32_t dt; } ts[] = {
        {"token_embd.weight", D, V, GGUF_DTYPE_F32},
        {"output_norm.weight", D, 1, GGUF_DTYPE_F32},
        {"blk.0.attn_norm.weight", D, 1, GGUF_DTYPE_F32},
        {"blk.0.attn_q.weight", D, k->bad_q_rows ? k->bad_q_rows : D, GGUF_DTYPE_F32},
        {"blk.0.attn_k.weight", D, KD, GGUF_DTYPE_F32},
        {"blk.0.attn_v.weight", D, KD, GGUF_DTYPE_F32},
        {"blk.0.attn_output.weight", D, D, GGUF_DTYPE_F32},
        {"blk.0.ffn_norm.weight", D, 1, GGUF_DTYPE_F32},
        {"blk.0.ffn_gate.weight", D, F, k->ffn_dtype},
        {"blk.0.ffn_up.weight", D, F, GGUF_DTYPE_F32},
        {"blk.0.ffn_down.weight", F, D, GGUF_DTYPE_F32},
        {"blk.0.attn_q_norm.weight", KD, 1, GGUF_DTYPE_F32}, /* only with extra_tensor */
    };
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        if (k->drop_output_norm && !strcmp(ts[i].name, "output_norm.weight")) continue;
        if (!k->extra_tensor && !strcmp(ts[i].name, "blk.0.attn_q_norm.weight")) continue;
        int64_t ne[2] = {ts[i].ne0, ts[i].ne1};
        uint64_t nb = gguf_row_bytes(ts[i].dt, ne[0]) * (uint64_t)ne[1];
        const void *data = ts[i].dt == GGUF_DTYPE_F32 ? (const void *)buf : (const void *)qbuf;
        if (nb == 0) nb = (uint64_t)ne[0] * (uint64_t)ne[1]; /* a dtype the writer cannot size: raw bytes */
        gguf_writer_add_tensor(w, ts[i].name, ts[i].dt, ts[i].ne1 > 1 ? 2 : 1, ne, data, nb);
    }
    static const char *bias_names[3] = {"blk.0.attn_q.bias", "blk.0.attn_k.bias", "blk.0.attn_v.bias"};
    static float bias[D];
    for (int i = 0; i < D; i++) bias[i] = (float)(i % 7) * 3.0f - 9.0f;
    for (int b = 0; b < 3; b++) {
        if (!(k->biases & (1u << b))) continue;
        int64_t ne[1] = {b == 0 ? D : KD};
        gguf_writer_add_tensor(w, bias_names[b], GGUF_DTYPE_F32, 1, ne, bias, (uint64_t)ne[0] * sizeof(float));
    }
    sw_err e = {0};
    int rc = gguf_writer_write(w, TMP, &e);
    gguf_writer_destroy(w);
    return rc;
}

static void expect_load_error(const char *path, int code, const char *needle) {
    model *m = (model *)1;
    sw_err e = {0};
    int rc = model_load(path, &m, &e);
    T_CHECK(rc == code, "%s: rc %d (%s), expected %d", path, rc, e.msg, code);
    T_CHECK(m == NULL, "out not cleared");
    T_CHECK(strstr(e.msg, needle) != NULL, "message '%s' lacks '%s'", e.msg, needle);
    if (rc == SW_OK) model_free(m);
}

static void test_errors(void) {
    expect_load_error("/nonexistent/model.gguf", SW_ERR_IO, "nonexistent");
    expect_load_error("Makefile", SW_ERR_FORMAT, "Makefile");
    if (!t_shared_missing()) expect_load_error(SHARED "/vocab/ggml-vocab-llama-spm.gguf", SW_ERR_FORMAT, "");

    knobs k = {.ffn_dtype = GGUF_DTYPE_F32};
    T_EQ_INT(write_model(&k), SW_OK);
    model *m;
    sw_err e = {0};
    T_EQ_INT(model_load(TMP, &m, &e), SW_OK);
    if (m) {
        const model_config *c = model_get_config(m);
        T_EQ_INT(c->n_embd, 32);
        T_EQ_INT(c->head_dim, 16);
        T_EQ_INT(c->n_vocab, 16);
        T_OK(c->tied_output);
        T_OK(c->rope_theta == 10000.0f); /* default when absent */
        model_free(m);
    }
    k = (knobs){.arch = "gpt2", .ffn_dtype = GGUF_DTYPE_F32};
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_UNSUPPORTED, "gpt2");
    k = (knobs){.bad_q_rows = 48, .ffn_dtype = GGUF_DTYPE_F32};
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_FORMAT, "blk.0.attn_q.weight");
    k = (knobs){.ffn_dtype = GGUF_DTYPE_I8};
    if (write_model(&k) == SW_OK) expect_load_error(TMP, SW_ERR_UNSUPPORTED, "blk.0.ffn_gate.weight");
    k = (knobs){.ffn_dtype = GGUF_DTYPE_F32, .drop_output_norm = true};
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_FORMAT, "output_norm.weight");
    k = (knobs){.ffn_dtype = GGUF_DTYPE_F32, .extra_tensor = true}; /* a llama file with a q norm */
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_UNSUPPORTED, "blk.0.attn_q_norm.weight");
    k = (knobs){.ffn_dtype = GGUF_DTYPE_F32, .rope_scaling = "su"};
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_UNSUPPORTED, "'su'");
    k = (knobs){.arch = "qwen3", .ffn_dtype = GGUF_DTYPE_F32}; /* qwen3 without its q/k norms */
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_FORMAT, "attn_q_norm");
    unlink(TMP);
}

/* Logits (16) of the last of 3 tokens run through the current TMP file. */
static int forward_tmp(float *out, sw_err *e) {
    model *m;
    int rc = model_load(TMP, &m, e);
    if (rc) return rc;
    model_kv *kv = NULL;
    model_ws *ws = NULL;
    rc = model_kv_create(model_get_config(m), GGUF_DTYPE_F32, 4, 2, &kv, e);
    if (!rc) rc = model_ws_create(m, 3, 8, &ws, e);
    int32_t tokens[3] = {1, 5, 9}, pos[3] = {0, 1, 2}, seq[3] = {0, 0, 0}, bt[2] = {1, 0};
    const int32_t *tables[1] = {bt};
    model_batch b = {.n_tokens = 3, .tokens = tokens, .pos = pos, .seq = seq, .n_seqs = 1, .block_tables = tables};
    if (!rc) rc = model_forward(m, ws, kv, &b, out, e);
    model_ws_destroy(ws);
    model_kv_destroy(kv);
    model_free(m);
    return rc;
}

/* Optional tensors stand alone: a llama file may carry any subset of the q/k/v biases
 * (issue 11: attn_q.bias without attn_k/attn_v.bias dereferenced NULL in the forward).
 * Every subset loads and runs; each present bias changes the logits, so it is applied. */
static void test_bias_subsets(void) {
    float none[16], got[16];
    sw_err e = {0};
    knobs k = {.ffn_dtype = GGUF_DTYPE_F32};
    T_EQ_INT(write_model(&k), SW_OK);
    T_EQ_INT(forward_tmp(none, &e), SW_OK);
    for (unsigned mask = 1; mask < 8; mask++) {
        k.biases = mask;
        T_EQ_INT(write_model(&k), SW_OK);
        int rc = forward_tmp(got, &e);
        T_CHECK(rc == SW_OK, "biases %u: %s", mask, e.msg);
        if (rc) continue;
        bool finite = true, differs = false;
        for (int i = 0; i < 16; i++) {
            finite = finite && isfinite(got[i]);
            differs = differs || fabsf(got[i] - none[i]) > 1e-3f;
        }
        T_CHECK(finite, "biases %u: non-finite logits", mask);
        T_CHECK(differs, "biases %u: logits equal the bias-free ones", mask);
    }
    /* qwen2 requires all three */
    k = (knobs){.arch = "qwen2", .ffn_dtype = GGUF_DTYPE_F32, .biases = 1};
    T_EQ_INT(write_model(&k), SW_OK);
    expect_load_error(TMP, SW_ERR_FORMAT, "attn_k.bias");
    unlink(TMP);
}

/* Largest |a - b| over n pairs of one rotated head. */
static double rope_diff(const model_rope *a, int pa, const model_rope *b, int pb, int hd) {
    float x[64], y[64], cs[32], sn[32];
    for (int i = 0; i < hd; i++) x[i] = y[i] = (float)((i * 7) % 5) - 2.0f + 0.1f * (float)i;
    model_rope_table(a, pa, cs, sn);
    model_rope_apply(a, x, 1, hd, cs, sn);
    model_rope_table(b, pb, cs, sn);
    model_rope_apply(b, y, 1, hd, cs, sn);
    double d = 0;
    for (int i = 0; i < hd; i++) d = fmax(d, fabs((double)x[i] - y[i]));
    return d;
}

/* Properties that define each RoPE variant, checked against the plain rotation and a
 * direct double-precision angle. */
static void test_rope(void) {
    const int hd = 32;
    model_rope plain = {.n_rot = hd, .neox = true, .base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f};
    /* linear scaling by 4 at position 4p = plain at p */
    model_rope lin = plain;
    lin.freq_scale = 0.25f;
    T_CHECK(rope_diff(&lin, 40, &plain, 10, hd) < 1e-4, "linear x4 at 40 vs plain at 10: %g", rope_diff(&lin, 40, &plain, 10, hd));
    /* frequency divisors of 2 everywhere = linear scaling by 2 */
    float two[16];
    for (int i = 0; i < 16; i++) two[i] = 2.0f;
    model_rope ff = plain, lin2 = plain;
    ff.factors = two;
    lin2.freq_scale = 0.5f;
    T_CHECK(rope_diff(&ff, 37, &lin2, 37, hd) < 1e-5, "factors 2 vs linear x2");
    /* partial rotary: dims past n_rot unchanged; pair i of an adjacent layout turns by
     * pos * base^(-2i/n_rot) */
    model_rope part = {.n_rot = 12, .neox = false, .base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f};
    float x[16], cs[8], sn[8];
    for (int i = 0; i < 16; i++) x[i] = 1.0f;
    model_rope_table(&part, 9, cs, sn);
    model_rope_apply(&part, x, 1, 16, cs, sn);
    double worst = 0;
    for (int i = 0; i < 6; i++) {
        double th = 9.0 * pow(10000.0, -2.0 * i / 12.0);
        worst = fmax(worst, fabs(x[2 * i] - (cos(th) - sin(th))));
        worst = fmax(worst, fabs(x[2 * i + 1] - (sin(th) + cos(th))));
    }
    for (int i = 12; i < 16; i++) worst = fmax(worst, fabs(x[i] - 1.0f));
    T_CHECK(worst < 1e-5, "partial rotary: %g", worst);
    /* YaRN: pairs below the low correction dim extrapolate (unscaled angle), pairs above
     * the high one interpolate (angle x freq_scale); cos/sin carry 1 + 0.1 ln(factor) */
    model_rope y = plain;
    y.freq_scale = 1.0f / 8;
    y.ext_factor = 1.0f;
    model_rope_yarn_dims(&y, 4096, 32.0f, 1.0f);
    T_CHECK(y.corr[0] > 0 && y.corr[1] > y.corr[0] && y.corr[1] <= hd - 1, "yarn dims %g %g", y.corr[0], y.corr[1]);
    float ycs[16], ysn[16];
    model_rope_table(&y, 100, ycs, ysn);
    double ms = 1.0 + 0.1 * log(8.0);
    for (int i = 0; i < 16; i++) {
        double th = 100.0 * pow(10000.0, -2.0 * i / hd);
        if (i < y.corr[0]) T_CHECK(fabs(ycs[i] - ms * cos(th)) < 1e-4, "yarn pair %d extrapolates", i);
        if (i > y.corr[1]) T_CHECK(fabs(ysn[i] - ms * sin(th / 8)) < 1e-4, "yarn pair %d interpolates", i);
    }
}

static void test_shared_config(void) {
    if (t_shared_missing()) { T_SKIP("%s missing", SHARED); return; }
    model *m;
    sw_err e = {0};
    T_EQ_INT(model_load(SHARED "/models/qwen2-gpt2-tiny.f32.gguf", &m, &e), SW_OK);
    if (!m) return;
    const model_config *c = model_get_config(m);
    T_EQ_INT(c->arch, MODEL_ARCH_QWEN2);
    T_OK(c->rope_neox && c->tied_output);
    T_EQ_INT(c->n_embd, 64);
    T_EQ_INT(c->n_layer, 2);
    T_EQ_INT(c->n_head, 4);
    T_EQ_INT(c->n_head_kv, 2);
    T_EQ_INT(c->n_ff, 128);
    T_EQ_INT(c->n_vocab, 50257);
    T_OK(c->rope_theta == 1e6f);
    /* weights are borrowed from the mapping: the per-token weight bytes fit inside the file */
    T_OK(model_weight_bytes(m) <= gguf_file_size(model_gguf(m)));
    model_free(m);

    /* the newer families (shapes from ../shared/README.md) */
    T_EQ_INT(model_load(SHARED "/models2/qwen3-tiny.f32.gguf", &m, &e), SW_OK);
    if (m) {
        c = model_get_config(m);
        T_OK(c->arch == MODEL_ARCH_QWEN3 && c->head_dim == 32 && c->n_embd / c->n_head == 16 && c->rope_neox);
        model_free(m);
    }
    T_EQ_INT(model_load(SHARED "/models2/gemma3-tiny.f16.gguf", &m, &e), SW_OK);
    if (m) {
        c = model_get_config(m);
        T_OK(c->arch == MODEL_ARCH_GEMMA3 && c->sliding_window == 8 && c->swa_pattern == 6 && c->n_layer == 7);
        T_OK(c->rope_scaling == MODEL_ROPE_LINEAR && c->rope_factor == 8.0f && c->rope_theta_local == 10000.0f);
        T_OK(fabsf(c->attn_scale - 1.0f / sqrtf(32.0f)) < 1e-7f);
        model_free(m);
    }
    T_EQ_INT(model_load(SHARED "/models2/phi3-tiny.f32.gguf", &m, &e), SW_OK);
    if (m) {
        c = model_get_config(m);
        T_OK(c->arch == MODEL_ARCH_PHI3 && c->n_rot == 12 && c->head_dim == 16 && c->rope_scaling == MODEL_ROPE_LONGROPE);
        T_OK(c->rope_ctx_orig == 4096 && c->n_ctx_train == 131072 && c->sliding_window == 0);
        /* LongRoPE: a workspace for more than the original 4096 positions takes the long
         * factors: same logits at position 0 (no rotation), different after */
        float *lg[2];
        for (int w = 0; w < 2; w++) {
            model_ws *ws;
            model_kv *kv;
            T_EQ_INT(model_ws_create(m, 3, w ? 8192 : 64, &ws, &e), SW_OK);
            T_EQ_INT(model_kv_create(c, GGUF_DTYPE_F32, 4, 1, &kv, &e), SW_OK);
            int32_t tokens[3] = {1, 500, 900}, pos[3] = {0, 1, 2}, seq[3] = {0}, bt[1] = {0};
            uint8_t want[3] = {1, 1, 1};
            const int32_t *tables[1] = {bt};
            model_batch b = {.n_tokens = 3, .tokens = tokens, .pos = pos, .seq = seq, .logits = want, .n_seqs = 1, .block_tables = tables};
            lg[w] = malloc((size_t)3 * c->n_vocab * sizeof *lg[w]);
            T_EQ_INT(model_forward(m, ws, kv, &b, lg[w], &e), SW_OK);
            model_kv_destroy(kv);
            model_ws_destroy(ws);
        }
        double d0 = 0, d2 = 0;
        for (int v = 0; v < c->n_vocab; v++) {
            d0 = fmax(d0, fabs(lg[0][v] - lg[1][v]));
            d2 = fmax(d2, fabs(lg[0][2 * c->n_vocab + v] - lg[1][2 * c->n_vocab + v]));
        }
        T_CHECK(d0 < 1e-5 && d2 > 1e-3, "phi3 short vs long factors: position 0 differs by %g, position 2 by %g", d0, d2);
        free(lg[0]);
        free(lg[1]);
        model_free(m);
    }
    T_EQ_INT(model_load(SHARED "/models2/llama3-rope-tiny.f32.gguf", &m, &e), SW_OK);
    if (m) {
        c = model_get_config(m);
        T_OK(c->arch == MODEL_ARCH_LLAMA && c->rope_scaling == MODEL_ROPE_FREQS && c->tied_output);
        model_free(m);
    }

    T_EQ_INT(model_load(SHARED "/models/llama-spm-kq.q4_k_m.gguf", &m, &e), SW_OK);
    if (!m) return;
    c = model_get_config(m);
    T_EQ_INT(c->arch, MODEL_ARCH_LLAMA);
    T_OK(!c->rope_neox && !c->tied_output);
    T_EQ_INT(c->n_head_kv, 1);
    T_EQ_INT(c->weight_dtype, GGUF_DTYPE_Q4_K);

    /* K/V layout: (n_layer, n_blocks, block_size, kv_dim) */
    model_kv *kv;
    T_EQ_INT(model_kv_create(c, GGUF_DTYPE_F16, 4, 3, &kv, &e), SW_OK);
    size_t kd = (size_t)c->n_head_kv * c->head_dim;
    T_OK((char *)model_kv_row(kv, kv->k, 1, 2, 3) - (char *)kv->k == (long)(((1 * 3 + 2) * 4 + 3) * kd * 2));
    T_EQ_INT(model_kv_create(c, GGUF_DTYPE_Q4_0, 4, 3, &(model_kv *){NULL}, &e), SW_ERR_ARG);
    /* Q8_0 rows: 34 bytes per 32 values */
    if (c->head_dim % 32 == 0) {
        model_kv *kq;
        T_EQ_INT(model_kv_create(c, GGUF_DTYPE_Q8_0, 4, 3, &kq, &e), SW_OK);
        T_OK((char *)model_kv_row(kq, kq->k, 1, 2, 3) - (char *)kq->k == (long)(((1 * 3 + 2) * 4 + 3) * (kd / 32 * 34)));
        T_EQ_INT((int)model_kv_bytes_per_token(m, GGUF_DTYPE_Q8_0), (int)(2 * c->n_layer * (kd / 32 * 34)));
        model_kv_destroy(kq);
    } else {
        T_EQ_INT(model_kv_create(c, GGUF_DTYPE_Q8_0, 4, 3, &(model_kv *){NULL}, &e), SW_ERR_UNSUPPORTED);
    }

    /* bad batches */
    model_ws *ws;
    T_EQ_INT(model_ws_create(m, 4, 12, &ws, &e), SW_OK);
    float *out = malloc((size_t)4 * c->n_vocab * sizeof *out);
    int32_t tokens[4] = {1, 2, 3, 4}, pos[4] = {0, 1, 2, 3}, seq[4] = {0, 0, 0, 0}, bt[3] = {2, 0, 1};
    const int32_t *tables[1] = {bt};
    model_batch b = {.n_tokens = 4, .tokens = tokens, .pos = pos, .seq = seq, .n_seqs = 1, .block_tables = tables};
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_OK);
    tokens[1] = c->n_vocab;
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_ERR_ARG);
    T_CHECK(strstr(e.msg, "token") != NULL, "%s", e.msg);
    tokens[1] = 2;
    pos[3] = 12; /* beyond the workspace's context */
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_ERR_ARG);
    pos[3] = 3;
    seq[2] = 1;
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_ERR_ARG);
    seq[2] = 0;
    bt[0] = 3; /* no such block */
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_ERR_ARG);
    T_CHECK(strstr(e.msg, "block") != NULL, "%s", e.msg);
    bt[0] = 2;
    b.n_tokens = 5;
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_ERR_ARG);
    b.n_tokens = 0;
    T_EQ_INT(model_forward(m, ws, kv, &b, out, &e), SW_ERR_ARG);
    T_EQ_INT(model_ws_create(m, 0, 12, &(model_ws *){NULL}, &e), SW_ERR_ARG);
    free(out);
    model_ws_destroy(ws);
    model_kv_destroy(kv);
    model_free(m);
}

int main(void) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/swiftlet_model_test_%d.gguf", (int)getpid());
    test_errors();
    test_bias_subsets();
    test_rope();
    test_shared_config();
    return t_done();
}
