#!/bin/sh
# bench/run.sh — `make bench`: the whole benchmark in one command (< 20 min on 2 cores).
#   1. models: qwen2.5-0.5b preset (random weights, GPT-2 vocab) as q8_0 / q4_0 / q4_k_m
#      in bench/work/ (git-ignored; reused when present)
#   2. swiftlet kbench --json                      -> bench/results/kbench.json
#   3. swiftlet mbench --json per type             -> bench/results/mbench-TYPE.json
#   4. batch scaling: swiftlet generate --bench 1,4,16,32 (aggregate decode tok/s) and
#      --bench-ttft (cold vs prefix-cached TTFT) -> bench/results/generate-{scaling,ttft}.json
#   5. serving: swiftlet serve (q8_0) on a loopback port, swiftlet bench --sweep on
#      chat-shared-prefix and mixed-lengths        -> bench/results/sweep-WORKLOAD.{json,svg}
#   6. bench/results/summary.md (bench/report.mjs, node)
# Each section is skipped with a message when its command fails (or is not built yet),
# and every command runs under a timeout taken from one overall budget.
# Environment: SWIFTLET_BIN (default build/swiftlet), BENCH_BUDGET_S (default 1140),
# BENCH_PORT (default: first free of 18080..18099), SWIFTLET_THREADS (passed through),
# BENCH_PRESET (default qwen2.5-0.5b; e.g. `BENCH_PRESET=tiny make bench` is a one-minute
# smoke run of the whole pipeline — its figures are not comparable with llama.cpp's).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${SWIFTLET_BIN:-build/swiftlet}
WORK=bench/work
RES=bench/results
VOCAB=../shared/vocab/ggml-vocab-gpt-2.gguf
PRESET=${BENCH_PRESET:-qwen2.5-0.5b}
BUDGET=${BENCH_BUDGET_S:-1140}
START=$(date +%s)
mkdir -p "$WORK" "$RES"
rm -f "$RES"/*.json "$RES"/*.jsonl "$RES"/*.log "$RES"/*.svg "$RES"/summary.md "$RES"/skipped.txt
LOAD=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
echo "{\"preset\": \"$PRESET\", \"loadavg_start\": ${LOAD:-0}}" > "$RES/meta.json"

say() { echo "bench: $*" >&2; }
skip() { say "SKIPPED $1: $2"; echo "$1: $2" >> "$RES/skipped.txt"; }
left() { echo $((BUDGET - ($(date +%s) - START))); }
[ "${LOAD%%.*}" -ge 1 ] 2>/dev/null && say "warning: load average $LOAD at start — other work is running; figures will be low"
# run_for SECONDS CMD...: the command under a timeout of min(SECONDS, budget left - 30 s reserve)
run_for() {
  want=$1; shift
  l=$(($(left) - 30))
  [ "$l" -lt "$want" ] && want=$l
  if [ "$want" -lt 10 ]; then say "out of time budget for: $*"; return 124; fi
  timeout "$want" "$@"
  rf=$?
  [ $rf = 124 ] && echo "timed out after $want s" >&2
  return $rf
}

if [ ! -x "$BIN" ]; then say "$BIN not found (run make first)"; exit 1; fi
command -v node >/dev/null 2>&1 || say "node not found: summary.md will not be written"

# ---- 1. models ----
MODELS=""
for t in q8_0 q4_0 q4_k_m; do
  m=$WORK/$PRESET.$t.gguf
  if [ ! -s "$m" ]; then
    say "generating $m"
    if run_for 240 "$BIN" gen-model --preset "$PRESET" --type $t --vocab "$VOCAB" -o "$m.tmp" >"$RES/gen-model-$t.log" 2>&1 \
       && mv "$m.tmp" "$m"; then :; else
      rm -f "$m.tmp"; skip "model $t" "gen-model failed: $(tail -n 1 "$RES/gen-model-$t.log")"; continue
    fi
  fi
  MODELS="$MODELS $t"
done

# ---- 2. kernels ----
say "kbench"
if run_for 150 "$BIN" kbench --quick --json "$RES/kbench.json" >"$RES/kbench.log" 2>&1; then cat "$RES/kbench.log"
else rm -f "$RES/kbench.json"; skip kbench "$(tail -n 1 "$RES/kbench.log")"; fi

# ---- 3. single stream per type ----
for t in $MODELS; do
  say "mbench $t"
  if run_for 200 "$BIN" mbench -m "$WORK/$PRESET.$t.gguf" --json "$RES/mbench-$t.json" >"$RES/mbench-$t.log" 2>&1; then
    cat "$RES/mbench-$t.log"
  else rm -f "$RES/mbench-$t.json"; skip "mbench $t" "$(tail -n 1 "$RES/mbench-$t.log")"; fi
done

Q8=$WORK/$PRESET.q8_0.gguf
# ---- 4. batch scaling through the engine (generate's own --bench modes) ----
if [ -s "$Q8" ]; then
  say "generate --bench 1,4,16,32 (128-token prompts, 128 new tokens each)"
  if run_for 300 "$BIN" generate -m "$Q8" --bench 1,4,16,32 --bench-prompt 128 --bench-gen 128 \
       >"$RES/generate-scaling.json" 2>"$RES/generate-scaling.log"; then cat "$RES/generate-scaling.log" >&2
  else rm -f "$RES/generate-scaling.json"; skip "batch scaling" "$(tail -n 1 "$RES/generate-scaling.log")"; fi
  say "generate --bench-ttft (cold 50-token prompt vs 1,000 cached prefix tokens)"
  if run_for 180 "$BIN" generate -m "$Q8" --bench-ttft >"$RES/generate-ttft.json" 2>"$RES/generate-ttft.log"; then
    cat "$RES/generate-ttft.log" >&2
  else rm -f "$RES/generate-ttft.json"; skip "prefix-cache TTFT" "$(tail -n 1 "$RES/generate-ttft.log")"; fi
else skip "batch scaling" "needs the q8_0 model"; fi

# ---- 5. serving sweep ----
serve_sweep() {
  PORT=${BENCH_PORT:-}
  if [ -z "$PORT" ]; then
    for p in $(seq 18080 18099); do
      curl -s -m 1 -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null || { PORT=$p; break; }
    done
  fi
  [ -n "$PORT" ] || { skip "serving sweep" "no free port in 18080..18099"; return; }
  URL=http://127.0.0.1:$PORT
  say "serve $Q8 on $URL"
  "$BIN" serve -m "$Q8" --host 127.0.0.1 --port "$PORT" --model-name "$PRESET-q8_0" >"$RES/serve.log" 2>&1 &
  SPID=$!
  ready=0
  for i in $(seq 1 120); do
    kill -0 $SPID 2>/dev/null || break
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && { ready=1; break; }
    sleep 1
  done
  if [ $ready = 0 ]; then
    skip "serving sweep" "server did not become ready: $(tail -n 1 "$RES/serve.log")"
  else
    for wl in chat-shared-prefix mixed-lengths; do
      # calibrate: 3 requests one at a time give single-stream latency; the sweep spans
      # 0.5x..4x that single-stream request rate, SLOs = 3x single TTFT p50, 2x TPOT p50
      if ! run_for 180 "$BIN" bench --url "$URL" --workload $wl --concurrency 1 --requests 3 --seed 100 --timeout 120 \
           --out "$RES/calib-$wl.json" >"$RES/calib-$wl.log" 2>&1; then
        skip "sweep $wl" "calibration failed: $(tail -n 1 "$RES/calib-$wl.log")"; continue
      fi
      set -- $(node bench/report.mjs calib "$RES/calib-$wl.json")
      [ $# = 3 ] || { skip "sweep $wl" "calibration gave no numbers"; continue; }
      say "sweep $wl: rates $1, SLO TTFT $2 ms, TPOT $3 ms"
      if run_for 330 "$BIN" bench --url "$URL" --workload $wl --sweep "$1" --requests 10 --slo-ttft "$2" --slo-tpot "$3" \
           --timeout 120 --out "$RES/sweep-$wl.json" >"$RES/sweep-$wl.log" 2>&1; then :; else
        skip "sweep $wl" "bench exited non-zero (partial results kept): $(tail -n 1 "$RES/sweep-$wl.log")"
      fi
      grep -E "Arrivals|Request throughput|Goodput|^TTFT|^TPOT" "$RES/sweep-$wl.log" >&2
    done
  fi
  kill -TERM $SPID 2>/dev/null
  for i in $(seq 1 20); do kill -0 $SPID 2>/dev/null || break; sleep 0.5; done
  kill -KILL $SPID 2>/dev/null
  wait $SPID 2>/dev/null
}
if [ -s "$Q8" ] && command -v node >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then serve_sweep
else skip "serving sweep" "needs the q8_0 model, node and curl"; fi

# ---- 6. summary ----
if command -v node >/dev/null 2>&1; then
  node bench/report.mjs summary "$RES" > "$RES/summary.md" && say "wrote $RES/summary.md" && cat "$RES/summary.md"
fi
say "done in $(( $(date +%s) - START )) s"
