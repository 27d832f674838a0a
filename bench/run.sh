#!/bin/sh
# bench/run.sh — `make bench`: the whole benchmark in one command (< 40 min on 2 cores).
#   1. models: qwen2.5-0.5b preset (random weights, GPT-2 vocab) as q8_0 / q4_0 / q4_k_m
#      in bench/work/ (git-ignored; reused when present)
#   2. swiftlet kbench --json                      -> bench/results/kbench.json
#   3. single stream, prefill 512 / decode 128: swiftlet mbench --json per type
#      -> bench/results/mbench-TYPE.json, and the newer families at their real shapes:
#      llama-3.2-1b Q4_K_M (rope_freqs, Llama 3 vocab; the fourth file of issue 15's table)
#      and qwen3-0.6b Q8_0 (Qwen3 vocab) -> mbench-llama-3.2-1b.q4_k_m.json,
#      mbench-qwen3-0.6b.q8_0.json (BENCH_FAMILIES=0 skips them; default 0 for
#      BENCH_PRESET=tiny); then single.json: per file prefill / decode tok/s, decode GB/s
#      and % of the read bandwidth kbench measured, next to issue 15's ik_llama.cpp figures
#      and goals
#   4. batch scaling: swiftlet generate --bench 1,4,16,32 (aggregate decode tok/s) and
#      --bench-ttft (cold vs prefix-cached TTFT) -> bench/results/generate-{scaling,ttft}.json
#   4b. KV cache q8_0 vs f16 at one --kv-mem: capacity and decode tok/s -> generate-kv-*.json
#   4c. structured outputs (bench/grammar/run.sh): grammar mask time per token and schema
#      compile time on the qwen2.5-0.5b vocabulary (151,936 ids), decode tok/s with and
#      without a tool-call schema at 1 and 16 sequences -> structured-*.json
#   5. serving: swiftlet serve (q8_0) on a loopback port, once with --policy fcfs and once
#      with --policy slo, swiftlet bench --sweep --send-slo on chat-shared-prefix and
#      mixed-lengths -> bench/results/sweep-WORKLOAD-POLICY.{json,svg}, compare-WORKLOAD.svg
#   5b. the single-sequence tax (section "tax"): mbench decode vs generate --bench 1 vs a
#      lone streaming client of `serve` (bench/tax.mjs), same 128-token prompt / 128 new
#      tokens, BENCH_TAX_ROUNDS (default 3) back-to-back rounds -> bench/results/tax.json
#   6. bench/results/summary.md (bench/report.mjs, node)
# Each section is skipped with a message when its command fails (or is not built yet),
# and every command runs under a timeout taken from one overall budget.
# Environment: SWIFTLET_BIN (default build/swiftlet), BENCH_BUDGET_S (default 2520: a cap; a run takes ~39 min),
# BENCH_PORT (default: first free of 18080..18099), SWIFTLET_THREADS (passed through),
# BENCH_PRESET (default qwen2.5-0.5b; e.g. `BENCH_PRESET=tiny make bench` is a one-minute
# smoke run of the whole pipeline — its figures are not comparable with llama.cpp's),
# BENCH_WORKLOADS (default "chat-shared-prefix mixed-lengths": the serving sweep's workloads),
# BENCH_SWEEP_MULT (default 1.5,2,3,4,6: sweep rates as multiples of the single-stream
# request rate), BENCH_SWEEP_REQUESTS (default 60 per rate), BENCH_SLO_TTFT_X and
# BENCH_SLO_TPOT_X (default 3 and 3: SLOs as multiples of single-stream TTFT / TPOT p50),
# BENCH_RESULTS (default bench/results; emptied of *.json/*.svg/*.log first).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${SWIFTLET_BIN:-build/swiftlet}
WORK=bench/work
RES=${BENCH_RESULTS:-bench/results}
VOCAB=../shared/vocab/ggml-vocab-gpt-2.gguf
PRESET=${BENCH_PRESET:-qwen2.5-0.5b}
BUDGET=${BENCH_BUDGET_S:-2520}
START=$(date +%s)
mkdir -p "$WORK" "$RES"
# BENCH_SECTIONS (default all: "kernels single scaling kv structured serving tax") runs only
# the listed sections; the results of the others are kept as they are (summary.md uses them all).
SECTIONS=${BENCH_SECTIONS:-kernels single scaling kv structured serving tax}
has() { case " $SECTIONS " in *" $1 "*) return 0 ;; esac; return 1; }
if [ -z "${BENCH_SECTIONS:-}" ]; then
  rm -f "$RES"/*.json "$RES"/*.jsonl "$RES"/*.log "$RES"/*.svg "$RES"/summary.md "$RES"/skipped.txt
else
  has kernels && rm -f "$RES"/kbench.*
  has single && rm -f "$RES"/mbench-* "$RES"/single.json
  has scaling && rm -f "$RES"/generate-scaling.* "$RES"/generate-ttft.*
  has kv && rm -f "$RES"/generate-kv-*
  has structured && rm -f "$RES"/structured-*
  has serving && rm -f "$RES"/sweep-* "$RES"/compare-* "$RES"/calib-* "$RES"/serve-fcfs.* "$RES"/serve-slo.*
  has tax && rm -f "$RES"/tax* "$RES"/serve-tax.*
  rm -f "$RES"/summary.md "$RES"/skipped.txt
fi
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
if ! has kernels; then :
elif say "kbench"; run_for 150 "$BIN" kbench --quick --json "$RES/kbench.json" >"$RES/kbench.log" 2>&1; then cat "$RES/kbench.log"
else rm -f "$RES/kbench.json"; skip kbench "$(tail -n 1 "$RES/kbench.log")"; fi

# ---- 3. single stream per type ----
MODELS_RUN=$MODELS
has single || MODELS_RUN=""
for t in $MODELS_RUN; do
  say "mbench $t (prefill 512, decode 128)"
  if run_for 200 "$BIN" mbench -m "$WORK/$PRESET.$t.gguf" --prompt 512 --gen 128 --json "$RES/mbench-$t.json" >"$RES/mbench-$t.log" 2>&1; then
    cat "$RES/mbench-$t.log"
  else rm -f "$RES/mbench-$t.json"; skip "mbench $t" "$(tail -n 1 "$RES/mbench-$t.log")"; fi
done
# the newer families, single stream only (preset.type vocab)
FAMILIES="llama-3.2-1b.q4_k_m:ggml-vocab-llama3.gguf qwen3-0.6b.q8_0:ggml-vocab-qwen3.gguf"
FAMILIES_DEFAULT=1
[ "$PRESET" = qwen2.5-0.5b ] || FAMILIES_DEFAULT=0
[ "${BENCH_FAMILIES:-$FAMILIES_DEFAULT}" = 0 ] && FAMILIES="" && has single && skip "single stream of the newer families" "BENCH_FAMILIES=0 (default for BENCH_PRESET=$PRESET)"
has single || FAMILIES=""
for f in $FAMILIES; do
  pt=${f%%:*}; v=../shared/vocab/${f#*:}; p=${pt%.*}; t=${pt##*.}; m=$WORK/$pt.gguf
  if [ ! -s "$m" ]; then
    say "generating $m"
    if run_for 300 "$BIN" gen-model --preset "$p" --type "$t" --vocab "$v" -o "$m.tmp" >"$RES/gen-model-$pt.log" 2>&1 \
       && mv "$m.tmp" "$m"; then :; else
      rm -f "$m.tmp"; skip "model $pt" "gen-model failed: $(tail -n 1 "$RES/gen-model-$pt.log")"; continue
    fi
  fi
  say "mbench $pt (prefill 512, decode 128)"
  if run_for 300 "$BIN" mbench -m "$m" --prompt 512 --gen 128 --json "$RES/mbench-$pt.json" >"$RES/mbench-$pt.log" 2>&1; then
    cat "$RES/mbench-$pt.log"
  else rm -f "$RES/mbench-$pt.json"; skip "mbench $pt" "$(tail -n 1 "$RES/mbench-$pt.log")"; fi
done

# the issue-15 table of the files run (decode GB/s, % of kbench's read bandwidth, goals)
if has single && command -v node >/dev/null 2>&1; then
  node bench/report.mjs single "$RES" >"$RES/single.json" || rm -f "$RES/single.json"
fi

Q8=$WORK/$PRESET.q8_0.gguf
# ---- 4. batch scaling through the engine (generate's own --bench modes) ----
if ! has scaling; then :
elif [ -s "$Q8" ]; then
  say "generate --bench 1,4,16,32 (128-token prompts, 128 new tokens each)"
  if run_for 300 "$BIN" generate -m "$Q8" --bench 1,4,16,32 --bench-prompt 128 --bench-gen 128 \
       >"$RES/generate-scaling.json" 2>"$RES/generate-scaling.log"; then cat "$RES/generate-scaling.log" >&2
  else rm -f "$RES/generate-scaling.json"; skip "batch scaling" "$(tail -n 1 "$RES/generate-scaling.log")"; fi
  say "generate --bench-ttft (cold 50-token prompt vs 1,000 cached prefix tokens)"
  if run_for 180 "$BIN" generate -m "$Q8" --bench-ttft >"$RES/generate-ttft.json" 2>"$RES/generate-ttft.log"; then
    cat "$RES/generate-ttft.log" >&2
  else rm -f "$RES/generate-ttft.json"; skip "prefix-cache TTFT" "$(tail -n 1 "$RES/generate-ttft.log")"; fi
else skip "batch scaling" "needs the q8_0 model"; fi

# ---- 4b. KV cache q8_0 vs f16 (section "kv") ----
# generate --bench 1,16 on the q8_0 model with the same --kv-mem (BENCH_KV_MEM MB, default 64)
# once per --kv-type: decode tok/s and the pool's capacity in tokens / whole sequences
# (128 + 64 tokens) -> bench/results/generate-kv-{f16,q8_0}.json
KV_MEM=${BENCH_KV_MEM:-64}
if ! has kv; then :
elif [ -s "$Q8" ]; then
  for KT in f16 q8_0; do
    say "generate --kv-type $KT --kv-mem $KV_MEM --bench 1,16 (128-token prompts, 64 new tokens)"
    if run_for 240 "$BIN" generate -m "$Q8" --kv-type $KT --kv-mem "$KV_MEM" --bench 1,16 --bench-prompt 128 --bench-gen 64 \
         >"$RES/generate-kv-$KT.json" 2>"$RES/generate-kv-$KT.log"; then cat "$RES/generate-kv-$KT.log" >&2
    else rm -f "$RES/generate-kv-$KT.json"; skip "KV $KT" "$(tail -n 1 "$RES/generate-kv-$KT.log")"; fi
  done
else skip "KV q8_0 vs f16" "needs the q8_0 model"; fi

# ---- 4c. structured outputs (section "structured"): bench/grammar/run.sh ----
if has structured; then
  say "structured outputs: grammar masks / compile, decode with and without a schema (bench/grammar/run.sh)"
  if run_for 900 env SWIFTLET_BIN="$BIN" BENCH_RESULTS="$RES" sh bench/grammar/run.sh 2>"$RES/structured.log"; then
    grep -E "^(compile|mask|bench:)" "$RES/structured.log" >&2
  else skip "structured" "bench/grammar/run.sh: $(grep FAILED "$RES/structured.log" | tail -n 1)"; fi
fi

# ---- 5. serving sweep: the same binary under --policy fcfs and --policy slo ----
# Per workload: a fresh `serve --policy fcfs`, calibration (3 requests one at a time, seed
# 100) giving the rates (BENCH_SWEEP_MULT x the single-stream request rate) and the SLOs
# (BENCH_SLO_TTFT_X x its TTFT p50, BENCH_SLO_TPOT_X x its TPOT p50), the sweep; then a
# fresh `serve --policy slo` gets the same calibration requests (so both servers see the
# same traffic) and the same sweep: same seeds, rates, SLOs, --send-slo in both.
# Time: one point takes about N / min(rate, capacity) seconds plus the drain. With 60
# requests and rates 1.5..6x on qwen2.5-0.5b (single-stream request rate ~0.38 req/s on
# chat-shared-prefix, ~0.21 on mixed-lengths; capacity ~3.5x that) a policy's sweep takes
# ~320 s on chat-shared-prefix and ~570 s on mixed-lengths: ~31 min of the 40-minute budget
# for the four sweeps, after ~7 min for the sections before (models already generated);
# the budget (42 min) leaves the sweeps their share with a few minutes to spare.
# The 0.5x and 1x points would add ~15 min at 60 requests, so the default starts at 1.5x.
SWEEP_MULT=${BENCH_SWEEP_MULT:-1.5,2,3,4,6}
SWEEP_N=${BENCH_SWEEP_REQUESTS:-60}
SLO_TTFT_X=${BENCH_SLO_TTFT_X:-3}
SLO_TPOT_X=${BENCH_SLO_TPOT_X:-3}
# the slo server's own options (BENCH_SLO_SERVE_ARGS): refuse what cannot meet its TTFT
SLO_SERVE_ARGS=${BENCH_SLO_SERVE_ARGS:---slo-infeasible reject}
# start_server POLICY [LOG]: serve q8_0 on $URL in the background (SPID); 0 once /health
# says 200; its output goes to $RES/serve-LOG.log (LOG defaults to POLICY)
start_server() {
  say "serve --policy $1 $Q8 on $URL"
  extra=""
  [ "$1" = slo ] && extra=$SLO_SERVE_ARGS
  "$BIN" serve -m "$Q8" --host 127.0.0.1 --port "$PORT" --model-name "$PRESET-q8_0" --policy "$1" $extra \
    >>"$RES/serve-${2:-$1}.log" 2>&1 &
  SPID=$!
  for i in $(seq 1 120); do
    kill -0 $SPID 2>/dev/null || return 1
    [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$URL/health")" = 200 ] && return 0
    sleep 1
  done
  return 1
}
stop_server() {
  kill -TERM $SPID 2>/dev/null
  for i in $(seq 1 20); do kill -0 $SPID 2>/dev/null || break; sleep 0.5; done
  kill -KILL $SPID 2>/dev/null
  wait $SPID 2>/dev/null
  # the port must be free again before the next server binds it
  for i in $(seq 1 20); do curl -s -m 1 -o /dev/null "$URL/health" 2>/dev/null || break; sleep 0.5; done
}
# pick_port: PORT (BENCH_PORT or the first free of 18080..18099) and URL; 1 when none is free
pick_port() {
  PORT=${BENCH_PORT:-}
  if [ -z "$PORT" ]; then
    for p in $(seq 18080 18099); do
      curl -s -m 1 -o /dev/null "http://127.0.0.1:$p/" 2>/dev/null || { PORT=$p; break; }
    done
  fi
  URL=http://127.0.0.1:$PORT
  [ -n "$PORT" ]
}
serve_sweep() {
  pick_port || { skip "serving sweep" "no free port in 18080..18099"; return; }
  # sweep timeouts share what is left of the budget by weight (mixed-lengths runs about
  # twice as long as chat-shared-prefix); weight still to come:
  wleft=6
  for wl in ${BENCH_WORKLOADS:-chat-shared-prefix mixed-lengths}; do
    # weight, and the "short prompt" threshold for the short-prompt TTFT: every
    # chat-shared-prefix prompt holds a ~300-token system prompt, so there short means
    # <= 512 tokens (a first turn, 320-380 tokens, or a short second one)
    w=1 short=512
    [ $wl = mixed-lengths ] && w=2 short=256
    rates=""
    for pol in fcfs slo; do
      if ! start_server $pol; then
        skip "sweep $wl $pol" "server did not become ready: $(tail -n 1 "$RES/serve-$pol.log")"; stop_server
        wleft=$((wleft - w)); continue
      fi
      if ! run_for 180 "$BIN" bench --url "$URL" --workload $wl --concurrency 1 --requests 3 --seed 100 --timeout 120 \
           --out "$RES/calib-$wl-$pol.json" >"$RES/calib-$wl-$pol.log" 2>&1; then
        skip "sweep $wl $pol" "calibration failed: $(tail -n 1 "$RES/calib-$wl-$pol.log")"; stop_server
        wleft=$((wleft - w)); continue
      fi
      if [ -z "$rates" ]; then
        set -- $(node bench/report.mjs calib "$RES/calib-$wl-$pol.json" "$SWEEP_MULT" "$SLO_TTFT_X" "$SLO_TPOT_X")
        if [ $# != 3 ]; then
          skip "sweep $wl" "calibration gave no numbers"; stop_server; wleft=$((wleft - 2 * w)); break
        fi
        rates=$1 slo_ttft=$2 slo_tpot=$3
      fi
      [ $wleft -lt $w ] && wleft=$w
      share=$(( ($(left) - 60) * w / wleft ))
      wleft=$((wleft - w))
      say "sweep $wl --policy $pol: rates $rates, SLO TTFT $slo_ttft ms, TPOT $slo_tpot ms, $SWEEP_N requests per rate (<= $share s)"
      # the arrivals alone take sum(N / rate): a sweep that cannot fit loses its last (highest) rates
      need=$(echo "$rates" | tr ',' '\n' | awk -v n="$SWEEP_N" '$1 > 0 {s += n / $1} END {printf "%d", s}')
      [ "${need:-0}" -gt "$share" ] && say "warning: the arrivals alone take ~$need s > $share s: the highest rates may be cut (raise BENCH_BUDGET_S or lower BENCH_SWEEP_REQUESTS)"
      if run_for "$share" "$BIN" bench --url "$URL" --workload $wl --sweep "$rates" --requests "$SWEEP_N" --seed 1 \
           --slo-ttft "$slo_ttft" --slo-tpot "$slo_tpot" --send-slo --short-prompt $short --timeout 300 \
           --out "$RES/sweep-$wl-$pol.json" >"$RES/sweep-$wl-$pol.log" 2>&1; then :; else
        skip "sweep $wl $pol" "bench exited non-zero (partial results kept): $(tail -n 1 "$RES/sweep-$wl-$pol.log")"
      fi
      grep -E "Arrivals|Request throughput|rejected|Goodput|SLO attainment|^TTFT" "$RES/sweep-$wl-$pol.log" >&2
      stop_server
    done
    node bench/report.mjs compare "$RES" $wl && say "wrote $RES/compare-$wl.svg"
  done
}
if ! has serving; then :
elif [ -s "$Q8" ] && command -v node >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then serve_sweep
else skip "serving sweep" "needs the q8_0 model, node and curl"; fi

# ---- 5b. the single-sequence tax (section "tax", issue 14) ----
# One sequence, the same shape three ways, back to back in each round: the model alone
# (mbench --prompt 128 --gen 128), the engine (generate --bench 1, 128-token prompt, 128
# new tokens) and a lone streaming client of a fresh `serve --policy fcfs` (bench/tax.mjs:
# TPOT p50 of 3 streamed /v1/completions of 128 tokens after a warm-up one). report.mjs
# tax gathers the rounds into tax.json: per round the engine / mbench decode rate and
# mbench ms-per-token / client TPOT, and their medians (goal: >= 0.95 and >= 0.9).
TAX_ROUNDS=${BENCH_TAX_ROUNDS:-3}
tax_rounds() {
  pick_port || { skip "tax" "no free port in 18080..18099"; return; }
  for r in $(seq 1 "$TAX_ROUNDS"); do
    say "tax round $r/$TAX_ROUNDS: mbench, generate --bench 1, lone streaming client (load $(cut -d' ' -f1 /proc/loadavg))"
    cut -d' ' -f1 /proc/loadavg > "$RES/tax-load-$r.txt"
    run_for 120 "$BIN" mbench -m "$Q8" --prompt 128 --gen 128 --json "$RES/tax-mbench-$r.json" >"$RES/tax-mbench-$r.log" 2>&1 \
      || { rm -f "$RES/tax-mbench-$r.json"; skip "tax round $r mbench" "$(tail -n 1 "$RES/tax-mbench-$r.log")"; }
    run_for 120 "$BIN" generate -m "$Q8" --bench 1 --bench-prompt 128 --bench-gen 128 \
      >"$RES/tax-generate-$r.json" 2>"$RES/tax-generate-$r.log" \
      || { rm -f "$RES/tax-generate-$r.json"; skip "tax round $r generate" "$(tail -n 1 "$RES/tax-generate-$r.log")"; }
    if start_server fcfs tax; then
      run_for 180 node bench/tax.mjs "$URL" 128 128 4 "$RES/tax-client-$r.json" >"$RES/tax-client-$r.log" 2>&1 \
        || { rm -f "$RES/tax-client-$r.json"; skip "tax round $r client" "$(tail -n 1 "$RES/tax-client-$r.log")"; }
    else skip "tax round $r client" "server did not become ready: $(tail -n 1 "$RES/serve-tax.log")"; fi
    stop_server
  done
  node bench/report.mjs tax "$RES" > "$RES/tax.json" && node bench/report.mjs tax-line "$RES" >&2
}
if ! has tax; then :
elif [ -s "$Q8" ] && command -v node >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then tax_rounds
else skip "tax" "needs the q8_0 model, node and curl"; fi

# ---- 6. summary ----
if command -v node >/dev/null 2>&1; then
  node bench/report.mjs summary "$RES" > "$RES/summary.md" && say "wrote $RES/summary.md" && cat "$RES/summary.md"
fi
say "done in $(( $(date +%s) - START )) s"
