/* emu_isa.c — for run.sh: an "avx512" kernel table built from the SIMDe-emulated copy of
 * kq_avx512.c (kq_ops_avx512_emu) over the real avx2 one; every other ISA name goes to the
 * real kq_ops_for_isa. The tests are compiled with kq_ops_for_isa renamed to this. */
#include "kernels/kq_internal.h"

void kq_ops_avx512_emu(kq_ops *ops);
int emu_ops_for_isa(const char *name, kq_ops *ops);

int emu_ops_for_isa(const char *name, kq_ops *ops) {
    if (strcmp(name, "avx512")) return kq_ops_for_isa(name, ops);
    kq_ops_scalar(ops);
    kq_ops_avx2(ops);
    kq_ops_avx512_emu(ops);
    ops->name = "avx512-emulated";
    return SW_OK;
}
