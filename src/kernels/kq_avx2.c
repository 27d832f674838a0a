/* kq_avx2.c — AVX2 + FMA + F16C kernels (compiled with those flags; chosen at run time
 * only when cpuid reports them). Overrides entries of the scalar table. */
#include "kernels/kq_internal.h"
#if defined(__x86_64__)
#include <immintrin.h>

void kq_ops_avx2(kq_ops *ops) { ops->name = "avx2"; }
#endif
