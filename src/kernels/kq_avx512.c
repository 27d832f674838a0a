/* kq_avx512.c — AVX-512 (F/BW/VL/DQ + VNNI + BF16) kernels (compiled with those flags;
 * chosen at run time only when cpuid reports them). Overrides entries of the avx2 table. */
#include "kernels/kq_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

void kq_ops_avx512(kq_ops *ops) { ops->name = "avx512"; }
#endif
