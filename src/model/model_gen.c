/* model_gen.c — writes random-weight Llama/Qwen2/Qwen3/Gemma3/Phi3 GGUF files and
 * requantizes models.
 *
 * Generation: the tensor list and metadata follow what llama.cpp writes (compare
 * ../shared/models). Each tensor is registered with the GGUF writer as a streaming
 * tensor; at write time rows are drawn (OpenMP over rows) from a splitmix64 stream keyed
 * by (seed, tensor name, row) — normals approximated by a sum of four 16-bit uniforms —
 * and converted with kq_quantize_row. Scales mirror the reference models: embeddings
 * N(0,1) (tied: 8/sqrt(n_embd) at most 1, so logits stay O(10)), q/k matrices
 * 2/sqrt(n_in), other matrices 1/sqrt(n_in), untied output 3/sqrt(n_embd), norms
 * 1 ± 0.1, biases ± 0.1. Frequency-factor tensors are not random: rope_freqs follows Llama
 * 3.1's formula (factor 32, low 1, high 4, original context 8192), phi3's LongRoPE short
 * factors rise from 1 to 1.5 and long factors from 1 to 32 across the rotated pairs.
 *
 * Per-tensor types (llama.cpp's llama_tensor_get_type for these ftypes): 1-D tensors stay
 * F32. The output matrix (token_embd when tied) gets Q8_0 when its rows do not hold whole
 * blocks of the file's base type, else Q6_K (Q8_0 files: Q8_0). q4_k_m / q5_k_m use Q6_K
 * for attn_v / ffn_down of the layers llama.cpp's use_more_bits picks, and their base type
 * (Q4_K / Q5_K) elsewhere; q4_0 / q5_0 / q8_0 use the base type elsewhere. Rows that are
 * not a multiple of 256 then fall back as llama.cpp does: Q4_K -> Q5_0, Q5_K -> Q5_1,
 * Q6_K -> Q8_0 (and to F16 when not a multiple of 32). */
#include "model/model_gen.h"
#include "gguf/gguf.h"
#include "kernels/kq.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct preset {
    const char *name, *arch;
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx; /* n_vocab 0: the vocab's size */
    float theta;
    int tied;
    int64_t head_dim;  /* 0: n_embd / n_head */
    bool rope_freqs;   /* Llama 3.1 RoPE scaling tensor */
} preset;

static const preset presets[] = {
    {"smollm2-135m", "llama", 576, 30, 9, 3, 1536, 49152, 8192, 1e5f, 1, 0, false},
    {"qwen2.5-0.5b", "qwen2", 896, 24, 14, 2, 4864, 151936, 32768, 1e6f, 1, 0, false},
    {"llama-3.2-1b", "llama", 2048, 16, 32, 8, 8192, 128256, 131072, 5e5f, 1, 0, true},
    {"qwen3-0.6b", "qwen3", 1024, 28, 16, 8, 3072, 151936, 40960, 1e6f, 1, 128, false},
    {"gemma3-1b", "gemma3", 1152, 26, 4, 1, 6912, 262144, 32768, 1e6f, 1, 256, false},
    {"phi-4-mini", "phi3", 3072, 32, 24, 8, 8192, 200064, 131072, 1e4f, 1, 0, false},
    {"tiny", "llama", 64, 2, 4, 2, 128, 0, 2048, 1e4f, 0, 0, false},
};
#define PRESET_NAMES "smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, qwen3-0.6b, gemma3-1b, phi-4-mini, tiny"
#define ARCH_NAMES "llama, qwen2, qwen3, gemma3, phi3"
#define GEMMA3_WINDOW 512
#define PHI3_CTX_ORIG 4096

typedef enum ftype { FT_F32, FT_F16, FT_Q8_0, FT_Q4_0, FT_Q5_0, FT_Q4_K_M, FT_Q5_K_M } ftype;
/* llama_ftype: LLAMA_FTYPE_ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q5_0 8, Q4_K_M 15, Q5_K_M 17 */
static const struct { const char *name; ftype ft; uint32_t llama_ftype; uint32_t base; } ftypes[] = {
    {"f32", FT_F32, 0, GGUF_DTYPE_F32},        {"f16", FT_F16, 1, GGUF_DTYPE_F16},
    {"q8_0", FT_Q8_0, 7, GGUF_DTYPE_Q8_0},     {"q4_0", FT_Q4_0, 2, GGUF_DTYPE_Q4_0},
    {"q5_0", FT_Q5_0, 8, GGUF_DTYPE_Q5_0},     {"q4_k_m", FT_Q4_K_M, 15, GGUF_DTYPE_Q4_K},
    {"q5_k_m", FT_Q5_K_M, 17, GGUF_DTYPE_Q5_K},
};
#define FTYPE_NAMES "f32, f16, q8_0, q4_0, q5_0, q4_k_m, q5_k_m"

static int parse_ftype(const char *s, ftype *ft, uint32_t *llama_ftype) {
    for (size_t i = 0; s && i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (!strcmp(s, ftypes[i].name)) {
            *ft = ftypes[i].ft;
            *llama_ftype = ftypes[i].llama_ftype;
            return SW_OK;
        }
    return SW_ERR_ARG;
}

static uint32_t base_dtype(ftype ft) {
    for (size_t i = 0; i < sizeof ftypes / sizeof ftypes[0]; i++)
        if (ftypes[i].ft == ft) return ftypes[i].base;
    return GGUF_DTYPE_F32;
}

/* llama.cpp's use_more_bits: the layers whose attn_v / ffn_down Q4_K_M / Q5_K_M keep in Q6_K. */
static bool use_more_bits(int64_t i, int64_t n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* Layer index of "blk.N.*", else -1. */
static int64_t layer_of(const char *name) {
    if (strncmp(name, "blk.", 4)) return -1;
    char *end;
    long long v = strtoll(name + 4, &end, 10);
    return end != name + 4 && *end == '.' ? v : -1;
}

/* The dtype a weight tensor gets in a file of type ft. */
static uint32_t pick_dtype(ftype ft, const char *name, uint32_t n_dims, int64_t ne0, int64_t n_layer, bool tied) {
    if (n_dims < 2 || ft == FT_F32) return GGUF_DTYPE_F32;
    if (ft == FT_F16) return GGUF_DTYPE_F16;
    const uint32_t base = base_dtype(ft);
    const bool is_output = !strcmp(name, "output.weight") || (tied && !strcmp(name, "token_embd.weight"));
    const bool k_m = ft == FT_Q4_K_M || ft == FT_Q5_K_M;
    uint32_t dt = base;
    if (is_output) {
        dt = ne0 % gguf_dtype_block_elems(base) ? GGUF_DTYPE_Q8_0 : base == GGUF_DTYPE_Q8_0 ? base : GGUF_DTYPE_Q6_K;
    } else if (k_m && (strstr(name, "attn_v.weight") || strstr(name, "ffn_down"))) {
        const int64_t il = layer_of(name);
        if (il >= 0 && use_more_bits(il, n_layer)) dt = GGUF_DTYPE_Q6_K;
    }
    if (ne0 % gguf_dtype_block_elems(dt)) {
        dt = dt == GGUF_DTYPE_Q4_K   ? GGUF_DTYPE_Q5_0
             : dt == GGUF_DTYPE_Q5_K ? GGUF_DTYPE_Q5_1
             : dt == GGUF_DTYPE_Q6_K ? GGUF_DTYPE_Q8_0
                                     : dt;
        if (ne0 % gguf_dtype_block_elems(dt)) dt = GGUF_DTYPE_F16;
    }
    return dt;
}

/* ---- random rows ---- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Approximately N(0,1): four 16-bit uniforms summed, centred, scaled to unit variance. */
static float gauss(uint64_t *s) {
    uint64_t r = splitmix(s);
    float sum = (float)(r & 0xffff) + (float)((r >> 16) & 0xffff) + (float)((r >> 32) & 0xffff) + (float)(r >> 48);
    return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

typedef enum gen_kind { GEN_MATRIX, GEN_NORM, GEN_BIAS, GEN_ROPE_FREQS, GEN_LONGROPE_SHORT, GEN_LONGROPE_LONG } gen_kind;

typedef struct gen_tensor {
    char name[64];
    uint32_t dtype, n_dims;
    int64_t ne[2]; /* ne[0] = n_in (row length), ne[1] = rows */
    gen_kind kind;
    float scale; /* std of matrix entries; GEN_ROPE_FREQS: the RoPE base */
    uint64_t key; /* seed mixed with the name */
} gen_tensor;

/* Llama 3.1's frequency divisor of pair i of n (base theta): 1 for short wavelengths, 32
 * beyond the original context / 1, smooth between (llama.cpp's converter). */
static float llama3_rope_factor(float theta, int64_t i, int64_t n) {
    const double factor = 32, lo = 1, hi = 4, orig = 8192, pi2 = 6.283185307179586;
    double freq = 1.0 / pow((double)theta, (double)(2 * i) / (double)(2 * n)), wavelen = pi2 / freq;
    if (wavelen < orig / hi) return 1.0f;
    if (wavelen > orig / lo) return (float)factor;
    double smooth = (orig / wavelen - lo) / (hi - lo);
    return (float)(1.0 / ((1 - smooth) / factor + smooth));
}

static void gen_row(const gen_tensor *t, int64_t row, float *out) {
    if (t->kind == GEN_ROPE_FREQS || t->kind == GEN_LONGROPE_SHORT || t->kind == GEN_LONGROPE_LONG) {
        const int64_t n = t->ne[0];
        for (int64_t i = 0; i < n; i++) {
            float x = n > 1 ? (float)i / (float)(n - 1) : 0;
            out[i] = t->kind == GEN_ROPE_FREQS ? llama3_rope_factor(t->scale, i, n)
                     : t->kind == GEN_LONGROPE_SHORT ? 1.0f + 0.5f * x : 1.0f + 31.0f * x * x;
        }
        return;
    }
    uint64_t s = t->key ^ ((uint64_t)row * 0xd1b54a32d192ed03ULL);
    splitmix(&s);
    for (int64_t i = 0; i < t->ne[0]; i++) {
        float g = gauss(&s);
        if (t->kind == GEN_MATRIX) {
            out[i] = g * t->scale;
        } else {
            float d = fminf(0.25f, fmaxf(-0.25f, 0.1f * g));
            out[i] = t->kind == GEN_NORM ? 1.0f + d : d;
        }
    }
}

/* Writes n_rows rows of n floats, each produced by make_row(ctx, r, buf), converted to
 * dtype into dst (rows of gguf_row_bytes(dtype, n)); OpenMP over rows. */
static int convert_rows(void (*make_row)(const void *ctx, int64_t r, float *buf), const void *ctx, int64_t n_rows,
                        int64_t n, uint32_t dtype, void *dst) {
    uint64_t rb = gguf_row_bytes(dtype, n);
    int bad = 0;
#pragma omp parallel num_threads(sw_n_threads())
    {
        float *buf = malloc((size_t)n * sizeof *buf);
        if (!buf) {
#pragma omp atomic write
            bad = 1;
        }
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n_rows; r++) {
            if (!buf) continue;
            make_row(ctx, r, buf);
            if (kq_quantize_row(dtype, buf, (char *)dst + (uint64_t)r * rb, n)) {
#pragma omp atomic write
                bad = 1;
            }
        }
        free(buf);
    }
    return bad ? SW_ERR_NOMEM : SW_OK;
}

typedef struct gen_rows { const gen_tensor *t; int64_t row0; } gen_rows;
static void gen_make_row(const void *ctx, int64_t r, float *buf) {
    const gen_rows *g = ctx;
    gen_row(g->t, g->row0 + r, buf);
}

static int gen_fill(void *user, int64_t row0, int64_t n_rows, void *dst, sw_err *err) {
    const gen_tensor *t = user;
    gen_rows g = {t, row0};
    if (convert_rows(gen_make_row, &g, n_rows, t->ne[0], t->dtype, dst))
        return sw_err_set(err, SW_ERR_NOMEM, "tensor '%s': generating rows failed", t->name);
    return SW_OK;
}

/* ---- generation ---- */

typedef struct shape {
    const char *arch;
    int64_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx, head_dim, n_rot;
    float theta;
    bool tied, rope_freqs;
} shape;

static int resolve_shape(const model_gen_params *p, int64_t vocab_size, shape *s, sw_err *err) {
    const preset *pr = NULL;
    if (p->preset) {
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
            if (!strcmp(presets[i].name, p->preset)) pr = &presets[i];
        if (!pr)
            return sw_err_set(err, SW_ERR_ARG, "unknown preset '%s' (" PRESET_NAMES ")", p->preset);
    }
    s->arch = p->arch ? p->arch : pr ? pr->arch : "llama";
    if (strcmp(s->arch, "llama") && strcmp(s->arch, "qwen2") && strcmp(s->arch, "qwen3") && strcmp(s->arch, "gemma3") &&
        strcmp(s->arch, "phi3"))
        return sw_err_set(err, SW_ERR_ARG, "unknown arch '%s' (" ARCH_NAMES ")", s->arch);
    bool qwen = !strcmp(s->arch, "qwen2");
#define PICK(f, def) (p->f > 0 ? p->f : pr ? pr->f : (def))
    s->n_embd = PICK(n_embd, 0);
    s->n_layer = PICK(n_layer, 0);
    s->n_head = PICK(n_head, 0);
    s->n_head_kv = PICK(n_head_kv, 0);
    s->n_ff = PICK(n_ff, 0);
    s->n_ctx = PICK(n_ctx, 2048);
    s->n_vocab = PICK(n_vocab, 0);
    s->head_dim = p->head_dim > 0 ? p->head_dim : pr && pr->head_dim && !p->n_embd && !p->n_head ? pr->head_dim : 0;
#undef PICK
    s->rope_freqs = pr && pr->rope_freqs && !strcmp(s->arch, "llama");
    s->theta = p->rope_theta > 0 ? p->rope_theta : pr ? pr->theta : qwen ? 1e6f : 1e4f;
    s->tied = p->tied >= 0 ? p->tied != 0 : pr ? pr->tied != 0 : false;
    if (s->n_vocab < vocab_size) {
        if (s->n_vocab) sw_warn("gen-model: vocab has %lld tokens, more than n_vocab %lld: using %lld",
                                (long long)vocab_size, (long long)s->n_vocab, (long long)vocab_size);
        s->n_vocab = vocab_size;
    }
    const int64_t lim = 1 << 20;
    if (s->n_embd <= 0 || s->n_layer <= 0 || s->n_head <= 0 || s->n_head_kv <= 0 || s->n_ff <= 0 || s->n_ctx <= 0 ||
        s->n_embd > lim || s->n_layer > 4096 || s->n_ff > lim || s->n_vocab > (1 << 24) || s->n_ctx > (1 << 24))
        return sw_err_set(err, SW_ERR_ARG, "bad shape: embd %lld layers %lld heads %lld kv heads %lld ffn %lld vocab %lld ctx %lld",
                          (long long)s->n_embd, (long long)s->n_layer, (long long)s->n_head, (long long)s->n_head_kv,
                          (long long)s->n_ff, (long long)s->n_vocab, (long long)s->n_ctx);
    if ((!s->head_dim && s->n_embd % s->n_head) || s->n_head % s->n_head_kv)
        return sw_err_set(err, SW_ERR_ARG, "bad heads: embd %lld must split into %lld heads (or give a head dim), and %lld kv heads must divide them",
                          (long long)s->n_embd, (long long)s->n_head, (long long)s->n_head_kv);
    if (!s->head_dim) s->head_dim = s->n_embd / s->n_head;
    /* phi3: partial rotary over 3/4 of the head (Phi-4-mini), an even count */
    s->n_rot = strcmp(s->arch, "phi3") ? s->head_dim : s->head_dim * 3 / 4 / 2 * 2;
    if (s->head_dim % 2 || s->head_dim > 1024 || s->n_rot < 2)
        return sw_err_set(err, SW_ERR_ARG, "bad head dim %lld (even, 4..1024)", (long long)s->head_dim);
    return SW_OK;
}

static bool not_tokenizer_key(const char *key) { return strncmp(key, "tokenizer.", 10) != 0; }

/* Copies the vocab's tokenizer.* keys, padding tokens/scores/token_type to n_vocab. */
static int copy_vocab(gguf_writer *w, const gguf_ctx *v, int64_t n_vocab, sw_err *err) {
    int rc = gguf_writer_copy_kv(w, v, not_tokenizer_key);
    if (rc) return sw_err_set(err, rc, "copying tokenizer keys failed");
    uint64_t n_tok;
    gguf_type et;
    if (gguf_get_arr_info(v, "tokenizer.ggml.tokens", &et, &n_tok) || et != GGUF_TYPE_STRING)
        return sw_err_set(err, SW_ERR_FORMAT, "vocab has no tokenizer.ggml.tokens string array");
    if ((int64_t)n_tok >= n_vocab) return SW_OK;
    uint64_t n = (uint64_t)n_vocab, n_pad = n - n_tok;
    const char **tok = malloc(n * sizeof *tok);
    char *pads = malloc(n_pad * 32);
    float *scores = calloc(n, sizeof *scores);
    int32_t *types = malloc(n * sizeof *types);
    if (!tok || !pads || !scores || !types) {
        rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory padding the vocab");
        goto out;
    }
    for (uint64_t i = 0; i < n_tok; i++) tok[i] = gguf_get_arr_str(v, "tokenizer.ggml.tokens", i, NULL);
    for (uint64_t i = n_tok; i < n; i++) {
        char *s = pads + (i - n_tok) * 32;
        snprintf(s, 32, "[PAD%llu]", (unsigned long long)i);
        tok[i] = s;
        types[i] = 4; /* USER_DEFINED */
    }
    rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, n);
    if (!rc && gguf_find_key(v, "tokenizer.ggml.scores") >= 0) {
        rc = gguf_get_arr_f32(v, "tokenizer.ggml.scores", 0, n_tok, scores);
        if (!rc) rc = gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, n);
    }
    if (!rc && gguf_find_key(v, "tokenizer.ggml.token_type") >= 0) {
        rc = gguf_get_arr_i32(v, "tokenizer.ggml.token_type", 0, n_tok, types);
        if (!rc) rc = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, n);
    }
    if (rc) rc = sw_err_set(err, rc, "vocab scores/token_type do not match its %llu tokens", (unsigned long long)n_tok);
out:
    free(tok);
    free(pads);
    free(scores);
    free(types);
    return rc;
}

/* The built-in vocabulary (vocab_path NULL): byte-level BPE with the 256 GPT-2 byte
 * tokens, no merges, and the ChatML specials, so a demo model needs no file at all. */
#define BUILTIN_N_SPECIAL 3
static const char *const builtin_specials[BUILTIN_N_SPECIAL] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
#define BUILTIN_N_VOCAB (256 + BUILTIN_N_SPECIAL)

static int write_builtin_vocab(gguf_writer *w, int64_t n_vocab, sw_err *err) {
    if (n_vocab != BUILTIN_N_VOCAB)
        return sw_err_set(err, SW_ERR_ARG, "the built-in vocab has %d tokens; vocab size %lld needs a --vocab file",
                          BUILTIN_N_VOCAB, (long long)n_vocab);
    char bytes[256][4];
    const char *toks[BUILTIN_N_VOCAB];
    int32_t types[BUILTIN_N_VOCAB];
    /* GPT-2's byte -> code point map: printable Latin-1 bytes map to themselves, the
     * others to U+0100 upwards in byte order. */
    int next = 256;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        int cp = printable ? b : next++;
        if (cp < 0x80) { bytes[b][0] = (char)cp; bytes[b][1] = 0; }
        else { bytes[b][0] = (char)(0xC0 | (cp >> 6)); bytes[b][1] = (char)(0x80 | (cp & 0x3F)); bytes[b][2] = 0; }
        toks[b] = bytes[b];
        types[b] = 1; /* NORMAL */
    }
    for (int i = 0; i < BUILTIN_N_SPECIAL; i++) { toks[256 + i] = builtin_specials[i]; types[256 + i] = 3; /* CONTROL */ }
    static const char chatml[] =
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    int rc;
    if ((rc = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2")) ||
        (rc = gguf_writer_set_str(w, "tokenizer.ggml.pre", "default")) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, BUILTIN_N_VOCAB)) ||
        (rc = gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, BUILTIN_N_VOCAB)) ||
        (rc = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", toks, 0)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 256)) ||
        (rc = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 256 + 2)) ||
        (rc = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false)) ||
        (rc = gguf_writer_set_str(w, "tokenizer.chat_template", chatml)))
        return sw_err_set(err, rc, "writing the built-in vocab failed");
    return SW_OK;
}

/* Sets "ARCH.suffix" to a u32 / f32. */
static int set_arch_u32(gguf_writer *w, const char *arch, const char *suffix, int64_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_writer_set_u32(w, key, (uint32_t)v);
}
static int set_arch_f32(gguf_writer *w, const char *arch, const char *suffix, float v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_writer_set_f32(w, key, v);
}

void model_gen_params_init(model_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->preset = "tiny";
    p->type = "f32";
    p->tied = -1;
    p->seed = 42;
}

int model_gen_write(const model_gen_params *p, const char *out_path, sw_err *err) {
    ftype ft;
    uint32_t llama_ftype;
    if (parse_ftype(p->type, &ft, &llama_ftype))
        return sw_err_set(err, SW_ERR_ARG, "unknown weight type '%s' (" FTYPE_NAMES ")", p->type ? p->type : "");
    gguf_ctx *v = NULL;
    uint64_t n_tok = BUILTIN_N_VOCAB;
    if (p->vocab_path) {
        int rc = gguf_open(p->vocab_path, &v, err);
        if (rc) return rc;
        gguf_get_arr_info(v, "tokenizer.ggml.tokens", NULL, &n_tok);
    }
    int rc;
    shape s = {0};
    gguf_writer *w = NULL;
    gen_tensor *ts = NULL;
    if ((rc = resolve_shape(p, (int64_t)n_tok, &s, err))) goto out;
    w = gguf_writer_create();
    const bool qwen2 = !strcmp(s.arch, "qwen2"), gemma = !strcmp(s.arch, "gemma3"), phi = !strcmp(s.arch, "phi3");
    const bool qk_norm = gemma || !strcmp(s.arch, "qwen3");
    int64_t n_t = 6 + s.n_layer * 16;
    ts = calloc((size_t)n_t, sizeof *ts);
    if (!w || !ts) {
        rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        goto out;
    }
    const char *a = s.arch;
    int64_t hd = s.head_dim, qd = hd * s.n_head, kvd = hd * s.n_head_kv;
    const char *name = p->name ? p->name : p->preset ? p->preset : "random";
    if ((rc = gguf_writer_set_str(w, "general.architecture", a)) || (rc = gguf_writer_set_str(w, "general.name", name)) ||
        (rc = set_arch_u32(w, a, "context_length", s.n_ctx)) || (rc = set_arch_u32(w, a, "embedding_length", s.n_embd)) ||
        (rc = set_arch_u32(w, a, "block_count", s.n_layer)) || (rc = set_arch_u32(w, a, "feed_forward_length", s.n_ff)) ||
        (rc = set_arch_u32(w, a, "rope.dimension_count", s.n_rot)) || (rc = set_arch_u32(w, a, "attention.head_count", s.n_head)) ||
        (rc = set_arch_u32(w, a, "attention.head_count_kv", s.n_head_kv)) ||
        (rc = set_arch_f32(w, a, "attention.layer_norm_rms_epsilon", !strcmp(a, "llama") || phi ? 1e-5f : 1e-6f)) ||
        ((qk_norm || hd * s.n_head != s.n_embd) &&
         ((rc = set_arch_u32(w, a, "attention.key_length", hd)) || (rc = set_arch_u32(w, a, "attention.value_length", hd)))) ||
        (gemma && (rc = set_arch_u32(w, a, "attention.sliding_window", GEMMA3_WINDOW))) ||
        (phi && ((rc = set_arch_u32(w, a, "rope.scaling.original_context_length", PHI3_CTX_ORIG)) ||
                 (rc = set_arch_f32(w, a, "rope.scaling.attn_factor",
                                    s.n_ctx > PHI3_CTX_ORIG ? sqrtf(1.0f + logf((float)s.n_ctx / PHI3_CTX_ORIG) / logf(PHI3_CTX_ORIG)) : 1.0f)) ||
                 (rc = set_arch_u32(w, a, "attention.sliding_window", 262144)))) ||
        (rc = set_arch_f32(w, a, "rope.freq_base", s.theta)) || (rc = set_arch_u32(w, a, "vocab_size", s.n_vocab)) ||
        (rc = gguf_writer_set_u32(w, "general.file_type", llama_ftype)) ||
        (ft != FT_F32 && (rc = gguf_writer_set_u32(w, "general.quantization_version", 2)))) {
        rc = sw_err_set(err, rc, "setting metadata failed");
        goto out;
    }
    if ((rc = v ? copy_vocab(w, v, s.n_vocab, err) : write_builtin_vocab(w, s.n_vocab, err))) goto out;

    /* The tensor list, in the reference's order. */
    int64_t k = 0;
#define ADD(kind_, scale_, n_in, rows, ...) do { gen_tensor *t_ = &ts[k++]; \
        snprintf(t_->name, sizeof t_->name, __VA_ARGS__); t_->kind = kind_; t_->scale = (float)(scale_); \
        t_->ne[0] = n_in; t_->ne[1] = rows; t_->n_dims = kind_ == GEN_MATRIX ? 2 : 1; } while (0)
    float r_embd = 1.0f / sqrtf((float)s.n_embd), r_ff = 1.0f / sqrtf((float)s.n_ff);
    if (s.rope_freqs) ADD(GEN_ROPE_FREQS, s.theta, s.n_rot / 2, 1, "rope_freqs.weight");
    if (phi) {
        ADD(GEN_LONGROPE_LONG, 0, s.n_rot / 2, 1, "rope_factors_long.weight");
        ADD(GEN_LONGROPE_SHORT, 0, s.n_rot / 2, 1, "rope_factors_short.weight");
    }
    ADD(GEN_MATRIX, s.tied ? fminf(1.0f, 8.0f * r_embd) : 1.0f, s.n_embd, s.n_vocab, "token_embd.weight");
    for (int64_t l = 0; l < s.n_layer; l++) {
        ADD(GEN_NORM, 0, s.n_embd, 1, "blk.%lld.attn_norm.weight", (long long)l);
        if (phi) {
            ADD(GEN_MATRIX, 1.5f * r_embd, s.n_embd, qd + 2 * kvd, "blk.%lld.attn_qkv.weight", (long long)l);
        } else {
            ADD(GEN_MATRIX, 2 * r_embd, s.n_embd, qd, "blk.%lld.attn_q.weight", (long long)l);
            ADD(GEN_MATRIX, 2 * r_embd, s.n_embd, kvd, "blk.%lld.attn_k.weight", (long long)l);
            ADD(GEN_MATRIX, r_embd, s.n_embd, kvd, "blk.%lld.attn_v.weight", (long long)l);
        }
        if (qwen2) {
            ADD(GEN_BIAS, 0, qd, 1, "blk.%lld.attn_q.bias", (long long)l);
            ADD(GEN_BIAS, 0, kvd, 1, "blk.%lld.attn_k.bias", (long long)l);
            ADD(GEN_BIAS, 0, kvd, 1, "blk.%lld.attn_v.bias", (long long)l);
        }
        if (qk_norm) {
            ADD(GEN_NORM, 0, hd, 1, "blk.%lld.attn_q_norm.weight", (long long)l);
            ADD(GEN_NORM, 0, hd, 1, "blk.%lld.attn_k_norm.weight", (long long)l);
        }
        ADD(GEN_MATRIX, 1.0f / sqrtf((float)qd), qd, s.n_embd, "blk.%lld.attn_output.weight", (long long)l);
        if (gemma) ADD(GEN_NORM, 0, s.n_embd, 1, "blk.%lld.post_attention_norm.weight", (long long)l);
        ADD(GEN_NORM, 0, s.n_embd, 1, "blk.%lld.ffn_norm.weight", (long long)l);
        if (phi) {
            ADD(GEN_MATRIX, r_embd, s.n_embd, 2 * s.n_ff, "blk.%lld.ffn_up.weight", (long long)l);
        } else {
            ADD(GEN_MATRIX, r_embd, s.n_embd, s.n_ff, "blk.%lld.ffn_gate.weight", (long long)l);
            ADD(GEN_MATRIX, r_embd, s.n_embd, s.n_ff, "blk.%lld.ffn_up.weight", (long long)l);
        }
        ADD(GEN_MATRIX, r_ff, s.n_ff, s.n_embd, "blk.%lld.ffn_down.weight", (long long)l);
        if (gemma) ADD(GEN_NORM, 0, s.n_embd, 1, "blk.%lld.post_ffw_norm.weight", (long long)l);
    }
    ADD(GEN_NORM, 0, s.n_embd, 1, "output_norm.weight");
    if (!s.tied) ADD(GEN_MATRIX, 3 * r_embd, s.n_embd, s.n_vocab, "output.weight");
#undef ADD
    for (int64_t i = 0; i < k; i++) {
        gen_tensor *t = &ts[i];
        t->dtype = pick_dtype(ft, t->name, t->n_dims, t->ne[0], s.n_layer, s.tied);
        uint64_t h = p->seed ^ hash_name(t->name);
        t->key = splitmix(&h);
        rc = gguf_writer_add_tensor_fn(w, t->name, t->dtype, t->n_dims, t->ne, gen_fill, t);
        if (rc) {
            rc = sw_err_set(err, rc, "tensor '%s': cannot add", t->name);
            goto out;
        }
    }
    rc = gguf_writer_write(w, out_path, err);
out:
    gguf_writer_destroy(w);
    free(ts);
    gguf_close(v);
    return rc;
}

/* ---- requantization ---- */

typedef struct requant {
    const gguf_tensor *src; /* borrowed from the input mapping */
    uint32_t dtype;         /* output dtype */
} requant;

typedef struct requant_rows { const gguf_tensor *t; const char *src; uint64_t in_rb; } requant_rows;
static void requant_make_row(const void *ctx, int64_t r, float *buf) {
    const requant_rows *q = ctx;
    kq_dequantize_row(q->t->dtype, q->src + (uint64_t)r * q->in_rb, buf, q->t->ne[0]);
}

static int requant_fill(void *user, int64_t row0, int64_t n_rows, void *dst, sw_err *err) {
    const requant *q = user;
    const gguf_tensor *t = q->src;
    uint64_t in_rb = gguf_row_bytes(t->dtype, t->ne[0]), out_rb = gguf_row_bytes(q->dtype, t->ne[0]);
    const char *src = (const char *)t->data + (uint64_t)row0 * in_rb;
    if (q->dtype == t->dtype) {
        memcpy(dst, src, out_rb * (uint64_t)n_rows);
        return SW_OK;
    }
    requant_rows rr = {t, src, in_rb};
    if (convert_rows(requant_make_row, &rr, n_rows, t->ne[0], q->dtype, dst))
        return sw_err_set(err, SW_ERR_NOMEM, "tensor '%s': converting rows failed", t->name);
    return SW_OK;
}

int model_gen_quantize(const char *in_path, const char *out_path, const char *type, sw_err *err) {
    ftype ft;
    uint32_t llama_ftype;
    if (parse_ftype(type, &ft, &llama_ftype) || ft == FT_F32)
        return sw_err_set(err, SW_ERR_ARG, "unknown quantization type '%s' (f16, q8_0, q4_0, q5_0, q4_k_m, q5_k_m)", type ? type : "");
    gguf_ctx *g;
    int rc = gguf_open(in_path, &g, err);
    if (rc) return rc;
    int64_t n_t = gguf_n_tensors(g);
    uint32_t n_layer = 0;
    const char *arch = NULL;
    char key[128];
    if (gguf_get_str(g, "general.architecture", &arch, NULL) == SW_OK) {
        snprintf(key, sizeof key, "%s.block_count", arch);
        gguf_get_u32(g, key, &n_layer);
    }
    bool tied = gguf_find_tensor(g, "output.weight") < 0;
    gguf_writer *w = gguf_writer_create();
    requant *qs = calloc((size_t)(n_t ? n_t : 1), sizeof *qs);
    if (!w || !qs) {
        rc = sw_err_set(err, SW_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = gguf_writer_copy_kv(w, g, NULL)) || (rc = gguf_writer_set_u32(w, "general.file_type", llama_ftype)) ||
        (rc = gguf_writer_set_u32(w, "general.quantization_version", 2))) {
        rc = sw_err_set(err, rc, "copying metadata failed");
        goto out;
    }
    for (int64_t i = 0; i < n_t; i++) {
        const gguf_tensor *t = gguf_tensor_at(g, i);
        qs[i].src = t;
        qs[i].dtype = t->dtype;
        bool float_w = t->dtype == GGUF_DTYPE_F32 || t->dtype == GGUF_DTYPE_F16 || t->dtype == GGUF_DTYPE_BF16;
        if (float_w && t->n_dims >= 2) qs[i].dtype = pick_dtype(ft, t->name, t->n_dims, t->ne[0], n_layer, tied);
        if (qs[i].dtype != t->dtype && !kq_dtype_supported(t->dtype)) qs[i].dtype = t->dtype;
        if ((rc = gguf_writer_add_tensor_fn(w, t->name, qs[i].dtype, t->n_dims, t->ne, requant_fill, &qs[i]))) {
            rc = sw_err_set(err, rc, "tensor '%s': cannot add", t->name);
            goto out;
        }
    }
    rc = gguf_writer_write(w, out_path, err);
out:
    gguf_writer_destroy(w);
    free(qs);
    gguf_close(g);
    return rc;
}
