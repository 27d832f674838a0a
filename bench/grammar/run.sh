#!/bin/sh
# bench/grammar/run.sh — the `structured` benchmark section (to be called from bench/run.sh):
# token-mask and compile times of the grammar engine on the qwen2.5-0.5b vocabulary
# (151,936 ids; ../shared/vocab/ggml-vocab-qwen3.gguf, or VOCAB=...) for a tool-call
# schema (bench/grammar/tool_call.schema.json, 1.9 KB, walked over tool_call.json) and
# free-form json_object (walked over object.json), from a cold process and after the
# vocabulary warm-up that `serve` does at start. Prints the machine load first; writes
# the output to ${BENCH_RESULTS:-bench/results}/structured.txt.
set -u
cd "$(dirname "$0")/../.." || exit 1
BIN=${SWIFTLET_BIN:-build/swiftlet}
VOCAB=${VOCAB:-../shared/vocab/ggml-vocab-qwen3.gguf}
RES=${BENCH_RESULTS:-bench/results}
mkdir -p "$RES"
{
  echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) load: $(uptime | sed 's/.*load average: //')"
  echo "## tool-call schema: $BIN grammar -m $VOCAB --schema bench/grammar/tool_call.schema.json --bench --check bench/grammar/tool_call.json"
  "$BIN" grammar -m "$VOCAB" --schema bench/grammar/tool_call.schema.json --bench --check bench/grammar/tool_call.json
  echo "## json_object: $BIN grammar -m $VOCAB --json-object --bench --check bench/grammar/object.json"
  "$BIN" grammar -m "$VOCAB" --json-object --bench --check bench/grammar/object.json
  echo "## as in serve (vocabulary warm-up first): the same with --warmup"
  "$BIN" grammar -m "$VOCAB" --schema bench/grammar/tool_call.schema.json --bench --warmup --check bench/grammar/tool_call.json
  "$BIN" grammar -m "$VOCAB" --json-object --bench --warmup --check bench/grammar/object.json
} 2>&1 | tee "$RES/structured.txt"
