/* gguf.c — the GGUF reader: parses a v2/v3 file image (an mmap from gguf_open, or caller
 * memory via gguf_parse) with a bounds-checked cursor. Every count, string length, dim
 * and offset is checked against the bytes that remain, with overflow-safe arithmetic,
 * before anything is allocated or read, so a hostile file fails with a one-line message
 * instead of a crash or a huge allocation.
 *
 * Layout of the parsed context: all strings (keys, string values, string-array elements,
 * tensor names) are copied into one NUL-terminated arena; string arrays keep an offset
 * table (n+1 entries, O(1) element access); numeric arrays point into the file image;
 * arrays of arrays become a tree of array nodes (depth limited). Keys and tensor names
 * are indexed by an open-addressing hash table (duplicates rejected). */
#include "gguf/gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_NEST 16 /* arrays of arrays nested deeper than this are refused */

/* ---- dtype table ---- */

typedef struct dtype_info {
    const char *name;
    int64_t blck; /* elements per block */
    int64_t bytes; /* bytes per block */
} dtype_info;

static const dtype_info *dtype_lookup(uint32_t dtype) {
    static const dtype_info tab[] = {
        [GGUF_DTYPE_F32] = {"F32", 1, 4},        [GGUF_DTYPE_F16] = {"F16", 1, 2},
        [GGUF_DTYPE_Q4_0] = {"Q4_0", 32, 18},    [GGUF_DTYPE_Q4_1] = {"Q4_1", 32, 20},
        [GGUF_DTYPE_Q5_0] = {"Q5_0", 32, 22},    [GGUF_DTYPE_Q5_1] = {"Q5_1", 32, 24},
        [GGUF_DTYPE_Q8_0] = {"Q8_0", 32, 34},    [GGUF_DTYPE_Q8_1] = {"Q8_1", 32, 36},
        [GGUF_DTYPE_Q2_K] = {"Q2_K", 256, 84},   [GGUF_DTYPE_Q3_K] = {"Q3_K", 256, 110},
        [GGUF_DTYPE_Q4_K] = {"Q4_K", 256, 144},  [GGUF_DTYPE_Q5_K] = {"Q5_K", 256, 176},
        [GGUF_DTYPE_Q6_K] = {"Q6_K", 256, 210},  [GGUF_DTYPE_Q8_K] = {"Q8_K", 256, 292},
        [GGUF_DTYPE_IQ4_NL] = {"IQ4_NL", 32, 18}, [GGUF_DTYPE_IQ4_XS] = {"IQ4_XS", 256, 136},
        [GGUF_DTYPE_I8] = {"I8", 1, 1},          [GGUF_DTYPE_I16] = {"I16", 1, 2},
        [GGUF_DTYPE_I32] = {"I32", 1, 4},        [GGUF_DTYPE_I64] = {"I64", 1, 8},
        [GGUF_DTYPE_F64] = {"F64", 1, 8},        [GGUF_DTYPE_BF16] = {"BF16", 1, 2},
    };
    if (dtype >= sizeof tab / sizeof tab[0] || !tab[dtype].name) return NULL;
    return &tab[dtype];
}

int64_t gguf_dtype_block_elems(uint32_t dtype) {
    const dtype_info *d = dtype_lookup(dtype);
    return d ? d->blck : 0;
}

int64_t gguf_dtype_block_bytes(uint32_t dtype) {
    const dtype_info *d = dtype_lookup(dtype);
    return d ? d->bytes : 0;
}

const char *gguf_dtype_name(uint32_t dtype) {
    const dtype_info *d = dtype_lookup(dtype);
    return d ? d->name : "?";
}

uint64_t gguf_row_bytes(uint32_t dtype, int64_t n) {
    const dtype_info *d = dtype_lookup(dtype);
    uint64_t out;
    if (!d || n < 0 || n % d->blck) return 0;
    if (!sw_mul_u64((uint64_t)(n / d->blck), (uint64_t)d->bytes, &out)) return 0;
    return out;
}

/* Size in bytes of one scalar of a metadata type; 0 for STRING/ARRAY/unknown. */
static uint64_t type_size(uint32_t t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *type_name(uint32_t t) {
    static const char *names[GGUF_TYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                                 "bool", "string", "array", "u64", "i64", "f64"};
    return t < GGUF_TYPE_COUNT ? names[t] : "unknown";
}

/* ---- context ---- */

/* An array value. Numeric: raw points at n little-endian elements in the file image.
 * Strings: str_off[n+1] arena offsets (element i spans [str_off[i], str_off[i+1]-1)).
 * Arrays: children are nodes [child, child+n) of ctx->nodes. */
struct gguf_arr {
    const gguf_ctx *ctx;
    gguf_type elem_type;
    uint64_t n;
    const uint8_t *raw;
    uint64_t *str_off; /* (n+1) owned, strings only */
    uint64_t child;
};

typedef struct gguf_kv {
    uint64_t key_off; /* arena offset of the key */
    gguf_type type;
    const uint8_t *raw; /* value bytes in the file image (after the type tag) */
    uint64_t raw_len;
    union {
        uint64_t u; /* unsigned ints and bool */
        int64_t i;  /* signed ints */
        double f;   /* floats */
        struct { uint64_t off, len; } s; /* string: arena offset, length without NUL */
        uint64_t node; /* array: index into nodes */
    } v;
} gguf_kv;

/* Open-addressing hash index from string -> item index (keys or tensor names). */
typedef struct str_index {
    uint64_t cap; /* power of two, >= 2 * count */
    int64_t *slot; /* (cap) item index or -1 */
} str_index;

struct gguf_ctx {
    const uint8_t *base; /* the file image (borrowed or mapped) */
    uint64_t size;
    void *map; /* non-NULL when gguf_open mapped the file */
    uint32_t version, alignment;
    char *arena; /* every string, NUL-terminated */
    uint64_t arena_len, arena_cap;
    int64_t n_kv, n_tensors;
    gguf_kv *kv; /* (n_kv) */
    gguf_arr *nodes; /* (n_nodes) every array value */
    uint64_t n_nodes, nodes_cap;
    gguf_tensor *tensors; /* (n_tensors) */
    uint64_t *tensor_name_off; /* (n_tensors) arena offsets of the names, resolved after parse */
    str_index kv_index, tensor_index;
};

/* Parsing cursor over [base, base+size). */
typedef struct cursor {
    gguf_ctx *ctx;
    uint64_t pos;
    sw_err *err;
} cursor;

static uint64_t cur_left(const cursor *c) { return c->ctx->size - c->pos; }

static int cur_read(cursor *c, void *dst, uint64_t n, const char *what) {
    if (n > cur_left(c))
        return sw_err_set(c->err, SW_ERR_FORMAT, "truncated file: %s at offset %llu needs %llu bytes, %llu left",
                          what, (unsigned long long)c->pos, (unsigned long long)n, (unsigned long long)cur_left(c));
    memcpy(dst, c->ctx->base + c->pos, n);
    c->pos += n;
    return SW_OK;
}

static int cur_u32(cursor *c, uint32_t *v, const char *what) { return cur_read(c, v, 4, what); }
static int cur_u64(cursor *c, uint64_t *v, const char *what) { return cur_read(c, v, 8, what); }

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

static int index_init(str_index *ix, uint64_t count) {
    uint64_t cap = 16;
    while (cap < 2 * count) cap *= 2;
    ix->slot = malloc(cap * sizeof *ix->slot);
    if (!ix->slot) return SW_ERR_NOMEM;
    memset(ix->slot, 0xff, cap * sizeof *ix->slot);
    ix->cap = cap;
    return SW_OK;
}

/* Finds name; name_of(ctx, item) gives each stored item's name. Returns the item or -1,
 * and in *slot_out the slot where name is or would go. */
static int64_t index_find(const gguf_ctx *ctx, const str_index *ix, const char *name,
                          const char *(*name_of)(const gguf_ctx *, int64_t), uint64_t *slot_out) {
    if (!ix->slot) return -1;
    uint64_t mask = ix->cap - 1, s = hash_str(name) & mask;
    for (;; s = (s + 1) & mask) {
        int64_t it = ix->slot[s];
        if (it < 0 || !strcmp(name_of(ctx, it), name)) {
            if (slot_out) *slot_out = s;
            return it;
        }
    }
}

static const char *kv_name_of(const gguf_ctx *ctx, int64_t i) { return ctx->arena + ctx->kv[i].key_off; }
static const char *tensor_name_of(const gguf_ctx *ctx, int64_t i) { return ctx->arena + ctx->tensor_name_off[i]; }

/* Copies a GGUF string (u64 length + bytes) into the arena; *off receives its offset. */
static int read_string(cursor *c, uint64_t *off, uint64_t *len_out, const char *what) {
    uint64_t len;
    int rc = cur_u64(c, &len, what);
    if (rc) return rc;
    if (len > cur_left(c))
        return sw_err_set(c->err, SW_ERR_FORMAT, "%s at offset %llu: string length %llu past end of file (%llu bytes left)",
                          what, (unsigned long long)(c->pos - 8), (unsigned long long)len,
                          (unsigned long long)cur_left(c));
    gguf_ctx *ctx = c->ctx;
    if (ctx->arena_len + len + 1 > ctx->arena_cap) {
        uint64_t cap = ctx->arena_cap ? ctx->arena_cap : 4096;
        while (cap < ctx->arena_len + len + 1) cap *= 2;
        char *a = realloc(ctx->arena, cap);
        if (!a) return sw_err_set(c->err, SW_ERR_NOMEM, "out of memory for strings (%llu bytes)", (unsigned long long)cap);
        ctx->arena = a;
        ctx->arena_cap = cap;
    }
    memcpy(ctx->arena + ctx->arena_len, ctx->base + c->pos, len);
    ctx->arena[ctx->arena_len + len] = 0;
    *off = ctx->arena_len;
    if (len_out) *len_out = len;
    ctx->arena_len += len + 1;
    c->pos += len;
    return SW_OK;
}

/* Reserves n consecutive array nodes (n already bounded by the file size). */
static int nodes_reserve(cursor *c, uint64_t n, uint64_t *first) {
    gguf_ctx *ctx = c->ctx;
    if (ctx->n_nodes + n > ctx->nodes_cap) {
        uint64_t cap = ctx->nodes_cap ? ctx->nodes_cap : 16;
        while (cap < ctx->n_nodes + n) cap *= 2;
        gguf_arr *nn = realloc(ctx->nodes, cap * sizeof *nn);
        if (!nn) return sw_err_set(c->err, SW_ERR_NOMEM, "out of memory for arrays");
        ctx->nodes = nn;
        ctx->nodes_cap = cap;
    }
    memset(ctx->nodes + ctx->n_nodes, 0, n * sizeof *ctx->nodes);
    *first = ctx->n_nodes;
    ctx->n_nodes += n;
    return SW_OK;
}

/* Parses an array body (elem type, count, elements) into node idx. */
static int read_array(cursor *c, uint64_t idx, int depth, const char *key) {
    uint32_t et;
    uint64_t n;
    int rc;
    if (depth > GGUF_MAX_NEST)
        return sw_err_set(c->err, SW_ERR_UNSUPPORTED, "key '%s': arrays nested deeper than %d levels", key, GGUF_MAX_NEST);
    if ((rc = cur_u32(c, &et, "array type")) || (rc = cur_u64(c, &n, "array length"))) return rc;
    if (et >= GGUF_TYPE_COUNT)
        return sw_err_set(c->err, SW_ERR_FORMAT, "key '%s': unknown array element type %u", key, et);
    /* Smallest encoding of one element: scalars their size, strings 8, arrays 12. */
    uint64_t min_elem = et == GGUF_TYPE_STRING ? 8 : et == GGUF_TYPE_ARRAY ? 12 : type_size(et), need;
    if (!sw_mul_u64(n, min_elem, &need) || need > cur_left(c))
        return sw_err_set(c->err, SW_ERR_FORMAT, "key '%s': array of %llu %s elements past end of file (%llu bytes left)",
                          key, (unsigned long long)n, type_name(et), (unsigned long long)cur_left(c));
    c->ctx->nodes[idx].elem_type = (gguf_type)et;
    c->ctx->nodes[idx].n = n;
    if (et == GGUF_TYPE_STRING) {
        uint64_t *off = malloc((n + 1) * sizeof *off);
        if (!off) return sw_err_set(c->err, SW_ERR_NOMEM, "key '%s': out of memory for %llu strings", key, (unsigned long long)n);
        c->ctx->nodes[idx].str_off = off;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = read_string(c, &off[i], NULL, "array string"))) return rc;
        off[n] = c->ctx->arena_len;
        /* Strings were appended back to back, so element i ends where i+1 starts. */
    } else if (et == GGUF_TYPE_ARRAY) {
        uint64_t first;
        if ((rc = nodes_reserve(c, n, &first))) return rc;
        c->ctx->nodes[idx].child = first;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = read_array(c, first + i, depth + 1, key))) return rc;
    } else {
        c->ctx->nodes[idx].raw = c->ctx->base + c->pos;
        c->pos += need;
    }
    return SW_OK;
}

static int read_kv(cursor *c, gguf_kv *kv) {
    int rc;
    uint32_t t;
    if ((rc = read_string(c, &kv->key_off, NULL, "key"))) return rc;
    char key[128]; /* for messages (the arena may move while the value is read) */
    snprintf(key, sizeof key, "%s", c->ctx->arena + kv->key_off);
    if ((rc = cur_u32(c, &t, "value type"))) return rc;
    if (t >= GGUF_TYPE_COUNT)
        return sw_err_set(c->err, SW_ERR_FORMAT, "key '%s': unknown value type %u", key, t);
    kv->type = (gguf_type)t;
    uint64_t start = c->pos;
    kv->raw = c->ctx->base + start;
    uint64_t sz = type_size(t);
    if (t == GGUF_TYPE_STRING) {
        if ((rc = read_string(c, &kv->v.s.off, &kv->v.s.len, key))) return rc;
    } else if (t == GGUF_TYPE_ARRAY) {
        if ((rc = nodes_reserve(c, 1, &kv->v.node))) return rc;
        if ((rc = read_array(c, kv->v.node, 1, key))) return rc;
    } else {
        uint8_t b[8] = {0};
        if (sz > cur_left(c))
            return sw_err_set(c->err, SW_ERR_FORMAT, "key '%s': %s value past end of file", key, type_name(t));
        if ((rc = cur_read(c, b, sz, "value"))) return rc;
        switch (t) {
        case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: kv->v.u = b[0]; break;
        case GGUF_TYPE_INT8: kv->v.i = (int8_t)b[0]; break;
        case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, b, 2); kv->v.u = x; break; }
        case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, b, 2); kv->v.i = x; break; }
        case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, b, 4); kv->v.u = x; break; }
        case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, b, 4); kv->v.i = x; break; }
        case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, b, 4); kv->v.f = x; break; }
        case GGUF_TYPE_UINT64: memcpy(&kv->v.u, b, 8); break;
        case GGUF_TYPE_INT64: memcpy(&kv->v.i, b, 8); break;
        case GGUF_TYPE_FLOAT64: memcpy(&kv->v.f, b, 8); break;
        default: break;
        }
    }
    kv->raw_len = c->pos - start;
    return SW_OK;
}

static bool is_int_type(gguf_type t) {
    return t == GGUF_TYPE_UINT8 || t == GGUF_TYPE_INT8 || t == GGUF_TYPE_UINT16 || t == GGUF_TYPE_INT16 ||
           t == GGUF_TYPE_UINT32 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_UINT64 || t == GGUF_TYPE_INT64;
}

static bool is_signed_type(gguf_type t) {
    return t == GGUF_TYPE_INT8 || t == GGUF_TYPE_INT16 || t == GGUF_TYPE_INT32 || t == GGUF_TYPE_INT64;
}

static int read_tensor_info(cursor *c, int64_t i) {
    gguf_ctx *ctx = c->ctx;
    gguf_tensor *t = &ctx->tensors[i];
    int rc;
    uint32_t nd, dt;
    if ((rc = read_string(c, &ctx->tensor_name_off[i], NULL, "tensor name"))) return rc;
    const char *name = ctx->arena + ctx->tensor_name_off[i];
    if ((rc = cur_u32(c, &nd, "tensor n_dims"))) return rc;
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return sw_err_set(c->err, SW_ERR_FORMAT, "tensor '%s': n_dims %u not in 1..%d", name, nd, GGUF_MAX_DIMS);
    t->n_dims = nd;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t ne;
        if ((rc = cur_u64(c, &ne, "tensor dim"))) return rc;
        if (ne < 1 || ne > (uint64_t)INT64_MAX)
            return sw_err_set(c->err, SW_ERR_FORMAT, "tensor '%s': dim %u is %llu (must be 1..2^63-1)", name, d,
                              (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
    }
    if ((rc = cur_u32(c, &dt, "tensor type")) || (rc = cur_u64(c, &t->offset, "tensor offset"))) return rc;
    const dtype_info *di = dtype_lookup(dt);
    if (!di) return sw_err_set(c->err, SW_ERR_UNSUPPORTED, "tensor '%s': unknown dtype %u", name, dt);
    t->dtype = dt;
    if (t->ne[0] % di->blck)
        return sw_err_set(c->err, SW_ERR_FORMAT, "tensor '%s': row of %lld elements is not a multiple of the %s block size %lld",
                          name, (long long)t->ne[0], di->name, (long long)di->blck);
    uint64_t nel = 1;
    for (uint32_t d = 0; d < nd; d++)
        if (!sw_mul_u64(nel, (uint64_t)t->ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return sw_err_set(c->err, SW_ERR_FORMAT, "tensor '%s': element count overflows", name);
    if (!sw_mul_u64(nel / (uint64_t)di->blck, (uint64_t)di->bytes, &t->nbytes))
        return sw_err_set(c->err, SW_ERR_FORMAT, "tensor '%s': byte size overflows", name);
    uint64_t slot = 0;
    if (index_find(ctx, &ctx->tensor_index, name, tensor_name_of, &slot) >= 0)
        return sw_err_set(c->err, SW_ERR_FORMAT, "duplicate tensor name '%s'", name);
    ctx->tensor_index.slot[slot] = i;
    return SW_OK;
}

static int parse_body(gguf_ctx *ctx, sw_err *err) {
    cursor c = {ctx, 0, err};
    char magic[4];
    uint32_t ver;
    uint64_t n_tensors, n_kv;
    int rc;
    if (ctx->size < 4 || memcmp(ctx->base, GGUF_MAGIC, 4))
        return sw_err_set(err, SW_ERR_FORMAT, "not a GGUF file (bad magic)");
    if ((rc = cur_read(&c, magic, 4, "magic")) || (rc = cur_u32(&c, &ver, "version"))) return rc;
    if (ver == 1) return sw_err_set(err, SW_ERR_UNSUPPORTED, "GGUF v1 is not supported (only v2 and v3)");
    if (ver != 2 && ver != 3) {
        if ((ver & 0xffff) == 0)
            return sw_err_set(err, SW_ERR_UNSUPPORTED, "GGUF version 0x%08x looks byte-swapped (big-endian files are not supported)", ver);
        return sw_err_set(err, SW_ERR_UNSUPPORTED, "unknown GGUF version %u (only v2 and v3)", ver);
    }
    ctx->version = ver;
    if ((rc = cur_u64(&c, &n_tensors, "tensor count")) || (rc = cur_u64(&c, &n_kv, "metadata count"))) return rc;
    /* A key-value pair takes at least 8+4+1 bytes, a tensor info at least 8+4+8+4+8. */
    if (n_kv > cur_left(&c) / 13)
        return sw_err_set(err, SW_ERR_FORMAT, "metadata count %llu cannot fit in the %llu bytes left",
                          (unsigned long long)n_kv, (unsigned long long)cur_left(&c));
    if (n_tensors > cur_left(&c) / 32)
        return sw_err_set(err, SW_ERR_FORMAT, "tensor count %llu cannot fit in the %llu bytes left",
                          (unsigned long long)n_tensors, (unsigned long long)cur_left(&c));
    ctx->kv = calloc(n_kv ? n_kv : 1, sizeof *ctx->kv);
    ctx->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *ctx->tensors);
    ctx->tensor_name_off = calloc(n_tensors ? n_tensors : 1, sizeof *ctx->tensor_name_off);
    if (!ctx->kv || !ctx->tensors || !ctx->tensor_name_off || index_init(&ctx->kv_index, n_kv) ||
        index_init(&ctx->tensor_index, n_tensors))
        return sw_err_set(err, SW_ERR_NOMEM, "out of memory for %llu keys / %llu tensors",
                          (unsigned long long)n_kv, (unsigned long long)n_tensors);

    for (uint64_t i = 0; i < n_kv; i++) {
        if ((rc = read_kv(&c, &ctx->kv[i]))) return rc;
        ctx->n_kv = (int64_t)i + 1;
        uint64_t slot = 0;
        const char *key = ctx->arena + ctx->kv[i].key_off;
        if (index_find(ctx, &ctx->kv_index, key, kv_name_of, &slot) >= 0)
            return sw_err_set(err, SW_ERR_FORMAT, "duplicate metadata key '%s'", key);
        ctx->kv_index.slot[slot] = (int64_t)i;
    }

    ctx->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = gguf_find_key(ctx, "general.alignment");
    if (ai >= 0) {
        const gguf_kv *kv = &ctx->kv[ai];
        if (!is_int_type(kv->type))
            return sw_err_set(err, SW_ERR_FORMAT, "general.alignment has type %s, expected an integer", type_name(kv->type));
        if ((is_signed_type(kv->type) && kv->v.i <= 0) || kv->v.u == 0 || kv->v.u > (1u << 30) ||
            (kv->v.u & (kv->v.u - 1)))
            return sw_err_set(err, SW_ERR_FORMAT, "general.alignment %lld is not a non-zero power of two (max 2^30)",
                              (long long)kv->v.i);
        ctx->alignment = (uint32_t)kv->v.u;
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        if ((rc = read_tensor_info(&c, (int64_t)i))) return rc;
        ctx->n_tensors = (int64_t)i + 1;
    }

    /* The data section starts at the next multiple of the alignment. */
    uint64_t data_start = c.pos, al = ctx->alignment;
    if (data_start % al) data_start += al - data_start % al; /* c.pos <= size < 2^64 - 2^30 */
    for (int64_t i = 0; i < ctx->n_tensors; i++) {
        gguf_tensor *t = &ctx->tensors[i];
        const char *name = ctx->arena + ctx->tensor_name_off[i];
        uint64_t begin, end;
        if (t->offset % al)
            return sw_err_set(err, SW_ERR_FORMAT, "tensor '%s': data offset %llu is not a multiple of the alignment %u",
                              name, (unsigned long long)t->offset, ctx->alignment);
        if (!sw_add_u64(data_start, t->offset, &begin) || !sw_add_u64(begin, t->nbytes, &end) || end > ctx->size)
            return sw_err_set(err, SW_ERR_FORMAT, "tensor '%s': data [%llu, %llu) past end of file (size %llu)", name,
                              (unsigned long long)(data_start + t->offset),
                              (unsigned long long)(data_start + t->offset + t->nbytes), (unsigned long long)ctx->size);
        t->data = ctx->base + begin;
    }
    /* The arena is final: resolve name pointers and node back-pointers. */
    for (int64_t i = 0; i < ctx->n_tensors; i++) ctx->tensors[i].name = ctx->arena + ctx->tensor_name_off[i];
    for (uint64_t i = 0; i < ctx->n_nodes; i++) ctx->nodes[i].ctx = ctx;
    return SW_OK;
}

int gguf_parse(const void *data, size_t size, gguf_ctx **out, sw_err *err) {
    *out = NULL;
    if (!data && size) return sw_err_set(err, SW_ERR_ARG, "gguf_parse: NULL data");
    gguf_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    ctx->base = data;
    ctx->size = size;
    int rc = parse_body(ctx, err);
    if (rc) {
        gguf_close(ctx);
        return rc;
    }
    *out = ctx;
    return SW_OK;
}

int gguf_open(const char *path, gguf_ctx **out, sw_err *err) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sw_err_set(err, SW_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return sw_err_set(err, SW_ERR_IO, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sw_err_set(err, SW_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return sw_err_set(err, SW_ERR_FORMAT, "%s: empty file", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) return sw_err_set(err, SW_ERR_IO, "%s: mmap: %s", path, strerror(e));
    gguf_ctx *ctx;
    int rc = gguf_parse(map, (size_t)st.st_size, &ctx, err);
    if (rc) {
        munmap(map, (size_t)st.st_size);
        if (err) { /* prefix the path to the parser's message */
            char msg[sizeof err->msg];
            memcpy(msg, err->msg, sizeof msg);
            sw_err_set(err, rc, "%.200s: %.300s", path, msg);
        }
        return rc;
    }
    ctx->map = map;
    *out = ctx;
    return SW_OK;
}

void gguf_close(gguf_ctx *ctx) {
    if (!ctx) return;
    for (uint64_t i = 0; i < ctx->n_nodes; i++) free(ctx->nodes[i].str_off);
    free(ctx->nodes);
    free(ctx->kv);
    free(ctx->tensors);
    free(ctx->tensor_name_off);
    free(ctx->kv_index.slot);
    free(ctx->tensor_index.slot);
    free(ctx->arena);
    if (ctx->map) munmap(ctx->map, ctx->size);
    free(ctx);
}

uint32_t gguf_version(const gguf_ctx *ctx) { return ctx->version; }
uint32_t gguf_alignment(const gguf_ctx *ctx) { return ctx->alignment; }
uint64_t gguf_file_size(const gguf_ctx *ctx) { return ctx->size; }

/* ---- metadata ---- */

int64_t gguf_n_kv(const gguf_ctx *ctx) { return ctx->n_kv; }

int64_t gguf_find_key(const gguf_ctx *ctx, const char *key) {
    return index_find(ctx, &ctx->kv_index, key, kv_name_of, NULL);
}

const char *gguf_key_name(const gguf_ctx *ctx, int64_t i) {
    return i >= 0 && i < ctx->n_kv ? ctx->arena + ctx->kv[i].key_off : NULL;
}

gguf_type gguf_kv_type(const gguf_ctx *ctx, int64_t i) {
    return i >= 0 && i < ctx->n_kv ? ctx->kv[i].type : GGUF_TYPE_COUNT;
}

int gguf_kv_raw(const gguf_ctx *ctx, int64_t i, const void **data, uint64_t *len) {
    if (i < 0 || i >= ctx->n_kv) return SW_ERR_NOTFOUND;
    *data = ctx->kv[i].raw;
    *len = ctx->kv[i].raw_len;
    return SW_OK;
}

static const gguf_kv *kv_get(const gguf_ctx *ctx, const char *key) {
    int64_t i = gguf_find_key(ctx, key);
    return i < 0 ? NULL : &ctx->kv[i];
}

/* Integer value of kv within [lo, hi] (as signed) or [0, uhi] (unsigned). */
static int get_int(const gguf_ctx *ctx, const char *key, int64_t lo, uint64_t hi, uint64_t *out_u, int64_t *out_i) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (!is_int_type(kv->type)) return SW_ERR_TYPE;
    if (is_signed_type(kv->type)) {
        if (kv->v.i < lo || (kv->v.i > 0 && (uint64_t)kv->v.i > hi)) return SW_ERR_RANGE;
        if (out_u) *out_u = (uint64_t)kv->v.i;
        if (out_i) *out_i = kv->v.i;
    } else {
        if (kv->v.u > hi) return SW_ERR_RANGE;
        if (out_u) *out_u = kv->v.u;
        if (out_i) *out_i = (int64_t)kv->v.u;
    }
    return SW_OK;
}

int gguf_get_u32(const gguf_ctx *ctx, const char *key, uint32_t *out) {
    uint64_t u;
    int rc = get_int(ctx, key, 0, UINT32_MAX, &u, NULL);
    if (!rc) *out = (uint32_t)u;
    return rc;
}

int gguf_get_i32(const gguf_ctx *ctx, const char *key, int32_t *out) {
    int64_t i;
    int rc = get_int(ctx, key, INT32_MIN, INT32_MAX, NULL, &i);
    if (!rc) *out = (int32_t)i;
    return rc;
}

int gguf_get_u64(const gguf_ctx *ctx, const char *key, uint64_t *out) {
    return get_int(ctx, key, 0, UINT64_MAX, out, NULL);
}

int gguf_get_f32(const gguf_ctx *ctx, const char *key, float *out) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64) return SW_ERR_TYPE;
    *out = (float)kv->v.f;
    return SW_OK;
}

int gguf_get_bool(const gguf_ctx *ctx, const char *key, bool *out) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (kv->type != GGUF_TYPE_BOOL) return SW_ERR_TYPE;
    *out = kv->v.u != 0;
    return SW_OK;
}

int gguf_get_str(const gguf_ctx *ctx, const char *key, const char **out, size_t *len) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (kv->type != GGUF_TYPE_STRING) return SW_ERR_TYPE;
    *out = ctx->arena + kv->v.s.off;
    if (len) *len = kv->v.s.len;
    return SW_OK;
}

/* ---- arrays ---- */

const gguf_arr *gguf_get_arr(const gguf_ctx *ctx, const char *key) {
    const gguf_kv *kv = kv_get(ctx, key);
    return kv && kv->type == GGUF_TYPE_ARRAY ? &ctx->nodes[kv->v.node] : NULL;
}

gguf_type gguf_arr_elem_type(const gguf_arr *a) { return a->elem_type; }
uint64_t gguf_arr_len(const gguf_arr *a) { return a->n; }

const gguf_arr *gguf_arr_sub(const gguf_arr *a, uint64_t i) {
    if (a->elem_type != GGUF_TYPE_ARRAY || i >= a->n) return NULL;
    return &a->ctx->nodes[a->child + i];
}

const char *gguf_arr_str(const gguf_arr *a, uint64_t i, size_t *len) {
    if (a->elem_type != GGUF_TYPE_STRING || i >= a->n) return NULL;
    if (len) *len = a->str_off[i + 1] - a->str_off[i] - 1;
    return a->ctx->arena + a->str_off[i];
}

const void *gguf_arr_data(const gguf_arr *a) { return a->raw; }

/* Element i of a numeric array as double / as int64 (bool counts as integer). */
static double arr_elem_f(const gguf_arr *a, uint64_t i) {
    const uint8_t *p = a->raw + i * type_size(a->elem_type);
    switch (a->elem_type) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_BOOL: return p[0];
    case GGUF_TYPE_INT8: return (int8_t)p[0];
    case GGUF_TYPE_UINT16: { uint16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_INT16: { int16_t x; memcpy(&x, p, 2); return x; }
    case GGUF_TYPE_UINT32: { uint32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_INT32: { int32_t x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_FLOAT32: { float x; memcpy(&x, p, 4); return x; }
    case GGUF_TYPE_UINT64: { uint64_t x; memcpy(&x, p, 8); return (double)x; }
    case GGUF_TYPE_INT64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case GGUF_TYPE_FLOAT64: { double x; memcpy(&x, p, 8); return x; }
    default: return 0;
    }
}

static bool arr_numeric(const gguf_arr *a) { return type_size(a->elem_type) != 0; }

int gguf_arr_f32(const gguf_arr *a, uint64_t first, uint64_t n, float *out) {
    if (!arr_numeric(a)) return SW_ERR_TYPE;
    if (first > a->n || n > a->n - first) return SW_ERR_RANGE;
    if (a->elem_type == GGUF_TYPE_FLOAT32) {
        memcpy(out, a->raw + first * 4, n * 4);
        return SW_OK;
    }
    for (uint64_t i = 0; i < n; i++) out[i] = (float)arr_elem_f(a, first + i);
    return SW_OK;
}

int gguf_arr_i32(const gguf_arr *a, uint64_t first, uint64_t n, int32_t *out) {
    gguf_type t = a->elem_type;
    if (!is_int_type(t) && t != GGUF_TYPE_BOOL) return SW_ERR_TYPE;
    if (first > a->n || n > a->n - first) return SW_ERR_RANGE;
    if (t == GGUF_TYPE_INT32) {
        memcpy(out, a->raw + first * 4, n * 4);
        return SW_OK;
    }
    uint64_t sz = type_size(t);
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *p = a->raw + (first + i) * sz;
        int64_t v;
        if (t == GGUF_TYPE_UINT64) {
            uint64_t x;
            memcpy(&x, p, 8);
            if (x > INT32_MAX) return SW_ERR_RANGE;
            v = (int64_t)x;
        } else if (t == GGUF_TYPE_INT64) {
            memcpy(&v, p, 8);
        } else {
            v = (int64_t)arr_elem_f(a, first + i); /* exact for types up to 32 bits */
        }
        if (v < INT32_MIN || v > INT32_MAX) return SW_ERR_RANGE;
        out[i] = (int32_t)v;
    }
    return SW_OK;
}

int gguf_get_arr_info(const gguf_ctx *ctx, const char *key, gguf_type *elem_type, uint64_t *n) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (kv->type != GGUF_TYPE_ARRAY) return SW_ERR_TYPE;
    const gguf_arr *a = &ctx->nodes[kv->v.node];
    if (elem_type) *elem_type = a->elem_type;
    if (n) *n = a->n;
    return SW_OK;
}

const char *gguf_get_arr_str(const gguf_ctx *ctx, const char *key, uint64_t i, size_t *len) {
    const gguf_arr *a = gguf_get_arr(ctx, key);
    return a ? gguf_arr_str(a, i, len) : NULL;
}

int gguf_get_arr_f32(const gguf_ctx *ctx, const char *key, uint64_t first, uint64_t n, float *out) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (kv->type != GGUF_TYPE_ARRAY) return SW_ERR_TYPE;
    return gguf_arr_f32(&ctx->nodes[kv->v.node], first, n, out);
}

int gguf_get_arr_i32(const gguf_ctx *ctx, const char *key, uint64_t first, uint64_t n, int32_t *out) {
    const gguf_kv *kv = kv_get(ctx, key);
    if (!kv) return SW_ERR_NOTFOUND;
    if (kv->type != GGUF_TYPE_ARRAY) return SW_ERR_TYPE;
    return gguf_arr_i32(&ctx->nodes[kv->v.node], first, n, out);
}

/* ---- tensors ---- */

int64_t gguf_n_tensors(const gguf_ctx *ctx) { return ctx->n_tensors; }

int64_t gguf_find_tensor(const gguf_ctx *ctx, const char *name) {
    return index_find(ctx, &ctx->tensor_index, name, tensor_name_of, NULL);
}

const gguf_tensor *gguf_tensor_at(const gguf_ctx *ctx, int64_t i) {
    return i >= 0 && i < ctx->n_tensors ? &ctx->tensors[i] : NULL;
}
