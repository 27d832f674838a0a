/* kq.h — compute kernels: weight block formats exactly as GGUF stores them, conversion,
 * quantizers, the batched matrix multiply every linear layer uses, and the small vector
 * ops of a transformer block. Prefix `kq_`.
 *
 * Each kernel has a scalar reference (kq_*_ref / the `scalar` ISA) and, where it matters,
 * AVX2 and AVX-512 (VNNI) versions, chosen once at run time from cpuid (SWIFTLET_ISA=
 * scalar|avx2|avx512|neon forces one for tests and comparisons). NEON paths sit behind
 * #ifdef __ARM_NEON. The dispatch table is filled once (pthread_once) and read-only after.
 *
 * Matmul contract: W is a row-major weight matrix of n_out rows × n_in columns (a GGUF
 * tensor with ne[0] = n_in, ne[1] = n_out), of any supported dtype. X holds n_tok
 * activation rows of n_in floats. Y = X · Wᵀ is n_tok rows of n_out floats:
 *   Y[t][o] = Σ_i X[t][i] · W[o][i].
 * For quantized W the activations are quantized once per call (Q8_0 blocks of 32 for
 * Q8_0/Q4_0/Q5_0/IQ4_NL, Q8_1 blocks of 32 for Q5_1, Q8_K blocks of 256 for
 * Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS)
 * into caller scratch, then integer dot
 * products are used — the reference engine does the same, so results match it closely.
 * F16 / BF16 W: the activations are rounded to F16 / BF16 first (as the reference does),
 * W rows are widened to F32 on the fly and the products summed in F32. F32 W: plain F32.
 * From 4-8 tokens on (by dtype), the AVX-512 path packs the quantized activations of 16 tokens
 * interleaved so one vpdpbusd serves 16 tokens (see kq_avx512.c).
 * Every weight block is read once per call for all n_tok rows (tiles of rows × outputs),
 * and the work is split over output rows with OpenMP (all threads). */
#ifndef SW_KQ_H
#define SW_KQ_H
#include <assert.h>
#include "base/base.h"
#include "gguf/gguf.h"

#define KQ_QK8_0 32
#define KQ_QK4_0 32
#define KQ_QK_K 256

typedef uint16_t kq_f16;  /* IEEE half, bit pattern */
typedef uint16_t kq_bf16; /* bfloat16, bit pattern */

typedef struct { kq_f16 d; int8_t qs[KQ_QK8_0]; } kq_block_q8_0;       /* x = d * q */
static_assert(sizeof(kq_block_q8_0) == 34, "q8_0 block");
typedef struct { kq_f16 d; uint8_t qs[KQ_QK4_0 / 2]; } kq_block_q4_0;  /* x = d * (nibble - 8); low nibbles = elems 0..15 */
static_assert(sizeof(kq_block_q4_0) == 18, "q4_0 block");
typedef struct {                                                         /* x = d * (5-bit code - 16) */
    kq_f16 d;
    uint8_t qh[4];             /* bit j (little-endian u32) = high bit of element j */
    uint8_t qs[KQ_QK4_0 / 2];  /* low 4 bits: low nibbles = elements 0..15, high = 16..31 */
} kq_block_q5_0;
static_assert(sizeof(kq_block_q5_0) == 22, "q5_0 block");
typedef struct {                                                         /* x = d * (5-bit code) + m */
    kq_f16 d, m;
    uint8_t qh[4];
    uint8_t qs[KQ_QK4_0 / 2];
} kq_block_q5_1;
static_assert(sizeof(kq_block_q5_1) == 24, "q5_1 block");
typedef struct {                                                         /* activations for Q5_1 dots */
    kq_f16 d, s;               /* s = fp16(d * Σ qs), d before its fp16 rounding (as ggml) */
    int8_t qs[KQ_QK8_0];
} kq_block_q8_1;
static_assert(sizeof(kq_block_q8_1) == 36, "q8_1 block");
typedef struct {                                                         /* 8 sub-blocks of 32, 6-bit scales/mins */
    kq_f16 d, dmin;
    uint8_t scales[12];
    uint8_t qs[KQ_QK_K / 2];
} kq_block_q4_K;
static_assert(sizeof(kq_block_q4_K) == 144, "q4_K block");
typedef struct {                                                         /* Q4_K + a 5th bit per element */
    kq_f16 d, dmin;
    uint8_t scales[12];        /* packed as Q4_K's */
    uint8_t qh[KQ_QK_K / 8];   /* element 64j+l: bit 2j of qh[l]; 64j+32+l: bit 2j+1 */
    uint8_t qs[KQ_QK_K / 2];   /* as Q4_K: 32 bytes per 64 elements, low nibbles first */
} kq_block_q5_K;
static_assert(sizeof(kq_block_q5_K) == 176, "q5_K block");
typedef struct {                                                         /* 16 sub-blocks of 16, int8 scales */
    uint8_t ql[KQ_QK_K / 2];
    uint8_t qh[KQ_QK_K / 4];
    int8_t scales[KQ_QK_K / 16];
    kq_f16 d;
} kq_block_q6_K;
static_assert(sizeof(kq_block_q6_K) == 210, "q6_K block");
typedef struct {                                                         /* 16 sub-blocks of 16, 2-bit codes */
    uint8_t scales[KQ_QK_K / 16]; /* sub-block j: scale = low nibble, min = high nibble */
    uint8_t qs[KQ_QK_K / 4];      /* element 128h+32s+l: bits 2s..2s+1 of qs[32h+l] */
    kq_f16 d, dmin;               /* x = d*scale*code - dmin*min */
} kq_block_q2_K;
static_assert(sizeof(kq_block_q2_K) == 84, "q2_K block");
typedef struct {                                                         /* 16 sub-blocks of 16, 3-bit codes */
    uint8_t hmask[KQ_QK_K / 8];   /* element 32k+l: bit k of hmask[l] set = code, clear = code - 4 */
    uint8_t qs[KQ_QK_K / 4];      /* low 2 bits, laid out as Q2_K's */
    uint8_t scales[12];           /* 16 6-bit scales (offset 32): low nibbles in bytes 0-7, top 2 bits in 8-11 */
    kq_f16 d;                     /* x = d*(scale-32)*(code-4) */
} kq_block_q3_K;
static_assert(sizeof(kq_block_q3_K) == 110, "q3_K block");
#define KQ_QK4_NL 32
typedef struct { kq_f16 d; uint8_t qs[KQ_QK4_NL / 2]; } kq_block_iq4_nl; /* x = d * kq_iq4nl_values[nibble]; nibbles as Q4_0 */
static_assert(sizeof(kq_block_iq4_nl) == 18, "iq4_nl block");
typedef struct {                                                         /* 8 sub-blocks of 32, IQ4_NL codes */
    kq_f16 d;
    uint16_t scales_h;            /* top 2 bits of the 6-bit scale of sub-block j: bits 2j..2j+1 */
    uint8_t scales_l[KQ_QK_K / 64]; /* low 4 bits: sub-block j in nibble j%2 of byte j/2 */
    uint8_t qs[KQ_QK_K / 2];      /* 16 bytes per sub-block, nibbles as IQ4_NL's */
} kq_block_iq4_xs;                /* x = d*(scale-32)*kq_iq4nl_values[nibble] */
static_assert(sizeof(kq_block_iq4_xs) == 136, "iq4_xs block");
/* The 16 non-linear levels of IQ4_NL / IQ4_XS (ggml's kvalues_iq4nl). */
extern const int8_t kq_iq4nl_values[16];
typedef struct {                                                         /* activations for K-quant dots */
    float d;
    int8_t qs[KQ_QK_K];
    int16_t bsums[KQ_QK_K / 16];
} kq_block_q8_K;
static_assert(sizeof(kq_block_q8_K) == 292, "q8_K block");

/* Scalar conversions (exact IEEE round-to-nearest-even for f32->f16). */
float kq_f16_to_f32(kq_f16 h);
kq_f16 kq_f32_to_f16(float f);
float kq_bf16_to_f32(kq_bf16 h);
kq_bf16 kq_f32_to_bf16(float f);

/* true if dtype can be used as a matmul weight / dequantized. */
bool kq_dtype_supported(uint32_t dtype);

/* Row conversion: n elements (multiple of the block size). */
void kq_dequantize_row(uint32_t dtype, const void *src, float *dst, int64_t n);
/* F32 -> dtype (F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 * IQ4_NL, IQ4_XS; ggml's reference quantizers without an importance matrix); writes
 * gguf_row_bytes(dtype, n). */
int kq_quantize_row(uint32_t dtype, const float *src, void *dst, int64_t n);

/* Scratch bytes kq_matmul needs for n_tok rows of n_in against a dtype weight. */
size_t kq_matmul_scratch_bytes(uint32_t dtype, int64_t n_in, int64_t n_tok);
/* Y (n_tok, n_out) = X (n_tok, n_in) · Wᵀ, W (n_out, n_in) of dtype. scratch: at least
 * kq_matmul_scratch_bytes (any alignment; 64-byte aligned wastes nothing). Runs on
 * sw_n_threads() OpenMP threads. */
void kq_matmul(uint32_t dtype, const void *W, int64_t n_out, int64_t n_in,
               const float *X, int64_t n_tok, float *Y, void *scratch);
/* Several products of the same X, run by the team of the enclosing OpenMP parallel region
 * (a forward pass keeps one region open instead of a fork/join per product):
 * Y[m] (n_tok, n_out[m]) = X · W[m]ᵀ for m < n_mat, every W[m] (n_out[m], n_in) of the one
 * dtype (e.g. a layer's Q, K and V). X is converted once and the rows of all matrices are
 * split over the threads as one range; scratch as for kq_matmul (the bound does not depend
 * on n_out). Every thread of the team must call it with the same arguments; it returns
 * when all of Y is written (it ends with a barrier). Outside a parallel region it runs on
 * the calling thread alone. */
void kq_matmul_n_team(int n_mat, uint32_t dtype, const void *const *W, const int64_t *n_out, int64_t n_in,
                      const float *X, int64_t n_tok, float *const *Y, void *scratch);
/* Same contract, scalar reference (single thread, no SIMD): the tests' yardstick. */
void kq_matmul_ref(uint32_t dtype, const void *W, int64_t n_out, int64_t n_in,
                   const float *X, int64_t n_tok, float *Y, void *scratch);

/* Vector ops (n elements; out may alias x unless said otherwise). */
void kq_rmsnorm(float *out, const float *x, const float *w, int64_t n, float eps); /* out = x/rms(x)*w */
void kq_softmax(float *x, int64_t n);                                             /* in place */
void kq_silu_mul(float *out, const float *gate, const float *up, int64_t n);      /* out = silu(gate)*up */
void kq_add(float *out, const float *a, const float *b, int64_t n);
/* RoPE on one head vector of head_dim at position pos with frequency base theta:
 * neox=false rotates adjacent pairs (x[2i], x[2i+1]) (llama); neox=true rotates
 * (x[i], x[i+head_dim/2]) (qwen2). Pair i uses angle pos * theta^(-2i/head_dim). */
void kq_rope(float *x, int64_t head_dim, int64_t pos, float theta, bool neox);
/* Same rotation on n_heads consecutive head vectors (x: (n_heads, head_dim)) of one
 * token: the cos/sin table is computed once for all heads. */
void kq_rope_heads(float *x, int64_t n_heads, int64_t head_dim, int64_t pos, float theta, bool neox);

/* Attention helpers over K/V rows of dtype GGUF_DTYPE_F16, GGUF_DTYPE_F32 or GGUF_DTYPE_Q8_0
 * (n a multiple of 32: blocks of 32 int8 + an F16 scale, quantized when stored with the
 * matmul's Q8_0 activation rounding; q and y stay F32). */
float kq_dot_f32(const float *a, const float *b, int64_t n);
/* Bytes of n values in a K/V row of dtype (0: dtype not a K/V type, or Q8_0 and n % 32). */
size_t kq_kv_row_bytes(uint32_t dtype, int64_t n);
float kq_dot_kv(uint32_t dtype, const void *k, const float *q, int64_t n);            /* Σ k[i]*q[i] */
void kq_axpy_kv(uint32_t dtype, float *y, float a, const void *v, int64_t n);           /* y += a*v */
void kq_store_kv(uint32_t dtype, void *dst, const float *src, int64_t n);               /* F32 -> dtype */

/* Which instruction set the dispatcher chose ("scalar", "avx2", "avx512", "neon"). */
const char *kq_isa_name(void);

/* The machine's streaming read bandwidth in GB/s (1e9 bytes/s): all threads read a fresh
 * buffer of `bytes` (use several times the L3 size) slice by slice (4 MiB each, the size of a typical weight matrix); the
 * fastest slice counts. Returns 0 when bytes < 8 MiB or the buffer cannot be allocated.
 * About 0.1 s per GiB plus the time to fill it. */
double kq_read_bandwidth(size_t bytes);

#endif
