#!/bin/sh
# run.sh — runs kernels_test and kernels_files against the AVX-512 kernels on a CPU without
# AVX-512: kq_avx512.c is rewritten to SIMDe's portable intrinsics (sed: _mm* -> simde_mm*,
# __m* -> simde__m*), completed by simde_shim.h, compiled for AVX2, and installed as the
# "avx512" table of the tests (emu_isa.c). Slow (~1 min) but exact in integer arithmetic;
# float sums may round differently from the hardware, within the tests' tolerances.
# Needs Debian's libsimde-dev and the -O2 kernel libraries (make build/tests/kernels_test).
# Usage: sh tests/avx512_emu/run.sh [BUILD_DIR]   (from the repository root)
set -e
build=${1:-build}
here=tests/avx512_emu
if [ ! -f /usr/include/simde/x86/avx512.h ]; then
  echo "SKIP: SIMDe not installed (apt-get install libsimde-dev)"
  exit 0
fi
make --no-print-directory -j2 BUILD="$build" "$build/tests/kernels_test" >/dev/null
out="$build/avx512_emu"
mkdir -p "$out"
sed -e 's|#include <immintrin.h>|#include <simde/x86/avx512.h>\n#include "simde_shim.h"\n#include <immintrin.h>|' \
    -e 's/\b_mm\(256\|512\)\?_/simde_mm\1_/g' -e 's/\b__m\(128\|256\|512\)\(i\|d\)\?\b/simde__m\1\2/g' \
    -e 's/\b__mmask\(8\|16\|32\|64\)\b/simde__mmask\1/g' -e 's/\b_MM_\(FROUND\|HINT\)/SIMDE_MM_\1/g' \
    -e 's/\bkq_ops_avx512\b/kq_ops_avx512_emu/' src/kernels/kq_avx512.c > "$out/kq_avx512_emu.c"
cflags="-std=gnu11 -O1 -mavx2 -mfma -mf16c -fopenmp -Isrc -Itests/unit -I$here -D_GNU_SOURCE -w -Wno-psabi"
libs="-Wl,--start-group $build/lib/libsw_kernels.a $build/lib/libsw_base.a $build/lib/libsw_gguf.a -Wl,--end-group -lm -lpthread"
cc $cflags -c "$out/kq_avx512_emu.c" -o "$out/kq_avx512_emu.o"
cc $cflags -c $here/emu_isa.c -o "$out/emu_isa.o"
status=0
for t in kernels_test kernels_files; do
  cc $cflags -Dkq_ops_for_isa=emu_ops_for_isa -o "$out/$t" tests/unit/$t.c "$out/emu_isa.o" "$out/kq_avx512_emu.o" $libs
  "$out/$t" > "$out/$t.log" 2>&1 || status=1
  grep -E "^(FAIL|RESULT)" "$out/$t.log" || true
done
exit $status
