/* gguf_test.c — the GGUF reader and writer: every file in ../shared/models and
 * ../shared/vocab loads with the values the reference wrote (architecture, shapes,
 * tokenizer arrays, F16 data equal to the F32 file's rounded); a writer round trip over
 * every value type (nested arrays included) and several tensor dtypes, copied and
 * streamed; and hand-built broken files (built byte by byte here, independent of the
 * writer) that must fail with SW_ERR_FORMAT/UNSUPPORTED and a message, never a crash. */
#include "gguf/gguf.h"
#include "t.h"
#include <dirent.h>
#include <math.h>

/* ---- helpers ---- */

static float f16_to_f32(uint16_t h) { /* independent of the kernels module */
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e == 0 ? ldexpf((float)m, -24) : ldexpf((float)(m | 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}

static char *tmp_path(char *buf, size_t n) {
    snprintf(buf, n, "/tmp/gguf_test_XXXXXX");
    int fd = mkstemp(buf);
    if (fd >= 0) close(fd);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)n + 1);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) { free(p); p = NULL; }
    fclose(f);
    *len = (size_t)n;
    return p;
}

/* Byte builder for hand-made files. */
typedef struct bb { unsigned char p[8192]; size_t n; } bb;
static void bb_raw(bb *b, const void *s, size_t n) { memcpy(b->p + b->n, s, n); b->n += n; }
static void bb_u32(bb *b, uint32_t v) { bb_raw(b, &v, 4); }
static void bb_u64(bb *b, uint64_t v) { bb_raw(b, &v, 8); }
static void bb_str(bb *b, const char *s) { bb_u64(b, strlen(s)); bb_raw(b, s, strlen(s)); }
static void bb_hdr(bb *b, uint32_t ver, uint64_t n_t, uint64_t n_kv) { b->n = 0; bb_raw(b, "GGUF", 4); bb_u32(b, ver); bb_u64(b, n_t); bb_u64(b, n_kv); }
static void bb_tinfo(bb *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t dt, uint64_t off) {
    bb_str(b, name); bb_u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) bb_u64(b, ne[i]);
    bb_u32(b, dt); bb_u64(b, off);
}
static void bb_pad(bb *b, size_t al) { while (b->n % al) b->p[b->n++] = 0; }

/* Parses a copy of exactly n bytes (so ASan sees any read past the end). */
static int parse_copy(const void *p, size_t n, sw_err *err) {
    void *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    gguf_ctx *ctx = NULL;
    memset(err, 0, sizeof *err);
    int rc = gguf_parse(c, n, &ctx, err);
    if (!rc) {
        /* touch everything a caller may touch */
        for (int64_t i = 0; i < gguf_n_tensors(ctx); i++) {
            const gguf_tensor *t = gguf_tensor_at(ctx, i);
            volatile unsigned char s = 0;
            if (t->nbytes) s ^= ((const unsigned char *)t->data)[0] ^ ((const unsigned char *)t->data)[t->nbytes - 1];
            (void)s;
        }
        gguf_close(ctx);
    } else if (ctx) {
        rc = 99; /* ctx must be NULL on error */
    }
    free(c);
    return rc;
}

#define EXPECT_BAD(buf, len, substr) do { sw_err e_; int rc_ = parse_copy(buf, len, &e_); \
    T_CHECK((rc_ == SW_ERR_FORMAT || rc_ == SW_ERR_UNSUPPORTED) && e_.msg[0] && strstr(e_.msg, substr), \
            "rc %d msg '%s' (want '%s')", rc_, e_.msg, substr); } while (0)

/* ---- shared files ---- */

static void check_shared_dir(const char *dir, int *n_files) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf")) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        gguf_ctx *c;
        sw_err e = {0};
        int rc = gguf_open(path, &c, &e);
        T_CHECK(rc == 0, "%s: %s", path, e.msg);
        if (rc) continue;
        (*n_files)++;
        const char *arch;
        T_CHECK(gguf_get_str(c, "general.architecture", &arch, NULL) == 0, "%s", path);
        uint64_t nt = 0;
        gguf_type et;
        T_CHECK(gguf_get_arr_info(c, "tokenizer.ggml.tokens", &et, &nt) == 0 && et == GGUF_TYPE_STRING && nt > 1000,
                "%s: tokens", path);
        /* every string element reachable, last one too */
        size_t len;
        T_CHECK(gguf_get_arr_str(c, "tokenizer.ggml.tokens", nt - 1, &len) != NULL, "%s", path);
        T_CHECK(gguf_get_arr_str(c, "tokenizer.ggml.tokens", nt, &len) == NULL, "%s", path);
        /* tensors lie inside the file, aligned, without overlap in file order */
        uint64_t end = 0;
        for (int64_t i = 0; i < gguf_n_tensors(c); i++) {
            const gguf_tensor *t = gguf_tensor_at(c, i);
            T_CHECK(t->offset % gguf_alignment(c) == 0, "%s %s", path, t->name);
            if (t->offset + t->nbytes > end) end = t->offset + t->nbytes;
        }
        T_CHECK(end <= gguf_file_size(c), "%s", path);
        gguf_close(c);
    }
    closedir(d);
}

static void test_shared(void) {
    if (t_shared_missing()) { T_SKIP("../shared absent: shared-file checks skipped"); return; }
    int n = 0;
    check_shared_dir(SHARED "/models", &n);
    check_shared_dir(SHARED "/vocab", &n);
    T_CHECK(n >= 7 + 12, "%d shared GGUF files loaded", n);

    gguf_ctx *f32, *f16, *qw, *kq;
    sw_err e;
    T_CHECK(gguf_open(SHARED "/models/llama-spm-tiny.f32.gguf", &f32, &e) == 0, "%s", e.msg);
    T_CHECK(gguf_open(SHARED "/models/llama-spm-tiny.f16.gguf", &f16, &e) == 0, "%s", e.msg);
    T_CHECK(gguf_open(SHARED "/models/qwen2-gpt2-tiny.f32.gguf", &qw, &e) == 0, "%s", e.msg);
    T_CHECK(gguf_open(SHARED "/models/llama-spm-kq.q4_k_m.gguf", &kq, &e) == 0, "%s", e.msg);
    if (!f32 || !f16 || !qw || !kq) return;

    const char *s;
    size_t len;
    T_CHECK(gguf_get_str(f32, "general.architecture", &s, &len) == 0 && !strcmp(s, "llama") && len == 5, "arch");
    T_EQ_INT(gguf_version(f32), 3);
    T_EQ_INT(gguf_alignment(f32), 32);
    T_EQ_INT(gguf_n_tensors(f32), 21);
    T_EQ_INT(gguf_n_tensors(qw), 26);
    uint32_t u;
    T_CHECK(gguf_get_u32(f32, "llama.embedding_length", &u) == 0 && u == 64, "embd");
    T_CHECK(gguf_get_u32(f32, "tokenizer.ggml.bos_token_id", &u) == 0 && u == 1, "bos");
    float eps;
    T_CHECK(gguf_get_f32(qw, "qwen2.attention.layer_norm_rms_epsilon", &eps) == 0 && eps == 1e-6f, "eps");
    T_CHECK(gguf_get_f32(qw, "qwen2.rope.freq_base", &eps) == 0 && eps == 1e6f, "theta");
    bool b;
    T_CHECK(gguf_get_bool(f32, "tokenizer.ggml.add_bos_token", &b) == 0 && b, "add_bos");
    /* typed-getter errors */
    T_EQ_INT(gguf_get_u32(f32, "no.such.key", &u), SW_ERR_NOTFOUND);
    T_EQ_INT(gguf_get_u32(f32, "general.architecture", &u), SW_ERR_TYPE);
    T_EQ_INT(gguf_get_f32(f32, "llama.block_count", &eps), SW_ERR_TYPE);
    T_EQ_INT(gguf_get_bool(f32, "llama.block_count", &b), SW_ERR_TYPE);

    /* tokenizer arrays */
    T_CHECK(!strcmp(gguf_get_arr_str(f32, "tokenizer.ggml.tokens", 0, &len), "<unk>") && len == 5, "tok0");
    T_CHECK(!strcmp(gguf_get_arr_str(f32, "tokenizer.ggml.tokens", 31999, NULL), "给"), "tok last");
    T_CHECK(!strcmp(gguf_get_arr_str(qw, "tokenizer.ggml.merges", 0, NULL), "Ġ t"), "merge0");
    T_CHECK(!strcmp(gguf_get_arr_str(qw, "tokenizer.ggml.tokens", 50256, NULL), "<|endoftext|>"), "eot");
    gguf_type et;
    uint64_t nm;
    T_CHECK(gguf_get_arr_info(qw, "tokenizer.ggml.merges", &et, &nm) == 0 && et == GGUF_TYPE_STRING && nm == 50000, "merges");
    int32_t tt[4];
    float sc[4];
    T_CHECK(gguf_get_arr_i32(f32, "tokenizer.ggml.token_type", 0, 4, tt) == 0, "token_type");
    T_CHECK(tt[0] == 2 && tt[1] == 3 && tt[2] == 3 && tt[3] == 6, "types %d %d %d %d (unk, bos, eos, byte)", tt[0], tt[1], tt[2], tt[3]);
    T_CHECK(gguf_get_arr_f32(f32, "tokenizer.ggml.scores", 31996, 4, sc) == 0, "scores");
    T_EQ_INT(gguf_get_arr_f32(f32, "tokenizer.ggml.scores", 31997, 4, sc), SW_ERR_RANGE);
    T_EQ_INT(gguf_get_arr_f32(f32, "tokenizer.ggml.tokens", 0, 1, sc), SW_ERR_TYPE);
    T_EQ_INT(gguf_get_arr_i32(f32, "tokenizer.ggml.scores", 0, 1, tt), SW_ERR_TYPE);

    /* tensors: shapes, types, and F16 data = F32 data rounded */
    int64_t i = gguf_find_tensor(f32, "token_embd.weight");
    T_CHECK(i >= 0, "token_embd");
    const gguf_tensor *te = gguf_tensor_at(f32, i);
    T_CHECK(te->dtype == GGUF_DTYPE_F32 && te->n_dims == 2 && te->ne[0] == 64 && te->ne[1] == 32000 &&
            te->nbytes == 64 * 32000 * 4, "token_embd shape");
    T_CHECK(gguf_find_tensor(f32, "output.weight") >= 0, "llama-spm-tiny has an untied output");
    T_EQ_INT(gguf_find_tensor(qw, "output.weight"), -1); /* tied */
    const gguf_tensor *a = gguf_tensor_at(f32, gguf_find_tensor(f32, "blk.1.ffn_down.weight"));
    const gguf_tensor *h = gguf_tensor_at(f16, gguf_find_tensor(f16, "blk.1.ffn_down.weight"));
    T_CHECK(a && h && a->ne[0] == 128 && a->ne[1] == 64 && h->dtype == GGUF_DTYPE_F16, "ffn_down");
    if (a && h) {
        int bad = 0;
        for (int64_t k = 0; k < 128 * 64; k++) {
            float x, y;
            uint16_t hv;
            memcpy(&x, (const char *)a->data + 4 * k, 4);
            memcpy(&hv, (const char *)h->data + 2 * k, 2);
            y = f16_to_f32(hv);
            if (fabsf(x - y) > 1e-3f * fabsf(x) + 1e-7f) bad++;
        }
        T_EQ_INT(bad, 0);
    }
    const gguf_tensor *q6 = gguf_tensor_at(kq, gguf_find_tensor(kq, "output.weight"));
    const gguf_tensor *q4 = gguf_tensor_at(kq, gguf_find_tensor(kq, "blk.0.ffn_gate.weight"));
    T_CHECK(q6 && q6->dtype == GGUF_DTYPE_Q6_K && q6->nbytes == 32000 * 210, "q6_k output");
    T_CHECK(q4 && q4->dtype == GGUF_DTYPE_Q4_K && q4->ne[0] == 256 && q4->ne[1] == 768 && q4->nbytes == 768 * 144, "q4_k gate");
    T_CHECK(gguf_find_tensor(qw, "blk.1.attn_v.bias") >= 0, "qwen bias");
    gguf_close(f32);
    gguf_close(f16);
    gguf_close(qw);
    gguf_close(kq);
}

/* ---- writer round trip ---- */

static int fill_rows(void *user, int64_t row0, int64_t n_rows, void *dst, sw_err *err) {
    int64_t ncol = *(const int64_t *)user;
    float *o = dst;
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t c = 0; c < ncol; c++) o[r * ncol + c] = (float)((row0 + r) * 1000 + c);
    return 0;
}

static void test_roundtrip(void) {
    char path[64];
    tmp_path(path, sizeof path);
    gguf_writer *w = gguf_writer_create();
    T_OK(w != NULL);
    T_EQ_INT(gguf_writer_set_str(w, "general.architecture", "test"), 0);
    T_EQ_INT(gguf_writer_set_u32(w, "a.u32", 4000000000u), 0);
    T_EQ_INT(gguf_writer_set_i32(w, "a.i32", -7), 0);
    T_EQ_INT(gguf_writer_set_u64(w, "a.u64", 1ull << 40), 0);
    T_EQ_INT(gguf_writer_set_f32(w, "a.f32", 1.5f), 0);
    T_EQ_INT(gguf_writer_set_bool(w, "a.bool", true), 0);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000; int64_t i64 = -(1ll << 50); double f64 = 0.1;
    T_EQ_INT(gguf_writer_set_raw(w, "a.u8", GGUF_TYPE_UINT8, &u8, 1), 0);
    T_EQ_INT(gguf_writer_set_raw(w, "a.i8", GGUF_TYPE_INT8, &i8, 1), 0);
    T_EQ_INT(gguf_writer_set_raw(w, "a.u16", GGUF_TYPE_UINT16, &u16, 2), 0);
    T_EQ_INT(gguf_writer_set_raw(w, "a.i16", GGUF_TYPE_INT16, &i16, 2), 0);
    T_EQ_INT(gguf_writer_set_raw(w, "a.i64", GGUF_TYPE_INT64, &i64, 8), 0);
    T_EQ_INT(gguf_writer_set_raw(w, "a.f64", GGUF_TYPE_FLOAT64, &f64, 8), 0);
    T_EQ_INT(gguf_writer_set_u32(w, "a.replaced", 1), 0);
    T_EQ_INT(gguf_writer_set_u32(w, "a.replaced", 2), 0); /* keeps its position */
    const char *strs[] = {"", "hello", "ünïcode", "x"};
    T_EQ_INT(gguf_writer_set_arr_str(w, "arr.str", strs, 4), 0);
    int32_t ai[5] = {1, -2, 3, -4, 2147483647};
    float af[3] = {0.5f, -1.25f, 3e10f};
    uint64_t au[2] = {1, 1ull << 63};
    int8_t ab[3] = {1, 0, 1};
    double ad[2] = {2.5, -1e300};
    T_EQ_INT(gguf_writer_set_arr(w, "arr.i32", GGUF_TYPE_INT32, ai, 5), 0);
    T_EQ_INT(gguf_writer_set_arr(w, "arr.f32", GGUF_TYPE_FLOAT32, af, 3), 0);
    T_EQ_INT(gguf_writer_set_arr(w, "arr.u64", GGUF_TYPE_UINT64, au, 2), 0);
    T_EQ_INT(gguf_writer_set_arr(w, "arr.bool", GGUF_TYPE_BOOL, ab, 3), 0);
    T_EQ_INT(gguf_writer_set_arr(w, "arr.f64", GGUF_TYPE_FLOAT64, ad, 2), 0);
    T_EQ_INT(gguf_writer_set_arr(w, "arr.empty", GGUF_TYPE_UINT8, NULL, 0), 0);
    /* arrays of arrays of strings, and three levels */
    const char *s0[] = {"a", "bb"}, *s1[] = {"ccc"};
    gguf_writer_arr subs[3] = {{GGUF_TYPE_STRING, s0, 2}, {GGUF_TYPE_STRING, s1, 1}, {GGUF_TYPE_INT32, ai, 5}};
    T_EQ_INT(gguf_writer_set_arr(w, "arr.nested", GGUF_TYPE_ARRAY, subs, 3), 0);
    gguf_writer_arr lvl2[2] = {{GGUF_TYPE_ARRAY, subs, 2}, {GGUF_TYPE_ARRAY, subs + 2, 1}};
    T_EQ_INT(gguf_writer_set_arr(w, "arr.nested3", GGUF_TYPE_ARRAY, lvl2, 2), 0);
    T_EQ_INT(gguf_writer_set_arr(w, "arr.bad", (gguf_type)99, ai, 1), SW_ERR_ARG);

    /* tensors: F32, F16, Q8_0 (not a multiple of 32 bytes), Q4_K, I32 (3-D), streamed F32 */
    float f[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[64];
    for (int i = 0; i < 64; i++) h[i] = (uint16_t)(0x3c00 + i);
    unsigned char q8[34 * 3], q4k[144 * 2];
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (unsigned char)(i * 7);
    for (size_t i = 0; i < sizeof q4k; i++) q4k[i] = (unsigned char)(i * 13 + 1);
    int32_t i3[2 * 3 * 4];
    for (int i = 0; i < 24; i++) i3[i] = i - 12;
    int64_t ne_f[2] = {3, 2}, ne_h[2] = {32, 2}, ne_q8[2] = {32, 3}, ne_q4k[2] = {256, 2}, ne_i3[3] = {2, 3, 4}, ne_s[2] = {5, 100000};
    T_EQ_INT(gguf_writer_add_tensor(w, "t.f32", GGUF_DTYPE_F32, 2, ne_f, f, sizeof f), 0);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.f16", GGUF_DTYPE_F16, 2, ne_h, h, sizeof h), 0);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.q8", GGUF_DTYPE_Q8_0, 2, ne_q8, q8, sizeof q8), 0);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.q4k", GGUF_DTYPE_Q4_K, 2, ne_q4k, q4k, sizeof q4k), 0);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.i32", GGUF_DTYPE_I32, 3, ne_i3, i3, sizeof i3), 0);
    int64_t ncol = 5;
    T_EQ_INT(gguf_writer_add_tensor_fn(w, "t.stream", GGUF_DTYPE_F32, 2, ne_s, fill_rows, &ncol), 0);
    /* rejected: duplicate name, wrong size, bad block multiple, unknown dtype, bad dims */
    T_EQ_INT(gguf_writer_add_tensor(w, "t.f32", GGUF_DTYPE_F32, 2, ne_f, f, sizeof f), SW_ERR_ARG);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.x", GGUF_DTYPE_F32, 2, ne_f, f, 8), SW_ERR_ARG);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.x", GGUF_DTYPE_Q8_0, 2, ne_f, q8, 34), SW_ERR_ARG);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.x", 4, 2, ne_f, f, sizeof f), SW_ERR_UNSUPPORTED);
    T_EQ_INT(gguf_writer_add_tensor(w, "t.x", GGUF_DTYPE_F32, 5, ne_f, f, sizeof f), SW_ERR_ARG);
    sw_err e = {0};
    T_CHECK(gguf_writer_write(w, path, &e) == 0, "%s", e.msg);
    gguf_writer_destroy(w);

    gguf_ctx *c;
    T_CHECK(gguf_open(path, &c, &e) == 0, "%s", e.msg);
    if (!c) return;
    T_EQ_INT(gguf_version(c), 3);
    T_EQ_INT(gguf_alignment(c), 32);
    T_EQ_INT(gguf_n_kv(c), 22);
    /* insertion order, replacement in place */
    T_CHECK(!strcmp(gguf_key_name(c, 0), "general.architecture"), "order0");
    T_CHECK(!strcmp(gguf_key_name(c, 12), "a.replaced"), "order12 %s", gguf_key_name(c, 12));
    uint32_t u; int32_t i; uint64_t u64; float fl; bool b; const char *s; size_t len;
    T_CHECK(gguf_get_u32(c, "a.u32", &u) == 0 && u == 4000000000u, "u32");
    T_EQ_INT(gguf_get_i32(c, "a.u32", &i), SW_ERR_RANGE);
    T_CHECK(gguf_get_i32(c, "a.i32", &i) == 0 && i == -7, "i32");
    T_EQ_INT(gguf_get_u32(c, "a.i32", &u), SW_ERR_RANGE);
    T_CHECK(gguf_get_u64(c, "a.u64", &u64) == 0 && u64 == 1ull << 40, "u64");
    T_EQ_INT(gguf_get_u32(c, "a.u64", &u), SW_ERR_RANGE);
    T_CHECK(gguf_get_f32(c, "a.f32", &fl) == 0 && fl == 1.5f, "f32");
    T_CHECK(gguf_get_bool(c, "a.bool", &b) == 0 && b, "bool");
    T_CHECK(gguf_get_u32(c, "a.u8", &u) == 0 && u == 200, "u8");
    T_CHECK(gguf_get_i32(c, "a.i8", &i) == 0 && i == -100, "i8");
    T_CHECK(gguf_get_u32(c, "a.u16", &u) == 0 && u == 60000, "u16");
    T_CHECK(gguf_get_i32(c, "a.i16", &i) == 0 && i == -30000, "i16");
    T_EQ_INT(gguf_get_i32(c, "a.i64", &i), SW_ERR_RANGE);
    T_EQ_INT(gguf_get_u64(c, "a.i64", &u64), SW_ERR_RANGE);
    T_CHECK(gguf_get_f32(c, "a.f64", &fl) == 0 && fl == 0.1f, "f64");
    T_CHECK(gguf_get_u32(c, "a.replaced", &u) == 0 && u == 2, "replaced");
    T_EQ_INT(gguf_kv_type(c, gguf_find_key(c, "a.i16")), GGUF_TYPE_INT16);
    T_EQ_INT(gguf_kv_type(c, gguf_find_key(c, "a.f64")), GGUF_TYPE_FLOAT64);
    for (int k = 0; k < 4; k++) {
        s = gguf_get_arr_str(c, "arr.str", (uint64_t)k, &len);
        T_CHECK(s && !strcmp(s, strs[k]) && len == strlen(strs[k]), "arr.str[%d]", k);
    }
    int32_t ri[5]; float rf[5]; gguf_type et; uint64_t n;
    T_CHECK(gguf_get_arr_i32(c, "arr.i32", 0, 5, ri) == 0 && !memcmp(ri, ai, sizeof ai), "arr.i32");
    T_CHECK(gguf_get_arr_f32(c, "arr.i32", 1, 2, rf) == 0 && rf[0] == -2 && rf[1] == 3, "i32 as f32");
    T_CHECK(gguf_get_arr_f32(c, "arr.f32", 0, 3, rf) == 0 && !memcmp(rf, af, sizeof af), "arr.f32");
    T_EQ_INT(gguf_get_arr_i32(c, "arr.u64", 0, 2, ri), SW_ERR_RANGE);
    T_CHECK(gguf_get_arr_i32(c, "arr.bool", 0, 3, ri) == 0 && ri[0] == 1 && ri[1] == 0 && ri[2] == 1, "bool arr");
    T_CHECK(gguf_get_arr_f32(c, "arr.f64", 0, 2, rf) == 0 && rf[0] == 2.5f && isinf(rf[1]), "f64 arr");
    T_CHECK(gguf_get_arr_info(c, "arr.empty", &et, &n) == 0 && et == GGUF_TYPE_UINT8 && n == 0, "empty");
    T_EQ_INT(gguf_get_arr_info(c, "a.u32", &et, &n), SW_ERR_TYPE);
    const gguf_arr *na = gguf_get_arr(c, "arr.nested");
    T_CHECK(na && gguf_arr_elem_type(na) == GGUF_TYPE_ARRAY && gguf_arr_len(na) == 3, "nested");
    if (na) {
        const gguf_arr *x0 = gguf_arr_sub(na, 0), *x1 = gguf_arr_sub(na, 1), *x2 = gguf_arr_sub(na, 2);
        T_CHECK(x0 && gguf_arr_len(x0) == 2 && !strcmp(gguf_arr_str(x0, 1, &len), "bb") && len == 2, "nested[0][1]");
        T_CHECK(x1 && !strcmp(gguf_arr_str(x1, 0, NULL), "ccc"), "nested[1][0]");
        T_CHECK(x2 && gguf_arr_i32(x2, 0, 5, ri) == 0 && ri[4] == 2147483647, "nested[2]");
        T_CHECK(gguf_arr_sub(na, 3) == NULL && gguf_arr_sub(x0, 0) == NULL, "sub bounds");
    }
    const gguf_arr *n3 = gguf_get_arr(c, "arr.nested3");
    const gguf_arr *n3a = n3 ? gguf_arr_sub(n3, 0) : NULL, *n3b = n3a ? gguf_arr_sub(n3a, 1) : NULL;
    T_CHECK(n3b && !strcmp(gguf_arr_str(n3b, 0, NULL), "ccc"), "nested3[0][1][0]");
    const gguf_arr *n3c = n3 ? gguf_arr_sub(gguf_arr_sub(n3, 1), 0) : NULL;
    T_CHECK(n3c && gguf_arr_elem_type(n3c) == GGUF_TYPE_INT32 && gguf_arr_len(n3c) == 5, "nested3[1][0]");

    T_EQ_INT(gguf_n_tensors(c), 6);
    struct { const char *name; const void *data; size_t n; uint32_t dt; } ex[] = {
        {"t.f32", f, sizeof f, GGUF_DTYPE_F32}, {"t.f16", h, sizeof h, GGUF_DTYPE_F16},
        {"t.q8", q8, sizeof q8, GGUF_DTYPE_Q8_0}, {"t.q4k", q4k, sizeof q4k, GGUF_DTYPE_Q4_K},
        {"t.i32", i3, sizeof i3, GGUF_DTYPE_I32}};
    for (int k = 0; k < 5; k++) {
        int64_t ti = gguf_find_tensor(c, ex[k].name);
        const gguf_tensor *t = gguf_tensor_at(c, ti);
        T_CHECK(ti == k && t && t->dtype == ex[k].dt && t->nbytes == ex[k].n && !memcmp(t->data, ex[k].data, ex[k].n),
                "tensor %s", ex[k].name);
        T_CHECK(t && t->offset % 32 == 0, "aligned %s", ex[k].name);
    }
    const gguf_tensor *t3 = gguf_tensor_at(c, gguf_find_tensor(c, "t.i32"));
    T_CHECK(t3->n_dims == 3 && t3->ne[0] == 2 && t3->ne[1] == 3 && t3->ne[2] == 4 && t3->ne[3] == 1, "3-D shape");
    const gguf_tensor *ts = gguf_tensor_at(c, gguf_find_tensor(c, "t.stream"));
    T_CHECK(ts && ts->nbytes == 5 * 100000 * 4, "stream size");
    if (ts) {
        int bad = 0;
        for (int64_t r = 0; r < 100000; r += 777)
            for (int64_t k = 0; k < 5; k++) {
                float v;
                memcpy(&v, (const char *)ts->data + 4 * (r * 5 + k), 4);
                bad += v != (float)(r * 1000 + k);
            }
        T_EQ_INT(bad, 0);
    }

    /* copy_kv then rewrite: every value encodes identically; v2 header parses too */
    gguf_writer *w2 = gguf_writer_create();
    T_EQ_INT(gguf_writer_copy_kv(w2, c, NULL), 0);
    char path2[64];
    tmp_path(path2, sizeof path2);
    T_CHECK(gguf_writer_write(w2, path2, &e) == 0, "%s", e.msg);
    gguf_writer_destroy(w2);
    gguf_ctx *c2;
    T_CHECK(gguf_open(path2, &c2, &e) == 0, "%s", e.msg);
    if (c2) {
        T_EQ_INT(gguf_n_kv(c2), gguf_n_kv(c));
        T_EQ_INT(gguf_n_tensors(c2), 0);
        int same = 1;
        for (int64_t k = 0; k < gguf_n_kv(c); k++) {
            const void *d1, *d2; uint64_t l1, l2;
            gguf_kv_raw(c, k, &d1, &l1);
            gguf_kv_raw(c2, k, &d2, &l2);
            same &= l1 == l2 && !memcmp(d1, d2, l1) && !strcmp(gguf_key_name(c, k), gguf_key_name(c2, k));
        }
        T_OK(same);
        gguf_close(c2);
    }
    gguf_close(c);
    size_t flen;
    unsigned char *img = slurp(path, &flen);
    T_OK(img != NULL);
    if (img) {
        img[4] = 2; /* v2 has the same encoding as v3 */
        gguf_ctx *c3;
        T_CHECK(gguf_parse(img, flen, &c3, &e) == 0 && gguf_version(c3) == 2 && gguf_n_tensors(c3) == 6, "%s", e.msg);
        gguf_close(c3);
        /* every truncation of a real file fails cleanly (step over the big tensor) */
        int bad = 0;
        for (size_t cut = 0; cut < flen; cut += cut < 4096 ? 1 : 4093) {
            sw_err te;
            int rc = parse_copy(img, cut, &te);
            if (!(rc == SW_ERR_FORMAT || rc == SW_ERR_UNSUPPORTED) || !te.msg[0]) bad++;
        }
        T_EQ_INT(bad, 0);
        free(img);
    }
    remove(path);
    remove(path2);

    /* a vocab file's keys survive copy_kv + write + read */
    if (!t_shared_missing()) {
        gguf_ctx *v;
        T_CHECK(gguf_open(SHARED "/vocab/ggml-vocab-gpt-2.gguf", &v, &e) == 0, "%s", e.msg);
        gguf_writer *w3 = gguf_writer_create();
        T_EQ_INT(gguf_writer_copy_kv(w3, v, NULL), 0);
        tmp_path(path2, sizeof path2);
        T_CHECK(gguf_writer_write(w3, path2, &e) == 0, "%s", e.msg);
        gguf_writer_destroy(w3);
        gguf_ctx *v2;
        T_CHECK(gguf_open(path2, &v2, &e) == 0, "%s", e.msg);
        uint64_t n1 = 0, n2 = 0;
        gguf_get_arr_info(v, "tokenizer.ggml.merges", &et, &n1);
        gguf_get_arr_info(v2, "tokenizer.ggml.merges", &et, &n2);
        T_CHECK(n1 == n2 && n1 > 0, "merges %llu %llu", (unsigned long long)n1, (unsigned long long)n2);
        int diff = 0;
        for (uint64_t k = 0; k < n1; k++)
            diff += strcmp(gguf_get_arr_str(v, "tokenizer.ggml.merges", k, NULL),
                           gguf_get_arr_str(v2, "tokenizer.ggml.merges", k, NULL)) != 0;
        T_EQ_INT(diff, 0);
        gguf_close(v);
        gguf_close(v2);
        remove(path2);
    }
}

/* general.alignment set by the caller (any integer type) is honoured; a bad one refused. */
static void test_writer_alignment(void) {
    char path[64];
    tmp_path(path, sizeof path);
    float f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t ne1[1] = {1}, ne8[1] = {8};
    gguf_writer *w = gguf_writer_create();
    int32_t al = 128;
    T_EQ_INT(gguf_writer_set_raw(w, "general.alignment", GGUF_TYPE_INT32, &al, 4), 0);
    T_EQ_INT(gguf_writer_add_tensor(w, "a", GGUF_DTYPE_F32, 1, ne1, f, 4), 0);
    T_EQ_INT(gguf_writer_add_tensor(w, "b", GGUF_DTYPE_F32, 1, ne8, f, 32), 0);
    sw_err e = {0};
    T_CHECK(gguf_writer_write(w, path, &e) == 0, "%s", e.msg);
    gguf_ctx *c;
    T_CHECK(gguf_open(path, &c, &e) == 0, "%s", e.msg);
    if (c) {
        const gguf_tensor *b = gguf_tensor_at(c, 1);
        T_CHECK(gguf_alignment(c) == 128 && b->offset == 128 && !memcmp(b->data, f, 32), "alignment 128, offset %llu",
                (unsigned long long)b->offset);
        /* the data section itself starts on a multiple of 128 from the file start */
        size_t flen;
        unsigned char *img = slurp(path, &flen);
        T_CHECK(img && flen % 128 == 0 && !memcmp(img + flen - 128, f, 32), "file length %zu", flen);
        free(img);
        gguf_close(c);
    }
    al = 48;
    T_EQ_INT(gguf_writer_set_raw(w, "general.alignment", GGUF_TYPE_INT32, &al, 4), 0);
    T_CHECK(gguf_writer_write(w, path, &e) == SW_ERR_ARG && strstr(e.msg, "power of two"), "%s", e.msg);
    gguf_writer_destroy(w);
    remove(path);
}

/* ---- hand-broken files ---- */

static void test_broken(void) {
    bb b;
    uint64_t ne2[2] = {32, 2};
    sw_err e;

    /* a minimal valid file first: one u32 key, one F32 tensor */
    bb_hdr(&b, 3, 1, 1);
    bb_str(&b, "k"); bb_u32(&b, GGUF_TYPE_UINT32); bb_u32(&b, 5);
    bb_tinfo(&b, "t", 2, ne2, GGUF_DTYPE_F32, 0);
    bb_pad(&b, 32);
    size_t data_at = b.n;
    memset(b.p + b.n, 0x3f, 256); b.n += 256;
    T_EQ_INT(parse_copy(b.p, b.n, &e), 0);
    for (size_t cut = 0; cut < b.n; cut++) {
        int rc = parse_copy(b.p, cut, &e);
        T_CHECK(rc == SW_ERR_FORMAT && e.msg[0], "cut %zu: rc %d", cut, rc);
    }
    EXPECT_BAD(b.p, data_at + 255, "past end of file");

    bb_hdr(&b, 3, 0, 0); b.p[0] = 'X';
    EXPECT_BAD(b.p, b.n, "bad magic");
    bb_hdr(&b, 1, 0, 0);
    EXPECT_BAD(b.p, b.n, "v1 is not supported");
    bb_hdr(&b, 4, 0, 0);
    EXPECT_BAD(b.p, b.n, "version");
    bb_hdr(&b, 0x03000000, 0, 0);
    EXPECT_BAD(b.p, b.n, "byte-swapped");
    bb_hdr(&b, 3, 1ull << 60, 0);
    EXPECT_BAD(b.p, b.n, "tensor count");
    bb_hdr(&b, 3, 0, 1ull << 60);
    EXPECT_BAD(b.p, b.n, "metadata count");
    bb_hdr(&b, 3, 0, 1);
    bb_u64(&b, 1ull << 62); bb_raw(&b, "abcdefghijklmnopqrstuvwxyz", 26); /* key length past EOF */
    EXPECT_BAD(b.p, b.n, "string length");
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "s"); bb_u32(&b, GGUF_TYPE_STRING); bb_u64(&b, 1000); bb_raw(&b, "short", 5);
    EXPECT_BAD(b.p, b.n, "past end of file");
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_UINT32); bb_u64(&b, 1ull << 60);
    EXPECT_BAD(b.p, b.n, "array of");
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_STRING); bb_u64(&b, UINT64_MAX);
    EXPECT_BAD(b.p, b.n, "array of");
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "arr"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, 77); bb_u64(&b, 1);
    EXPECT_BAD(b.p, b.n, "unknown array element type");
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "k"); bb_u32(&b, 13); bb_u32(&b, 0);
    EXPECT_BAD(b.p, b.n, "unknown value type");
    bb_hdr(&b, 3, 0, 1); /* arrays nested 40 deep */
    bb_str(&b, "deep"); bb_u32(&b, GGUF_TYPE_ARRAY);
    for (int k = 0; k < 40; k++) { bb_u32(&b, GGUF_TYPE_ARRAY); bb_u64(&b, 1); }
    bb_u32(&b, GGUF_TYPE_UINT8); bb_u64(&b, 0);
    EXPECT_BAD(b.p, b.n, "nested deeper");
    bb_hdr(&b, 3, 0, 2);
    bb_str(&b, "k"); bb_u32(&b, GGUF_TYPE_UINT8); bb_raw(&b, "\1", 1);
    bb_str(&b, "k"); bb_u32(&b, GGUF_TYPE_UINT8); bb_raw(&b, "\1", 1);
    EXPECT_BAD(b.p, b.n, "duplicate metadata key 'k'");

    /* alignment: 0, 3, a string */
    uint32_t als[2] = {0, 3};
    for (int k = 0; k < 2; k++) {
        bb_hdr(&b, 3, 0, 1);
        bb_str(&b, "general.alignment"); bb_u32(&b, GGUF_TYPE_UINT32); bb_u32(&b, als[k]);
        EXPECT_BAD(b.p, b.n, "power of two");
    }
    bb_hdr(&b, 3, 0, 1);
    bb_str(&b, "general.alignment"); bb_u32(&b, GGUF_TYPE_STRING); bb_str(&b, "32");
    EXPECT_BAD(b.p, b.n, "general.alignment");
    /* a valid non-default alignment is honoured */
    bb_hdr(&b, 3, 1, 1);
    bb_str(&b, "general.alignment"); bb_u32(&b, GGUF_TYPE_UINT32); bb_u32(&b, 64);
    bb_tinfo(&b, "t", 2, ne2, GGUF_DTYPE_F32, 0);
    bb_pad(&b, 64);
    memset(b.p + b.n, 0, 256); b.n += 256;
    gguf_ctx *c;
    T_CHECK(gguf_parse(b.p, b.n, &c, &e) == 0 && gguf_alignment(c) == 64 &&
            (size_t)((const unsigned char *)gguf_tensor_at(c, 0)->data - b.p) % 64 == 0, "align 64: %s", e.msg);
    gguf_close(c);

    /* tensor infos */
    struct { uint32_t nd; uint64_t ne[4]; uint32_t dt; uint64_t off; const char *msg; } bad[] = {
        {2, {32, 2}, GGUF_DTYPE_F32, 1ull << 40, "past end of file"},
        {2, {32, 2}, GGUF_DTYPE_F32, UINT64_MAX - 31, "past end of file"},
        {2, {32, 2}, GGUF_DTYPE_F32, 8, "not a multiple of the alignment"},
        {3, {1ull << 32, 1ull << 32, 1ull << 4}, GGUF_DTYPE_F32, 0, "overflows"},
        {2, {1ull << 62, 1}, GGUF_DTYPE_F32, 0, "byte size overflows"},
        {2, {1ull << 63, 1}, GGUF_DTYPE_F32, 0, "dim 0"},
        {2, {32, 0}, GGUF_DTYPE_F32, 0, "dim 1"},
        {2, {32, 2}, 99, 0, "unknown dtype 99"},
        {2, {32, 2}, 4, 0, "unknown dtype 4"},
        {0, {32}, GGUF_DTYPE_F32, 0, "n_dims 0"},
        {5, {32, 1, 1, 1}, GGUF_DTYPE_F32, 0, "n_dims 5"},
        {2, {33, 2}, GGUF_DTYPE_Q8_0, 0, "not a multiple of the Q8_0 block"},
        {2, {128, 2}, GGUF_DTYPE_Q4_K, 0, "Q4_K block size 256"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        bb_hdr(&b, 3, 1, 0);
        uint64_t ne[5] = {bad[k].ne[0], bad[k].ne[1], bad[k].ne[2], bad[k].ne[3], 1};
        bb_tinfo(&b, "blk.0.attn_q.weight", bad[k].nd, ne, bad[k].dt, bad[k].off);
        bb_pad(&b, 32);
        memset(b.p + b.n, 0, 512); b.n += 512;
        EXPECT_BAD(b.p, b.n, bad[k].msg);
        EXPECT_BAD(b.p, b.n, "blk.0.attn_q.weight");
    }
    bb_hdr(&b, 3, 2, 0);
    bb_tinfo(&b, "same", 2, ne2, GGUF_DTYPE_F32, 0);
    bb_tinfo(&b, "same", 2, ne2, GGUF_DTYPE_F32, 256);
    bb_pad(&b, 32);
    memset(b.p + b.n, 0, 512); b.n += 512;
    EXPECT_BAD(b.p, b.n, "duplicate tensor name 'same'");

    /* empty and missing files through gguf_open */
    char path[64];
    tmp_path(path, sizeof path);
    int rc = gguf_open(path, &c, &e);
    T_CHECK(rc == SW_ERR_FORMAT && c == NULL && strstr(e.msg, "empty"), "empty: %d %s", rc, e.msg);
    remove(path);
    T_EQ_INT(gguf_open("/nonexistent/x.gguf", &c, &e), SW_ERR_IO);
}

/* Random byte flips over a real small file: only clean failures or successes. */
static void test_mutations(void) {
    bb b;
    bb_hdr(&b, 3, 2, 3);
    bb_str(&b, "general.architecture"); bb_u32(&b, GGUF_TYPE_STRING); bb_str(&b, "llama");
    bb_str(&b, "tok"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_STRING); bb_u64(&b, 3);
    bb_str(&b, "a"); bb_str(&b, "bc"); bb_str(&b, "def");
    bb_str(&b, "nest"); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u32(&b, GGUF_TYPE_ARRAY); bb_u64(&b, 1);
    bb_u32(&b, GGUF_TYPE_INT32); bb_u64(&b, 2); bb_u32(&b, 1); bb_u32(&b, 2);
    uint64_t ne[2] = {32, 2};
    bb_tinfo(&b, "x", 2, ne, GGUF_DTYPE_Q8_0, 0);
    bb_tinfo(&b, "y", 1, ne, GGUF_DTYPE_F16, 96);
    bb_pad(&b, 32);
    memset(b.p + b.n, 1, 160); b.n += 160;
    sw_err e;
    T_EQ_INT(parse_copy(b.p, b.n, &e), 0);
    uint64_t s = 88172645463325252ull;
    int weird = 0;
    unsigned char m[8192];
    for (int it = 0; it < 20000; it++) {
        memcpy(m, b.p, b.n);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            size_t pos = (size_t)(s % b.n);
            m[pos] = (it & 1) ? (unsigned char)(s >> 40) : (unsigned char)(m[pos] ^ (1u << (s >> 61)));
        }
        int rc = parse_copy(m, b.n, &e);
        if (rc != 0 && rc != SW_ERR_FORMAT && rc != SW_ERR_UNSUPPORTED) weird++;
        if (rc != 0 && !e.msg[0]) weird++;
    }
    T_EQ_INT(weird, 0);
}

int main(void) {
    test_shared();
    test_roundtrip();
    test_writer_alignment();
    test_broken();
    test_mutations();
    return t_done();
}
