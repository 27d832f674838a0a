/* kernels_blocks.c — libFuzzer target for the kernels: the input's bytes become a weight
 * matrix of one dtype (arbitrary block contents: any scale bits, NaN and inf included),
 * which is dequantized and multiplied (every ISA of this CPU and the scalar reference)
 * with activations made from the input too; then the finite activations go through every
 * quantizer and back. Sanitizers catch out-of-bounds reads of the block layouts, the
 * packed activation layouts and the scratch, and undefined integer arithmetic. Results
 * are not compared (NaN scales make them meaningless); kernels_test checks values. */
#include "kernels/kq_internal.h"
#include <stdlib.h>
#include <string.h>

static const uint32_t fz_dtypes[] = {GGUF_DTYPE_F32,  GGUF_DTYPE_F16,  GGUF_DTYPE_BF16, GGUF_DTYPE_Q8_0, GGUF_DTYPE_Q4_0,
                                     GGUF_DTYPE_Q4_K, GGUF_DTYPE_Q6_K, GGUF_DTYPE_Q5_0, GGUF_DTYPE_Q5_1, GGUF_DTYPE_Q5_K,
                                     GGUF_DTYPE_Q2_K, GGUF_DTYPE_Q3_K, GGUF_DTYPE_IQ4_NL, GGUF_DTYPE_IQ4_XS};
#define FZ_N_DTYPES (sizeof fz_dtypes / sizeof fz_dtypes[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    const uint32_t dtype = fz_dtypes[data[0] % FZ_N_DTYPES];
    const int64_t n_tok = 1 + data[1] % 20, n_out = 1 + data[2] % 9;
    const int64_t be = kq_block_elems(dtype), bb = kq_block_bytes(dtype);
    data += 3;
    size -= 3;
    /* as many whole blocks per row as the input allows, at most 1024 elements */
    int64_t nb = (int64_t)size / (n_out * bb);
    if (nb * be > 1024) nb = 1024 / be;
    if (nb < 1) return 0;
    const int64_t n_in = nb * be;
    const size_t wbytes = (size_t)(n_out * nb * bb);
    uint8_t *w = malloc(wbytes);
    float *x = malloc((size_t)(n_tok * n_in) * sizeof(float));
    float *y = malloc((size_t)(n_tok * n_out) * sizeof(float));
    float *row = malloc((size_t)n_in * sizeof(float));
    void *q = malloc((size_t)n_in * sizeof(float) + 64);
    size_t sb = kq_matmul_scratch_bytes(dtype, n_in, n_tok);
    void *scratch = malloc(sb);
    if (!w || !x || !y || !row || !q || !scratch) goto done;
    memcpy(w, data, wbytes);
    for (int64_t i = 0; i < n_tok * n_in; i++) x[i] = (float)(int8_t)data[(size_t)i % size] * 0.03125f;

    for (int64_t o = 0; o < n_out; o++) kq_dequantize_row(dtype, w + (size_t)(o * nb * bb), row, n_in);
    kq_matmul_ref(dtype, w, n_out, n_in, x, n_tok, y, scratch);
    const char *isas[] = {"scalar", "avx2", "avx512", "neon"};
    for (int i = 0; i < 4; i++) {
        kq_ops ops;
        if (kq_ops_for_isa(isas[i], &ops) == SW_OK) kq_matmul_ops(&ops, dtype, w, n_out, n_in, x, n_tok, y, scratch);
    }
    for (size_t d = 0; d < FZ_N_DTYPES; d++) {
        const int64_t m = n_in / 256 * 256 ? n_in / 256 * 256 : (n_in / 32) * 32;
        if (m && m % kq_block_elems(fz_dtypes[d]) == 0 && kq_quantize_row(fz_dtypes[d], x, q, m) == SW_OK)
            kq_dequantize_row(fz_dtypes[d], q, row, m);
    }
done:
    free(w); free(x); free(y); free(row); free(q); free(scratch);
    return 0;
}
