/* kq_avx2.h — what the AVX2 kernel files (kq_avx2.c, kq_avx2_gemv.c, kq_avx2_gemm.c) share:
 * the single-token GEMV kernels that kq_avx2.c's row kernels hand n_tok = 1 to, and the
 * batched (gemm) path's entries for the kq_mm_impl table. Compiled only into AVX2 units. */
#ifndef SW_KQ_AVX2_H
#define SW_KQ_AVX2_H
#include "kernels/kq_internal.h"

/* Activation quantizers, bit-exact with kq_quantize_q8_0_act / kq_quantize_q8_K, and
 * their kq_prep_fn forms. */
void kq_avx2_quantize_q8_0(const float *x, kq_block_q8_0 *y, int64_t n);
void kq_avx2_quantize_q8_K(const float *x, kq_block_q8_K *y, int64_t n);
void kq_avx2_prep_q8_0(const float *x, void *dst, int64_t n);
void kq_avx2_prep_q8_K(const float *x, void *dst, int64_t n);

/* Y[0][o0..o1) for a->n_tok == 1 (kq_rows_fn contract otherwise). */
void kq_avx2_gemv_q8_0(const kq_mm_args *a, int64_t o0, int64_t o1);
void kq_avx2_gemv_q4_0(const kq_mm_args *a, int64_t o0, int64_t o1);
void kq_avx2_gemv_q4_K(const kq_mm_args *a, int64_t o0, int64_t o1);
void kq_avx2_gemv_q6_K(const kq_mm_args *a, int64_t o0, int64_t o1);

/* The gemm path (kq_avx2_gemm.c): pack functions, packed group sizes, group tiles. */
size_t kq_avx2_q80_pack_bytes(int64_t n_in);
size_t kq_avx2_qk_pack_bytes(int64_t n_in);
void kq_avx2_pack_q8_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst);
void kq_avx2_pack_q4_0(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst);
void kq_avx2_pack_qk(const float *X, int64_t ldx, int64_t ntok, int64_t b0, int64_t b1, void *dst);
void kq_avx2_gemm_q8_0(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1);
void kq_avx2_gemm_q4_0(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1);
void kq_avx2_gemm_q4_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1);
void kq_avx2_gemm_q6_K(const kq_mm_args *a, int64_t g, int64_t o0, int64_t o1);

#endif
