/* gguf.h — GGUF files (v2, v3): a reader over an mmap (or caller's memory) in which every
 * count, length, dim and offset is checked against the file size before use, and a
 * writer (used by gen-model, quantize and tests). Prefix `gguf_`.
 *
 * Reader: metadata strings are copied once into NUL-terminated storage owned by the
 * context; numeric arrays and tensor data are borrowed from the mapping (may be
 * unaligned for arrays: read them with gguf_get_arr_* helpers). Tensor data pointers are
 * aligned to general.alignment relative to the file start. */
#ifndef SW_GGUF_H
#define SW_GGUF_H
#include "base/base.h"

/* Metadata value types, numbered as in the GGUF spec. */
typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

/* Tensor element types, numbered as ggml numbers them (only these are accepted). */
typedef enum gguf_dtype {
    GGUF_DTYPE_F32 = 0, GGUF_DTYPE_F16 = 1, GGUF_DTYPE_Q4_0 = 2, GGUF_DTYPE_Q4_1 = 3,
    GGUF_DTYPE_Q5_0 = 6, GGUF_DTYPE_Q5_1 = 7, GGUF_DTYPE_Q8_0 = 8, GGUF_DTYPE_Q8_1 = 9,
    GGUF_DTYPE_Q2_K = 10, GGUF_DTYPE_Q3_K = 11, GGUF_DTYPE_Q4_K = 12, GGUF_DTYPE_Q5_K = 13,
    GGUF_DTYPE_Q6_K = 14, GGUF_DTYPE_Q8_K = 15, GGUF_DTYPE_IQ4_NL = 20, GGUF_DTYPE_IQ4_XS = 23,
    GGUF_DTYPE_I8 = 24, GGUF_DTYPE_I16 = 25,
    GGUF_DTYPE_I32 = 26, GGUF_DTYPE_I64 = 27, GGUF_DTYPE_F64 = 28, GGUF_DTYPE_BF16 = 30,
} gguf_dtype;

/* Elements per block and bytes per block of a dtype; 0 for an unknown dtype. */
int64_t gguf_dtype_block_elems(uint32_t dtype);
int64_t gguf_dtype_block_bytes(uint32_t dtype);
const char *gguf_dtype_name(uint32_t dtype); /* "Q8_0", ...; "?" when unknown */
/* Bytes of a row of n elements (n must be a multiple of the block size); 0 if invalid. */
uint64_t gguf_row_bytes(uint32_t dtype, int64_t n);

#define GGUF_MAX_DIMS 4

typedef struct gguf_tensor {
    const char *name;        /* NUL-terminated, owned by the context */
    uint32_t dtype;          /* gguf_dtype */
    uint32_t n_dims;         /* 1..4 */
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] = elements per row (fastest), unused dims = 1 */
    uint64_t offset;         /* from the start of the data section */
    uint64_t nbytes;
    const void *data;        /* borrowed: points into the mapping */
} gguf_tensor;

typedef struct gguf_ctx gguf_ctx;

/* Opens and mmaps path (read-only) and parses it. On error returns a negative status, sets
 * *out = NULL and puts a one-line message naming the problem in err. */
int gguf_open(const char *path, gguf_ctx **out, sw_err *err);
/* Parses a file image in caller memory (borrowed; must outlive the context). */
int gguf_parse(const void *data, size_t size, gguf_ctx **out, sw_err *err);
void gguf_close(gguf_ctx *ctx);

uint32_t gguf_version(const gguf_ctx *ctx);
uint32_t gguf_alignment(const gguf_ctx *ctx);

/* Metadata. Keys are looked up by exact name; index from 0 to gguf_n_kv()-1. */
int64_t gguf_n_kv(const gguf_ctx *ctx);
int64_t gguf_find_key(const gguf_ctx *ctx, const char *key); /* -1 if absent */
const char *gguf_key_name(const gguf_ctx *ctx, int64_t i);
gguf_type gguf_kv_type(const gguf_ctx *ctx, int64_t i);

/* Typed getters: SW_OK, SW_ERR_NOTFOUND (no such key) or SW_ERR_TYPE. Integer getters
 * accept any integer-typed value that fits the output type (else SW_ERR_RANGE);
 * gguf_get_f32 accepts FLOAT32/FLOAT64; gguf_get_bool accepts BOOL. */
int gguf_get_u32(const gguf_ctx *ctx, const char *key, uint32_t *out);
int gguf_get_i32(const gguf_ctx *ctx, const char *key, int32_t *out);
int gguf_get_u64(const gguf_ctx *ctx, const char *key, uint64_t *out);
int gguf_get_f32(const gguf_ctx *ctx, const char *key, float *out);
int gguf_get_bool(const gguf_ctx *ctx, const char *key, bool *out);
/* String value: NUL-terminated, owned by ctx; len excludes the NUL (strings may contain NUL). */
int gguf_get_str(const gguf_ctx *ctx, const char *key, const char **out, size_t *len);

/* Arrays: element type and count. Nested arrays have elem type GGUF_TYPE_ARRAY. */
int gguf_get_arr_info(const gguf_ctx *ctx, const char *key, gguf_type *elem_type, uint64_t *n);
/* i-th string of a string array (NULL if out of range / not strings). */
const char *gguf_get_arr_str(const gguf_ctx *ctx, const char *key, uint64_t i, size_t *len);
/* Copies n numeric elements [first, first+n) converted to float / int32 into out;
 * SW_ERR_TYPE if the array is not numeric (for int32: not integer/bool — float arrays are
 * refused rather than truncated), SW_ERR_RANGE if out of bounds or a value does not fit. */
int gguf_get_arr_f32(const gguf_ctx *ctx, const char *key, uint64_t first, uint64_t n, float *out);
int gguf_get_arr_i32(const gguf_ctx *ctx, const char *key, uint64_t first, uint64_t n, int32_t *out);

/* Array handles, for arrays of arrays (and generic access). A handle is owned by ctx. */
typedef struct gguf_arr gguf_arr;
const gguf_arr *gguf_get_arr(const gguf_ctx *ctx, const char *key); /* NULL: absent / not an array */
gguf_type gguf_arr_elem_type(const gguf_arr *a);
uint64_t gguf_arr_len(const gguf_arr *a);
const gguf_arr *gguf_arr_sub(const gguf_arr *a, uint64_t i); /* i-th sub-array; NULL if not an array of arrays */
const char *gguf_arr_str(const gguf_arr *a, uint64_t i, size_t *len); /* NULL if not strings / out of range */
/* Numeric elements: raw little-endian values in the file (may be unaligned); NULL otherwise. */
const void *gguf_arr_data(const gguf_arr *a);
int gguf_arr_f32(const gguf_arr *a, uint64_t first, uint64_t n, float *out); /* as gguf_get_arr_f32 */
int gguf_arr_i32(const gguf_arr *a, uint64_t first, uint64_t n, int32_t *out); /* integers/bool only */
/* The encoded value of key i as it sits in the file (after its type tag); v2 and v3 encode
 * values identically, so these bytes can be copied into another file. */
int gguf_kv_raw(const gguf_ctx *ctx, int64_t i, const void **data, uint64_t *len);

/* Tensors. */
int64_t gguf_n_tensors(const gguf_ctx *ctx);
int64_t gguf_find_tensor(const gguf_ctx *ctx, const char *name); /* -1 if absent */
const gguf_tensor *gguf_tensor_at(const gguf_ctx *ctx, int64_t i);
/* Total bytes of the file image. */
uint64_t gguf_file_size(const gguf_ctx *ctx);

/* Writer: collects metadata and tensors, then writes a v3 file. Data passed to
 * gguf_writer_add_tensor is copied. Keys keep insertion order; setting an existing key
 * replaces its value. */
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_create(void);
void gguf_writer_destroy(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Arrays: strings (n NUL-terminated), or numeric with elem_type UINT8..FLOAT64/BOOL. */
int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type, const void *v, uint64_t n);
/* Nested arrays: gguf_writer_set_arr with elem_type GGUF_TYPE_ARRAY takes v as n
 * gguf_writer_arr descriptors (each itself numeric, strings or arrays), and with
 * GGUF_TYPE_STRING takes v as const char *const *. */
typedef struct gguf_writer_arr {
    gguf_type elem_type;
    const void *v;
    uint64_t n;
} gguf_writer_arr;
/* Sets a key to an already-encoded value of type t (as gguf_kv_raw gives it). */
int gguf_writer_set_raw(gguf_writer *w, const char *key, gguf_type t, const void *data, uint64_t len);
/* Copies every metadata key of src (e.g. the tokenizer of a vocab file) except keys for
 * which skip(key) returns true (skip may be NULL). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_ctx *src, bool (*skip)(const char *key));
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t dtype, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes);
/* Streaming tensor: its data is produced at write time, rows [row0, row0+n_rows) of
 * gguf_row_bytes(dtype, ne[0]) bytes each into dst (rows = ne[1]*ne[2]*ne[3]); fill returns
 * 0 or a negative status (and may set err). user must outlive gguf_writer_write. */
typedef int (*gguf_fill_fn)(void *user, int64_t row0, int64_t n_rows, void *dst, sw_err *err);
int gguf_writer_add_tensor_fn(gguf_writer *w, const char *name, uint32_t dtype, uint32_t n_dims,
                              const int64_t *ne, gguf_fill_fn fill, void *user);
/* Writes path (via a unique path.tmp-XXXXXX + rename, so readers never see a half-written
 * file and concurrent writers do not collide). */
int gguf_writer_write(gguf_writer *w, const char *path, sw_err *err);

#endif
