/* gguf_read.c — libFuzzer target for the GGUF reader: parses the input as a file image
 * and, when it parses, walks everything a caller can reach (every key through the typed
 * getters, every array element including nested arrays, every tensor's first and last
 * data byte), so a length the parser failed to check shows up as an ASan report. */
#include "gguf/gguf.h"
#include <string.h>

static unsigned walk_arr(const gguf_arr *a, int depth) {
    unsigned acc = 0;
    uint64_t n = gguf_arr_len(a);
    gguf_type et = gguf_arr_elem_type(a);
    for (uint64_t i = 0; i < n && i < 4096; i++) {
        if (et == GGUF_TYPE_STRING) {
            size_t len;
            const char *s = gguf_arr_str(a, i, &len);
            if (s && len) acc += (unsigned char)s[0] + (unsigned char)s[len - 1] + (unsigned char)s[len];
        } else if (et == GGUF_TYPE_ARRAY) {
            if (depth < 32) acc += walk_arr(gguf_arr_sub(a, i), depth + 1);
        } else {
            float f;
            int32_t v;
            if (gguf_arr_f32(a, i, 1, &f) == 0) acc += (unsigned)(f != f);
            if (gguf_arr_i32(a, i, 1, &v) == 0) acc += (unsigned)v;
        }
    }
    if (n && et != GGUF_TYPE_STRING && et != GGUF_TYPE_ARRAY) {
        float f;
        if (gguf_arr_f32(a, n - 1, 1, &f) == 0) acc += (unsigned)(f > 0);
    }
    return acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    gguf_ctx *ctx;
    sw_err err;
    if (gguf_parse(data, size, &ctx, &err)) return 0;
    volatile unsigned acc = gguf_version(ctx) + gguf_alignment(ctx);
    for (int64_t i = 0; i < gguf_n_kv(ctx); i++) {
        const char *key = gguf_key_name(ctx, i);
        uint32_t u; int32_t s; uint64_t u64; float f; bool b; const char *str; size_t len;
        if (gguf_find_key(ctx, key) != i) __builtin_trap(); /* keys are unique */
        if (!gguf_get_u32(ctx, key, &u)) acc += u;
        if (!gguf_get_i32(ctx, key, &s)) acc += (unsigned)s;
        if (!gguf_get_u64(ctx, key, &u64)) acc += (unsigned)u64;
        if (!gguf_get_f32(ctx, key, &f)) acc += (unsigned)(f > 0);
        if (!gguf_get_bool(ctx, key, &b)) acc += b;
        if (!gguf_get_str(ctx, key, &str, &len)) acc += (unsigned char)str[len];
        const gguf_arr *a = gguf_get_arr(ctx, key);
        if (a) acc += walk_arr(a, 0);
        const void *raw;
        uint64_t rl;
        if (!gguf_kv_raw(ctx, i, &raw, &rl) && rl) acc += ((const uint8_t *)raw)[rl - 1];
    }
    for (int64_t i = 0; i < gguf_n_tensors(ctx); i++) {
        const gguf_tensor *t = gguf_tensor_at(ctx, i);
        if (gguf_find_tensor(ctx, t->name) != i) __builtin_trap();
        if (t->nbytes != gguf_row_bytes(t->dtype, t->ne[0]) * (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3])) __builtin_trap();
        if (t->nbytes) acc += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
    }
    (void)acc;
    gguf_close(ctx);
    return 0;
}
