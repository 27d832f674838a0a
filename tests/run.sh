#!/bin/sh
# run.sh BUILD_DIR... — runs every unit-test binary in each BUILD_DIR/tests (one line
# per binary), then the end-to-end tests (tests/e2e/*.test.mjs, node's test runner)
# against BUILD_DIR/swiftlet of the first folder, and prints the grand total as the
# last line: "N passed, N failed". Exits non-zero when anything failed or crashed.
passed=0; failed=0; skipped=0
add() { passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3)); }
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1
# Tests run two at a time (below) and some use two compute threads: OpenMP threads that
# spin at barriers would wait out whole time slices for a descheduled partner, so the
# tests' threads sleep instead (speed is make bench's business, not the tests').
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# The unit-test binaries run JOBS at a time (default: the number of CPUs; they are mostly
# single-threaded), the sanitizer builds first since they take longest; the results are
# then read back in a fixed order.
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
list=""
for dir in "$@"; do
  for t in "$dir"/tests/*; do
    [ -x "$t" ] && [ -f "$t" ] && list="$t
$list"
  done
done
# the two longest (engine_test, model_golden) start first so that the rest fills in beside them
{ printf '%s' "$list" | grep -E '/(engine_test|model_golden)$'; printf '%s' "$list" | grep -vE '/(engine_test|model_golden)$'; } | grep . | xargs -P "$JOBS" -I{} sh -c 'timeout 900 "$1" >"$1.stdout" 2>"$1.stderr"; echo $? >"$1.rc"' sh {}
for dir in "$@"; do
  for t in "$dir"/tests/*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    rc=$(cat "$t.rc" 2>/dev/null || echo 125)
    line=$(grep '^RESULT ' "$t.stdout" 2>/dev/null | tail -n 1)
    if [ -z "$line" ]; then
      echo "CRASH $t (exit $rc)"; tail -n 20 "$t.stderr"; add 0 1 0; continue
    fi
    p=$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    echo "$dir: $line"
    if [ "$f" != 0 ] || [ $rc != 0 ]; then grep -E '^(FAIL|SKIP|ERROR)|Sanitizer|runtime error' "$t.stderr" | head -n 30; fi
    [ $rc != 0 ] && [ "$f" = 0 ] && f=1
    add "$p" "$f" "${s:-0}"
  done
done
first=$1
# The AVX-512 kernels against the scalar reference on a CPU without AVX-512 (SIMDe
# emulation, tests/avx512_emu/run.sh); on a CPU with it, kernels_test runs them natively too.
if [ -f tests/avx512_emu/run.sh ]; then
  out=$(timeout 900 sh tests/avx512_emu/run.sh "$first" 2>&1); rc=$?
  printf '%s\n' "$out" | grep -q '^SKIP' && printf '%s\n' "$out" | grep '^SKIP'
  emu_f=0
  for line in $(printf '%s\n' "$out" | grep '^RESULT ' | tr ' ' '~'); do
    line=$(echo "$line" | tr '~' ' ')
    echo "avx512-emu: $line"
    p=$(echo "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    s=$(echo "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
    add "$p" "$f" "${s:-0}"; emu_f=$((emu_f + f))
  done
  if [ $rc != 0 ]; then printf '%s\n' "$out" | grep -E '^FAIL|error' | head -n 20; [ $emu_f = 0 ] && add 0 1 0; fi
fi
if ls tests/e2e/*.test.mjs >/dev/null 2>&1; then
  out=$(SWIFTLET_BIN="$PWD/$first/swiftlet" timeout 1200 node --test --test-reporter=tap tests/e2e/ 2>&1); rc=$?
  p=$(printf '%s\n' "$out" | sed -n 's/^# pass \([0-9]*\)/\1/p' | tail -n 1)
  f=$(printf '%s\n' "$out" | sed -n 's/^# fail \([0-9]*\)/\1/p' | tail -n 1)
  echo "e2e: ${p:-0} passed, ${f:-?} failed"
  if [ "${f:-1}" != 0 ] || [ $rc != 0 ]; then printf '%s\n' "$out" | grep -B2 -A25 '^not ok' | head -n 120; [ "${f:-0}" = 0 ] && f=1; fi
  add "${p:-0}" "${f:-1}" 0
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
