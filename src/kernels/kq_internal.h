/* kq_internal.h — what the kernel files share but callers of kq.h never see: the per-dtype
 * traits table (kq_traits: every fact about a weight dtype, in one place), the per-ISA
 * dispatch table indexed the same way (by GGUF dtype), the argument block of the matmul
 * row kernels, and the scalar reference pieces that every ISA falls back on.
 *
 * Matmul data flow (kq.c drives it):
 *   1. "prep": each activation row X[t] (n_in floats) is turned into the activation
 *      format of the weight dtype (kq_traits.act) — Q8_0 blocks (Q8_0/Q4_0/Q5_0/IQ4_NL
 *      weights), Q8_1 blocks (Q5_1), Q8_K blocks (Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS), floats
 *      rounded to F16 / BF16 precision (F16 / BF16 weights), or used as is (F32); an ISA
 *      may lay the format out its own way (kq_mm_impl.prep_bytes). These rows live in the
 *      caller's scratch, xq_row_bytes apart.
 *   2. "rows": the kernel computes Y[t][o] for every token t and outputs o in [o0, o1);
 *      threads get disjoint output ranges.
 *   3. Optionally an ISA has a "gemm" path for batches (n_tok >= gemm_min_tok) that packs
 *      the activations of 16 tokens at a time into its own interleaved layout (pack) and
 *      then runs a register-tiled kernel over (16-token group, output rows). */
#ifndef SW_KQ_INTERNAL_H
#define SW_KQ_INTERNAL_H
#include "kernels/kq.h"
#include <string.h>

/* Every per-dtype table of the kernels (the traits below, kq_ops.mm) is indexed by the
 * GGUF dtype number itself; entries of dtypes the kernels do not support are empty. */
#define KQ_DTYPE_COUNT (GGUF_DTYPE_BF16 + 1)

/* One token row -> activation format (n multiple of the block size). */
typedef void (*kq_prep_fn)(const float *x, void *dst, int64_t n);

/* An activation format: what the matmul turns each row of X into before the row kernels
 * take it (the standard layout every ISA's rows kernel reads unless that ISA brings its
 * own prep; see kq_mm_impl). */
typedef struct kq_act_fmt {
    const char *name;      /* "Q8_0", "Q8_1", "Q8_K", "F16", "BF16", "F32" */
    int64_t blck;          /* values per block */
    size_t bytes;          /* bytes per block; 0: X is used in place (F32) */
    kq_prep_fn prep;       /* scalar reference conversion of one row; NULL for F32 */
} kq_act_fmt;

/* What the kernels know about one weight dtype (ggml's type_traits): one const entry per
 * supported dtype, found by kq_traits_of. The scalar functions here are the reference that
 * every ISA is checked against; the per-ISA matmul kernels sit in kq_ops.mm[dtype]. */
typedef struct kq_traits {
    uint32_t dtype;        /* GGUF_DTYPE_* */
    const char *name;      /* as gguf_dtype_name */
    int64_t blck;          /* elements per block (1 for F32/F16/BF16) */
    size_t bytes;          /* bytes per block (sizeof the kq_block_* struct) */
    bool quantized;        /* integer blocks, dotted against a quantized activation format */
    bool kv;               /* usable as a K/V cache row type (kq_dot_kv & co) */
    const kq_act_fmt *act; /* the activation format its dot products take */
    /* n elements (a multiple of blck): floats -> blocks (ggml's reference quantizer) and back */
    void (*from_float)(const float *src, void *dst, int64_t n);
    void (*to_float)(const void *src, float *dst, int64_t n);
    /* scalar reference dot of nb weight blocks with nb act blocks (F32/F16/BF16: nb values,
       summed in double) */
    float (*vec_dot)(const void *w, const void *x, int64_t nb);
} kq_traits;

/* The traits of a dtype; NULL when the kernels do not support it. */
const kq_traits *kq_traits_of(uint32_t dtype);

/* Tokens per packed group of the gemm path. */
#define KQ_GEMM_TOK 16

typedef struct kq_mm_args {
    const uint8_t *W;      /* (n_out, n_in) weight rows of the dtype, w_row_bytes apart */
    size_t w_row_bytes;
    int64_t n_in, n_out, n_tok;
    const uint8_t *xq;     /* (n_tok, n_in) activations in the dtype's activation format,
                              xq_row_bytes apart; gemm path: packed groups, xq_row_bytes
                              = bytes of one packed 16-token group */
    size_t xq_row_bytes;
    float *Y;              /* (n_tok, n_out) */
    const kq_traits *tr;   /* the weight dtype's */
} kq_mm_args;

/* Y[t][o0..o1) for all t. */
typedef void (*kq_rows_fn)(const kq_mm_args *a, int64_t o0, int64_t o1);
/* Packs the activation blocks [b0, b1) (blocks of kq_mm_impl.pack_elems values) of tokens
 * [0, n) (n <= 16, the other lanes zero) of X (rows ldx floats apart) into their places
 * in the group of gemm layout at dst; threads pack disjoint block ranges. */
typedef void (*kq_pack_fn)(const float *X, int64_t ldx, int64_t n, int64_t b0, int64_t b1, void *dst);
/* Y for tokens of group g (16 tokens from t0 = 16*g) and outputs [o0, o1). */
typedef void (*kq_gemm_fn)(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1);

typedef struct kq_mm_impl {
    kq_prep_fn prep;       /* NULL: activations used as given (F32) */
    size_t (*prep_bytes)(int64_t n_in); /* bytes of one prepared row; NULL: kq_act_row_bytes */
    kq_rows_fn rows;
    kq_pack_fn pack;       /* NULL: no gemm path */
    kq_gemm_fn gemm;
    size_t (*pack_bytes)(int64_t n_in); /* bytes of one packed group */
    int64_t pack_elems;    /* activation values per block of the pack function */
    int64_t gemm_min_tok;  /* use the gemm path from this many tokens on */
} kq_mm_impl;

typedef struct kq_ops {
    const char *name;
    kq_mm_impl mm[KQ_DTYPE_COUNT]; /* by GGUF dtype; .rows NULL: dtype unsupported */
    float (*dot_f32)(const float *a, const float *b, int64_t n);
    float (*dot_f16)(const kq_f16 *k, const float *q, int64_t n);
    void (*axpy_f32)(float *y, float a, const float *v, int64_t n);
    void (*axpy_f16)(float *y, float a, const kq_f16 *v, int64_t n);
    void (*store_f16)(kq_f16 *dst, const float *src, int64_t n);
    /* Q8_0 K/V rows (n a multiple of 32): Σ d·k[i]·q[i] and y += a·d·v[i], one F32 partial
       sum per block scaled by its d; rows are written with the scalar Q8_0 activation
       quantizer (kq_store_kv). */
    float (*dot_q8_0)(const kq_block_q8_0 *k, const float *q, int64_t n);
    void (*axpy_q8_0)(float *y, float a, const kq_block_q8_0 *v, int64_t n);
    void (*rmsnorm)(float *out, const float *x, const float *w, int64_t n, float eps);
    void (*softmax)(float *x, int64_t n);
    void (*silu_mul)(float *out, const float *gate, const float *up, int64_t n);
    void (*add)(float *out, const float *a, const float *b, int64_t n);
} kq_ops;

/* Tables: scalar always; the others are filled in by their ISA files. */
void kq_ops_scalar(kq_ops *ops);
void kq_ops_avx2(kq_ops *ops);   /* overrides entries of a scalar table */
void kq_ops_avx512(kq_ops *ops); /* overrides entries of an avx2 table */
void kq_ops_neon(kq_ops *ops);   /* AArch64 only: overrides entries of a scalar table */

/* The table chosen for this process (pthread_once). */
const kq_ops *kq_ops_get(void);
/* Fills *ops with the named ISA's table ("scalar", "avx2", "avx512", "neon"); SW_ERR_UNSUPPORTED
 * when this CPU (or build) lacks it. Tests use it to compare every path. */
int kq_ops_for_isa(const char *name, kq_ops *ops);
/* kq_matmul on an explicit table. */
void kq_matmul_ops(const kq_ops *ops, uint32_t dtype, const void *W, int64_t n_out, int64_t n_in,
                   const float *X, int64_t n_tok, float *Y, void *scratch);
/* kq_matmul_n_team on an explicit table. */
void kq_matmul_n_team_ops(const kq_ops *ops, int n_mat, uint32_t dtype, const void *const *W, const int64_t *n_out,
                          int64_t n_in, const float *X, int64_t n_tok, float *const *Y, void *scratch);

/* Scalar reference pieces (kq_ref.c). */
void kq_quantize_q8_0_act(const float *x, kq_block_q8_0 *y, int64_t n); /* activation rounding */
void kq_quantize_q8_1_act(const float *x, kq_block_q8_1 *y, int64_t n); /* Q8_0 rounding + s */
void kq_quantize_q8_K(const float *x, kq_block_q8_K *y, int64_t n);
/* Q3_K: the 16 signed sub-block scales (6-bit field - 32) of a block. */
static inline void kq_q3k_scales(const uint8_t sc12[12], int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? sc12[j] & 0xF : sc12[j - 8] >> 4, hi = (sc12[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)((lo | hi << 4) - 32);
    }
}
/* IQ4_XS: the signed scale (6-bit field - 32) of sub-block j (0..7). */
static inline int kq_iq4xs_scale(const kq_block_iq4_xs *b, int j) {
    return (((b->scales_l[j / 2] >> 4 * (j % 2)) & 0xF) | ((b->scales_h >> 2 * j) & 3) << 4) - 32;
}
/* Q4_K 6-bit scale and min of sub-block j (0..7). */
static inline void kq_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* All Q4_K scales and mins of a block as bytes: out[0..7] = scales, out[8..15] = mins
 * (ggml's 32-bit mask shuffle of the 12 packed bytes). */
static inline void kq_q4k_unpack(const uint8_t *sc12, uint8_t out[16]) {
    uint32_t u[4];
    memcpy(u, sc12, 12);
    const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
    u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
    const uint32_t aux = u[1] & k1;
    u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
    u[2] = aux;
    u[0] &= k1;
    memcpy(out, u, 16);
}

/* Elements / bytes per block of a supported weight dtype (0 when unsupported). */
static inline int64_t kq_block_elems(uint32_t dtype) {
    const kq_traits *tr = kq_traits_of(dtype);
    return tr ? tr->blck : 0;
}
static inline int64_t kq_block_bytes(uint32_t dtype) {
    const kq_traits *tr = kq_traits_of(dtype);
    return tr ? (int64_t)tr->bytes : 0;
}

/* Bytes of one row of n_in values in the standard activation format of a supported dtype
 * (0 for F32: X is used in place; 0 when unsupported). */
static inline size_t kq_act_row_bytes(uint32_t dtype, int64_t n_in) {
    const kq_traits *tr = kq_traits_of(dtype);
    return tr ? (size_t)(n_in / tr->act->blck) * tr->act->bytes : 0;
}

/* The 5th bits of a K-quant block, for the SIMD Q4_K/Q5_K kernels shared by one macro:
 * none for Q4_K; Q5_K's qh (element 64j+l: bit 2j of qh[l], 64j+32+l: bit 2j+1). */
static inline const uint8_t *qh_q4_K(const kq_block_q4_K *b) { (void)b; return NULL; }
static inline const uint8_t *qh_q5_K(const kq_block_q5_K *b) { return b->qh; }

#endif
