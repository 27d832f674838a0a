#!/bin/sh
# bench/grammar/run.sh — the `structured` section of `make bench` (bench/run.sh calls it;
# it also runs alone): structured-output speed on the qwen2.5-0.5b vocabulary (151,936
# ids; ../shared/vocab/ggml-vocab-qwen3.gguf, or VOCAB=...).
#   1. masks and compile (`swiftlet grammar --bench --json`): a tool-call schema
#      (bench/grammar/tool_call.schema.json, 2.8 KB: six tools' arguments under anyOf,
#      formats, patterns, maxLength) walked over tool_call.json, and free-form json_object
#      walked over object.json; each from a fresh process (cold: no mask cached) and with
#      the vocabulary warm-up that `serve` does at start (--warmup)
#      -> structured-mask-{tool,json}[-warmup].json
#   2. decode tok/s with and without the schema, at 1 and 16 sequences
#      (`swiftlet generate --bench 1,16 [--bench-schema ...]`, STRUCT_PROMPT-token random
#      prompts, STRUCT_GEN new tokens, greedy, EOS ignored) on a qwen2.5-0.5b q8_0 model
#      with that vocabulary (random weights; bench/work/qwen2.5-0.5b-qvocab.q8_0.gguf,
#      generated when missing) -> structured-decode-{plain,schema}.json
# Environment: SWIFTLET_BIN, VOCAB, BENCH_RESULTS (default bench/results), SWIFTLET_THREADS
# (default 2), STRUCT_PROMPT (default 64), STRUCT_GEN (default 96), STRUCT_DECODE=0 skips 2.
# Exit status: 0 when every step ran, 1 otherwise (the failed steps are named on stderr).
set -u
cd "$(dirname "$0")/../.." || exit 1
BIN=${SWIFTLET_BIN:-build/swiftlet}
VOCAB=${VOCAB:-../shared/vocab/ggml-vocab-qwen3.gguf}
RES=${BENCH_RESULTS:-bench/results}
THREADS=${SWIFTLET_THREADS:-2}
PROMPT=${STRUCT_PROMPT:-64}
GEN=${STRUCT_GEN:-96}
MODEL=bench/work/qwen2.5-0.5b-qvocab.q8_0.gguf
SCHEMA=bench/grammar/tool_call.schema.json
mkdir -p "$RES" bench/work
rc=0
fail() { echo "structured: FAILED $*" >&2; rc=1; }
echo "structured: load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" >&2

# 1. masks and compile
for w in "" --warmup; do
  sfx=${w:+-warmup}
  "$BIN" grammar -m "$VOCAB" --schema "$SCHEMA" --check bench/grammar/tool_call.json --bench $w \
    --json "$RES/structured-mask-tool$sfx.json" >&2 || fail "grammar --bench tool-call $w"
  "$BIN" grammar -m "$VOCAB" --json-object --check bench/grammar/object.json --bench $w \
    --json "$RES/structured-mask-json$sfx.json" >&2 || fail "grammar --bench json_object $w"
done

# 2. decode with and without the schema
[ "${STRUCT_DECODE:-1}" = 0 ] && exit $rc
if [ ! -s "$MODEL" ]; then
  echo "structured: generating $MODEL" >&2
  if "$BIN" gen-model --preset qwen2.5-0.5b --type q8_0 --vocab "$VOCAB" -o "$MODEL.tmp" >&2; then mv "$MODEL.tmp" "$MODEL"
  else rm -f "$MODEL.tmp"; fail "gen-model"; exit $rc; fi
fi
for mode in plain schema; do
  extra=""
  [ $mode = schema ] && extra="--bench-schema $SCHEMA"
  "$BIN" generate -m "$MODEL" --threads "$THREADS" --no-calibrate --bench 1,16 --bench-prompt "$PROMPT" --bench-gen "$GEN" $extra \
    >"$RES/structured-decode-$mode.json" || { rm -f "$RES/structured-decode-$mode.json"; fail "generate --bench ($mode)"; }
done
exit $rc
