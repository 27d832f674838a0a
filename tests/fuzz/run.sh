#!/bin/sh
# run.sh BUILD_DIR SECONDS — runs every libFuzzer binary in BUILD_DIR/fuzz for SECONDS
# each, one after the other, with a corpus in BUILD_DIR/corpus/TARGET that persists
# between runs. Seeds: tests/fuzz/seeds/TARGET/ when the target ships one, plus, by
# module (the part of TARGET before the first '_'): gguf -> the GGUF files of
# ../shared/models and ../shared/vocab (truncated to 64 KiB, the -max_len); tokenizer ->
# the test strings of ../shared/vocab/*.inp, one file per string; model -> whole model
# files: the small generated ones in tests/fuzz/seeds/model_load plus every
# ../shared/models{,2} file up to 6 MiB (the -max_len of that module); jinja -> the chat
# templates of ../shared/templates. Prints
# "fuzz TARGET: N runs, clean" per target, or the crash and its reproducer, and exits
# non-zero when any target crashed (UBSan findings count as crashes).
build=${1:?usage: run.sh BUILD_DIR SECONDS}
secs=${2:-60}
shared=../shared
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0
found=0
for bin in "$build"/fuzz/*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin")
  module=${name%%_*}
  maxlen=65536
  [ "$module" = model ] && maxlen=6291456
  corpus="$build/corpus/$name"
  art="$build/artifacts/$name"
  mkdir -p "$corpus" "$art"
  if [ -d "tests/fuzz/seeds/$name" ]; then
    cp -f tests/fuzz/seeds/"$name"/* "$corpus"/ 2>/dev/null
  fi
  case "$module" in
    gguf)
      for f in "$shared"/models/*.gguf "$shared"/vocab/*.gguf; do
        [ -f "$f" ] || continue
        head -c $maxlen "$f" > "$corpus/shared-$(basename "$f")"
      done ;;
    model)
      for f in "$shared"/models/*.gguf "$shared"/models2/*.gguf; do
        [ -f "$f" ] && [ "$(wc -c < "$f")" -le $maxlen ] || continue
        cp -f "$f" "$corpus/shared-$(basename "$f")"
      done ;;
    tokenizer)
      for f in "$shared"/vocab/*.inp; do
        [ -f "$f" ] || continue
        awk -v dir="$corpus" -v base="$(basename "$f" .inp)" '
          /^__ggml_vocab_test__$/ { n++; next }
          { out = sprintf("%s/shared-%s-%03d", dir, base, n); printf "%s\n", $0 > out; close(out) }' "$f"
      done ;;
    jinja)
      for f in "$shared"/templates/*.jinja; do
        [ -f "$f" ] && cp -f "$f" "$corpus/shared-$(basename "$f")"
      done ;;
  esac
  log="$build/fuzz-$name.log"
  "$bin" -max_total_time="$secs" -max_len=$maxlen -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$art/" "$corpus" > "$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
  if [ $rc = 0 ] && [ -n "$runs" ]; then
    echo "fuzz $name: $runs runs, clean"
  else
    echo "fuzz $name: CRASH (exit $rc) after ${runs:-?} runs; reproducer(s) in $art:"
    ls "$art" 2>/dev/null | sed 's/^/  /'
    grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x' "$log" | head -n 30
    status=1
  fi
done
[ $found = 1 ] || echo "fuzz: no targets in $build/fuzz"
exit $status
