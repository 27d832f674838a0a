/* gguf_write.c — the GGUF writer: collects metadata (kept encoded, in insertion order;
 * setting an existing key replaces its value in place) and tensors (copied data, or a
 * fill callback that produces rows at write time so big models stream to disk), then
 * writes a v3 file: header, key-values, tensor infos, padding to the alignment (32, or
 * general.alignment when set), and each tensor's data at an aligned offset. */
#include "gguf/gguf.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct wbuf {
    uint8_t *p;
    uint64_t len, cap;
} wbuf;

typedef struct wkv {
    char *key;
    gguf_type type;
    wbuf val; /* encoded value */
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t dtype, n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes;
    void *data; /* (nbytes) owned copy, or NULL when fill is set */
    gguf_fill_fn fill;
    void *user; /* borrowed, passed to fill */
} wtensor;

struct gguf_writer {
    wkv *kv;
    uint64_t n_kv, cap_kv;
    wtensor *t;
    uint64_t n_t, cap_t;
};

static int buf_put(wbuf *b, const void *src, uint64_t n) {
    if (b->len + n > b->cap) {
        uint64_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) return SW_ERR_NOMEM;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return SW_OK;
}

static int buf_u32(wbuf *b, uint32_t v) { return buf_put(b, &v, 4); }
static int buf_u64(wbuf *b, uint64_t v) { return buf_put(b, &v, 8); }
static int buf_str(wbuf *b, const char *s) {
    uint64_t n = strlen(s);
    int rc = buf_u64(b, n);
    return rc ? rc : buf_put(b, s, n);
}

static uint64_t scalar_size(gguf_type t) {
    switch (t) {
    case GGUF_TYPE_UINT8: case GGUF_TYPE_INT8: case GGUF_TYPE_BOOL: return 1;
    case GGUF_TYPE_UINT16: case GGUF_TYPE_INT16: return 2;
    case GGUF_TYPE_UINT32: case GGUF_TYPE_INT32: case GGUF_TYPE_FLOAT32: return 4;
    case GGUF_TYPE_UINT64: case GGUF_TYPE_INT64: case GGUF_TYPE_FLOAT64: return 8;
    default: return 0;
    }
}

gguf_writer *gguf_writer_create(void) { return calloc(1, sizeof(gguf_writer)); }

void gguf_writer_destroy(gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (uint64_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* Stores (key, t, encoded value in *val, whose buffer the writer takes over). */
static int set_kv(gguf_writer *w, const char *key, gguf_type t, wbuf *val) {
    if (!key) {
        free(val->p);
        return SW_ERR_ARG;
    }
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val.p);
            w->kv[i].type = t;
            w->kv[i].val = *val;
            return SW_OK;
        }
    if (w->n_kv == w->cap_kv) {
        uint64_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) { free(val->p); return SW_ERR_NOMEM; }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) { free(val->p); return SW_ERR_NOMEM; }
    w->kv[w->n_kv++] = (wkv){k, t, *val};
    return SW_OK;
}

static int set_scalar(gguf_writer *w, const char *key, gguf_type t, const void *v) {
    wbuf b = {0};
    int rc = buf_put(&b, v, scalar_size(t));
    if (rc) return rc;
    return set_kv(w, key, t, &b);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_TYPE_UINT32, &v); }
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, GGUF_TYPE_INT32, &v); }
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_TYPE_UINT64, &v); }
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { return set_scalar(w, key, GGUF_TYPE_FLOAT32, &v); }
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v) return SW_ERR_ARG;
    wbuf b = {0};
    int rc = buf_str(&b, v);
    if (rc) { free(b.p); return rc; }
    return set_kv(w, key, GGUF_TYPE_STRING, &b);
}

/* Encodes an array body (elem type, count, elements) into b, recursively. */
static int encode_arr(wbuf *b, gguf_type et, const void *v, uint64_t n, int depth) {
    int rc;
    if (depth > 16 || (n && !v)) return SW_ERR_ARG;
    if ((rc = buf_u32(b, (uint32_t)et)) || (rc = buf_u64(b, n))) return rc;
    if (et == GGUF_TYPE_STRING) {
        const char *const *s = v;
        for (uint64_t i = 0; i < n; i++) {
            if (!s[i]) return SW_ERR_ARG;
            if ((rc = buf_str(b, s[i]))) return rc;
        }
        return SW_OK;
    }
    if (et == GGUF_TYPE_ARRAY) {
        const gguf_writer_arr *sub = v;
        for (uint64_t i = 0; i < n; i++)
            if ((rc = encode_arr(b, sub[i].elem_type, sub[i].v, sub[i].n, depth + 1))) return rc;
        return SW_OK;
    }
    uint64_t sz = scalar_size(et), bytes;
    if (!sz || !sw_mul_u64(sz, n, &bytes)) return SW_ERR_ARG;
    return buf_put(b, v, bytes);
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type, const void *v, uint64_t n) {
    wbuf b = {0};
    int rc = encode_arr(&b, elem_type, v, n, 1);
    if (rc) { free(b.p); return rc; }
    return set_kv(w, key, GGUF_TYPE_ARRAY, &b);
}

int gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    return gguf_writer_set_arr(w, key, GGUF_TYPE_STRING, v, n);
}

int gguf_writer_set_raw(gguf_writer *w, const char *key, gguf_type t, const void *data, uint64_t len) {
    if ((unsigned)t >= GGUF_TYPE_COUNT || (len && !data)) return SW_ERR_ARG;
    wbuf b = {0};
    int rc = buf_put(&b, data, len);
    if (rc) { free(b.p); return rc; }
    return set_kv(w, key, t, &b);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_ctx *src, bool (*skip)(const char *key)) {
    for (int64_t i = 0; i < gguf_n_kv(src); i++) {
        const char *key = gguf_key_name(src, i);
        if (skip && skip(key)) continue;
        const void *data;
        uint64_t len;
        int rc = gguf_kv_raw(src, i, &data, &len);
        if (!rc) rc = gguf_writer_set_raw(w, key, gguf_kv_type(src, i), data, len);
        if (rc) return rc;
    }
    return SW_OK;
}

/* Validates a tensor's shape and appends it; *out receives the new entry. */
static int add_tensor(gguf_writer *w, const char *name, uint32_t dtype, uint32_t n_dims, const int64_t *ne,
                      wtensor **out) {
    if (!name || !ne || n_dims < 1 || n_dims > GGUF_MAX_DIMS) return SW_ERR_ARG;
    int64_t blck = gguf_dtype_block_elems(dtype);
    if (!blck) return SW_ERR_UNSUPPORTED;
    uint64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] < 1 || !sw_mul_u64(nel, (uint64_t)ne[d], &nel) || nel > (uint64_t)INT64_MAX) return SW_ERR_ARG;
    if (ne[0] % blck) return SW_ERR_ARG;
    for (uint64_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return SW_ERR_ARG;
    if (w->n_t == w->cap_t) {
        uint64_t cap = w->cap_t ? w->cap_t * 2 : 64;
        wtensor *t = realloc(w->t, cap * sizeof *t);
        if (!t) return SW_ERR_NOMEM;
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return SW_ERR_NOMEM;
    t->dtype = dtype;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    t->nbytes = nel / (uint64_t)blck * (uint64_t)gguf_dtype_block_bytes(dtype);
    *out = t;
    return SW_OK;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t dtype, uint32_t n_dims,
                           const int64_t *ne, const void *data, uint64_t nbytes) {
    wtensor *t;
    int rc = add_tensor(w, name, dtype, n_dims, ne, &t);
    if (rc) return rc;
    if (nbytes != t->nbytes || (nbytes && !data)) {
        free(t->name);
        return SW_ERR_ARG;
    }
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->data) {
        free(t->name);
        return SW_ERR_NOMEM;
    }
    memcpy(t->data, data, nbytes);
    w->n_t++;
    return SW_OK;
}

int gguf_writer_add_tensor_fn(gguf_writer *w, const char *name, uint32_t dtype, uint32_t n_dims,
                              const int64_t *ne, gguf_fill_fn fill, void *user) {
    if (!fill) return SW_ERR_ARG;
    wtensor *t;
    int rc = add_tensor(w, name, dtype, n_dims, ne, &t);
    if (rc) return rc;
    t->fill = fill;
    t->user = user;
    w->n_t++;
    return SW_OK;
}

/* The alignment to write with: general.alignment when set (an integer power of two, as
 * the reader accepts it), else 32. */
static int writer_alignment(const gguf_writer *w, uint64_t *al, sw_err *err) {
    *al = 32;
    for (uint64_t i = 0; i < w->n_kv; i++) {
        const wkv *kv = &w->kv[i];
        if (strcmp(kv->key, "general.alignment")) continue;
        uint64_t sz = scalar_size(kv->type), v = 0;
        bool is_int = kv->type != GGUF_TYPE_FLOAT32 && kv->type != GGUF_TYPE_FLOAT64 && kv->type != GGUF_TYPE_BOOL;
        if (!sz || !is_int || kv->val.len != sz)
            return sw_err_set(err, SW_ERR_ARG, "general.alignment must be an integer");
        memcpy(&v, kv->val.p, sz); /* little-endian; a negative signed value has its top bit set */
        bool neg = (kv->type == GGUF_TYPE_INT8 || kv->type == GGUF_TYPE_INT16 || kv->type == GGUF_TYPE_INT32 ||
                    kv->type == GGUF_TYPE_INT64) && (v >> (sz * 8 - 1)) & 1;
        if (neg || !v || (v & (v - 1)) || v > (1u << 30))
            return sw_err_set(err, SW_ERR_ARG, "general.alignment %llu is not a power of two (max 2^30)", (unsigned long long)v);
        *al = v;
    }
    return SW_OK;
}

static int write_all(FILE *f, const void *p, uint64_t n, const char *path, sw_err *err) {
    if (n && fwrite(p, 1, n, f) != n) return sw_err_set(err, SW_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return SW_OK;
}

static int write_pad(FILE *f, uint64_t pos, uint64_t al, const char *path, sw_err *err) {
    static const uint8_t zeros[4096];
    uint64_t pad = (al - pos % al) % al;
    while (pad) {
        uint64_t k = pad < sizeof zeros ? pad : sizeof zeros;
        int rc = write_all(f, zeros, k, path, err);
        if (rc) return rc;
        pad -= k;
    }
    return SW_OK;
}

/* Produces a streaming tensor's rows in chunks of about 16 MiB and writes them. */
static int write_filled(FILE *f, const wtensor *t, const char *path, sw_err *err) {
    uint64_t row = gguf_row_bytes(t->dtype, t->ne[0]);
    int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
    int64_t chunk = (int64_t)((16u << 20) / row);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    void *buf = malloc((size_t)(row * (uint64_t)chunk));
    if (!buf) return sw_err_set(err, SW_ERR_NOMEM, "tensor '%s': out of memory for a write buffer", t->name);
    int rc = SW_OK;
    for (int64_t r = 0; r < rows && !rc; r += chunk) {
        int64_t n = rows - r < chunk ? rows - r : chunk;
        rc = t->fill(t->user, r, n, buf, err);
        if (rc) {
            if (!err || err->code != rc) sw_err_set(err, rc, "tensor '%s': producing rows failed", t->name);
        } else {
            rc = write_all(f, buf, row * (uint64_t)n, path, err);
        }
    }
    free(buf);
    return rc;
}

static int write_file(const gguf_writer *w, FILE *f, const char *path, uint64_t al, sw_err *err) {
    wbuf h = {0};
    int rc = SW_OK;
    uint32_t ver = 3;
    if ((rc = buf_put(&h, "GGUF", 4)) || (rc = buf_u32(&h, ver)) || (rc = buf_u64(&h, w->n_t)) ||
        (rc = buf_u64(&h, w->n_kv)))
        goto oom;
    for (uint64_t i = 0; i < w->n_kv; i++)
        if ((rc = buf_str(&h, w->kv[i].key)) || (rc = buf_u32(&h, (uint32_t)w->kv[i].type)) ||
            (rc = buf_put(&h, w->kv[i].val.p, w->kv[i].val.len)))
            goto oom;
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if ((rc = buf_str(&h, t->name)) || (rc = buf_u32(&h, t->n_dims))) goto oom;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if ((rc = buf_u64(&h, (uint64_t)t->ne[d]))) goto oom;
        if ((rc = buf_u32(&h, t->dtype)) || (rc = buf_u64(&h, off))) goto oom;
        off += t->nbytes;
        off += (al - off % al) % al;
    }
    rc = write_all(f, h.p, h.len, path, err);
    if (!rc && w->n_t) rc = write_pad(f, h.len, al, path, err);
    for (uint64_t i = 0; i < w->n_t && !rc; i++) {
        const wtensor *t = &w->t[i];
        rc = t->fill ? write_filled(f, t, path, err) : write_all(f, t->data, t->nbytes, path, err);
        if (!rc) rc = write_pad(f, t->nbytes, al, path, err);
    }
    free(h.p);
    return rc;
oom:
    free(h.p);
    return sw_err_set(err, rc, "%s: out of memory building the header", path);
}

int gguf_writer_write(gguf_writer *w, const char *path, sw_err *err) {
    uint64_t al;
    int rc = writer_alignment(w, &al, err);
    if (rc) return rc;
    /* a unique temporary beside path, so concurrent writers of one path never collide */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 12);
    if (!tmp) return sw_err_set(err, SW_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp-XXXXXX", 12);
    int fd = mkstemp(tmp);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f) {
        rc = sw_err_set(err, SW_ERR_IO, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            remove(tmp);
        }
        free(tmp);
        return rc;
    }
    fchmod(fd, 0644);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    rc = write_file(w, f, tmp, al, err);
    if (fclose(f) && !rc) rc = sw_err_set(err, SW_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path)) rc = sw_err_set(err, SW_ERR_IO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    if (rc) remove(tmp);
    free(tmp);
    return rc;
}
