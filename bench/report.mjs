// bench/report.mjs — node helper for bench/run.sh (no dependencies):
//   node bench/report.mjs calib FILE.json [MULTS [TTFT_X [TPOT_X]]]
//       from a closed-loop, concurrency-1 `swiftlet bench` report: "R1,R2,... SLO_TTFT_MS
//       SLO_TPOT_MS" — rates MULTS (default 0.5,1,2,3,4,6) x the single-stream request rate,
//       SLOs TTFT_X (default 3) x its TTFT p50 and TPOT_X (default 3) x its TPOT p50
//   node bench/report.mjs compare DIR WORKLOAD
//       DIR/compare-WORKLOAD.svg from DIR/sweep-WORKLOAD-{fcfs,slo}.json: goodput, SLO
//       attainment and short-prompt p99 TTFT (with the objective) vs offered rate, both policies
//   node bench/report.mjs tax DIR           DIR/tax.json on stdout, from the tax-*-R.json rounds
//   node bench/report.mjs tax-line DIR      one line on the tax rounds (for run.sh's log)
//   node bench/report.mjs single DIR        the single-stream table of issue 15 as JSON on stdout
//       (DIR/single.json): per file prefill / decode tok/s, decode GB/s, % of kbench's read
//       bandwidth, ik_llama.cpp's figures and the goals
//   node bench/report.mjs summary DIR       bench/results/summary.md on stdout
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { execSync } from 'node:child_process';
import os from 'node:os';

// Issue 15's single-stream table (tok/s, prefill 512 / decode 128, 2 threads): the fastest
// CPU fork of llama.cpp (ik_llama.cpp, best of its modes) on the same gen-model files, and
// the goals. key: the mbench-KEY.json a row reads (qwen2.5-0.5b preset types, then a family).
const SINGLE = [
  { key: 'q8_0', file: '0.5B Q8_0', ik: { prefill: 496, decode: 79 }, goal: { prefill: 620, decode: 90 } },
  { key: 'q4_0', file: '0.5B Q4_0', ik: { prefill: 508, decode: 92 }, goal: { prefill: 560, decode: 100 } },
  { key: 'q4_k_m', file: '0.5B Q4_K_M', ik: { prefill: 487, decode: 82 }, goal: { prefill: 540, decode: 92 } },
  { key: 'llama-3.2-1b.q4_k_m', file: '1B Q4_K_M (llama-3.2-1b)', ik: { prefill: 208, decode: 55 }, goal: { prefill: 230, decode: 60 } },
  { key: 'qwen3-0.6b.q8_0', file: 'qwen3-0.6b Q8_0 (not in the issue)' },
];
const SCALING_GOAL = { concurrency: 32, decode_tok_s: 500 };

const sig3 = (x) => Number(x.toPrecision(3));

function calib(file, mults = '0.5,1,2,3,4,6', ttftX = '3', tpotX = '3') {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const e2e = j.e2el_ms?.mean, ttft = j.ttft_ms?.p50, tpot = j.tpot_ms?.p50;
  const m = mults.split(',').map(Number), tx = Number(ttftX), px = Number(tpotX);
  if (!(e2e > 0) || !(ttft > 0) || !(tpot > 0) || !(j.completed > 0)) process.exit(1);
  if (!m.length || m.some((x) => !(x > 0)) || !(tx > 0) || !(px > 0)) process.exit(2);
  const c1 = 1000 / e2e;
  const rates = [...new Set(m.map((x) => sig3(x * c1)))];
  console.log(`${rates.join(',')} ${Math.ceil(tx * ttft)} ${Math.ceil(10 * px * tpot) / 10}`);
}

const readJson = (p) => { try { return JSON.parse(readFileSync(p, 'utf8')); } catch { return null; } };
const fmt = (x, d = 1) => (typeof x === 'number' && isFinite(x) ? x.toFixed(d) : '–');

// Numeric leaves of a JSON value as [path, value], paths joined with '.'.
function leaves(v, path = '', out = []) {
  if (typeof v === 'number') out.push([path, v]);
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) leaves(x, path ? `${path}.${k}` : k, out);
  return out;
}
// First numeric field whose path matches every `want` regex and no `avoid` regex.
function pick(obj, want, avoid = /$^/) {
  const hit = leaves(obj).find(([p]) => want.every((re) => re.test(p)) && !avoid.test(p));
  return hit ? hit[1] : undefined;
}

function sh(cmd) { try { return execSync(cmd, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim(); } catch { return ''; } }

// Structured outputs (bench/grammar/run.sh): structured-mask-{tool,json}[-warmup].json from
// `swiftlet grammar --bench --json`, structured-decode-{plain,schema}.json from
// `swiftlet generate --bench 1,16 [--bench-schema]` (one JSON line per concurrency).
function structuredSection(dir, L) {
  L.push('## Structured outputs (`bench/grammar/run.sh`: grammar masks, compile, decode under a schema)', '');
  const masks = [['tool', 'tool-call schema'], ['json', 'json_object']];
  let any = false;
  const rows = [];
  for (const [k, name] of masks) {
    for (const w of ['', '-warmup']) {
      const m = readJson(`${dir}/structured-mask-${k}${w}.json`);
      if (!m) continue;
      any = true;
      for (const pass of ['cold', 'warm']) {
        const p = m[pass];
        if (!p) continue;
        rows.push(`| ${name} | ${w ? 'vocab warmed (as serve)' : 'fresh process'} | ${pass} | ${p.masks} | ${fmt(p.p50_us, 1)} | ${fmt(p.p99_us, 1)} | ` +
          `${fmt(p.cpu_p50_us, 1)} | ${fmt(p.cpu_p99_us, 1)} | ${p.accept ? 'accept' : 'REJECT'} |`);
      }
    }
  }
  const tool = readJson(`${dir}/structured-mask-tool.json`);
  if (any) {
    if (tool) L.push(`Vocabulary ${tool.vocab} tokens. Tool-call schema ${tool.source_bytes} bytes, ${tool.states} automaton states: ` +
      `compile p50 ${fmt(tool.compile_p50_ms, 2)} ms wall, ${fmt(tool.compile_cpu_p50_ms, 2)} ms CPU over ${tool.compiles} compiles (first ${fmt(tool.compile_first_ms, 2)} ms).`, '');
    L.push('Mask time per sequence per token (µs; cold = first sequence on a new grammar, masks being built; warm = a second sequence):', '');
    L.push('| grammar | process | pass | masks | p50 wall | p99 wall | p50 CPU | p99 CPU | instance |', '|---|---|---|---:|---:|---:|---:|---:|---|');
    L.push(...rows);
  } else L.push('_masks not run (see skipped sections)_');
  const dec = {};
  for (const mode of ['plain', 'schema']) {
    try {
      dec[mode] = readFileSync(`${dir}/structured-decode-${mode}.json`, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    } catch { dec[mode] = null; }
  }
  if (dec.plain?.length && dec.schema?.length) {
    const r0 = dec.plain[0];
    L.push('', `Decode under the tool-call schema vs unconstrained (qwen2.5-0.5b q8_0, 151,936-token vocabulary, random weights; ${r0.prompt}-token prompts, ${r0.gen} new tokens, greedy):`, '');
    L.push('| sequences | unconstrained tok/s | with schema tok/s | ratio |', '|---:|---:|---:|---:|');
    for (const r of dec.plain) {
      const s = dec.schema.find((x) => x.concurrency === r.concurrency);
      L.push(`| ${r.concurrency} | ${fmt(r.decode_tok_s, 2)} | ${fmt(s?.decode_tok_s, 2)} | ${s && r.decode_tok_s ? fmt(100 * s.decode_tok_s / r.decode_tok_s, 1) + '%' : '–'} |`);
    }
  } else L.push('', '_decode comparison not run (see skipped sections)_');
  L.push('');
}

// Issue 15's table from DIR/mbench-*.json: read bandwidth from kbench.json (the issue's
// roofline) when there, else the one mbench measured itself. Another preset than
// qwen2.5-0.5b (meta.json) gets its own labels and no figures to compare with.
function singleRows(dir) {
  const kb = readJson(`${dir}/kbench.json`);
  const preset = readJson(`${dir}/meta.json`)?.preset || 'qwen2.5-0.5b';
  const rows = [];
  for (const s of SINGLE) {
    const m = readJson(`${dir}/mbench-${s.key}.json`);
    if (!m) continue;
    const ours = !s.key.includes('.'); /* a type of the preset, not a family file */
    const f = ours && preset !== 'qwen2.5-0.5b' ? { file: `${preset} ${s.key.toUpperCase()}` } : s;
    const bw = kb?.read_bandwidth_gbs ?? m.read_bandwidth_gbs, gbs = m.decode_weight_gbs;
    const r = { file: f.file, key: s.key, prefill_tok_s: m.prompt_tok_s, decode_tok_s: m.decode_tok_s,
      prompt_tokens: m.prompt_tokens, gen_tokens: m.gen_tokens, decode_weight_gbs: gbs,
      read_bandwidth_gbs: bw, read_bandwidth_from: kb?.read_bandwidth_gbs ? 'kbench' : 'mbench',
      decode_bw_pct: gbs && bw ? 100 * gbs / bw : null };
    if (f.ik) Object.assign(r, { ik_llama: f.ik, goal: f.goal, prefill_goal_met: m.prompt_tok_s >= f.goal.prefill,
      decode_goal_met: m.decode_tok_s >= f.goal.decode });
    rows.push(r);
  }
  return rows;
}

function summary(dir) {
  const L = [];
  const cpu = (sh("lscpu | sed -n 's/^Model name: *//p'") || os.cpus()[0]?.model || '?').split('\n')[0];
  const cores = sh('nproc') || String(os.cpus().length);
  const commit = sh('git rev-parse --short HEAD') + (sh('git status --porcelain --untracked-files=no') ? ' (+ local changes)' : '');
  const meta = readJson(`${dir}/meta.json`) || {};
  L.push('# swiftlet benchmark summary', '');
  L.push('| | |', '|---|---|');
  L.push(`| machine | ${cpu}, ${cores} cores |`);
  L.push(`| date | ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC |`);
  L.push(`| git commit | ${commit || '?'} |`);
  if (typeof meta.loadavg_start === 'number')
    L.push(`| load average at start | ${meta.loadavg_start}${meta.loadavg_start >= 1 ? ' — other work was running: figures are pessimistic' : ''} |`);
  const preset = meta.preset || 'qwen2.5-0.5b';
  const comparable = preset === 'qwen2.5-0.5b';
  L.push(`| model | ${preset} preset, random weights, GPT-2 vocab (\`swiftlet gen-model\`) |`, '');

  const kb = readJson(`${dir}/kbench.json`);
  L.push('## Kernels (`swiftlet kbench`)', '');
  if (kb && Array.isArray(kb.results)) {
    L.push(`Read bandwidth ${fmt(kb.read_bandwidth_gbs)} GB/s, ${kb.threads} threads, ISA ${kb.isa}; GEMM with ${kb.gemm_tokens} tokens.`, '');
    L.push('| dtype | n_in x n_out | GEMV ms | GEMV GB/s | % of bandwidth | GEMM GOPS |', '|---|---|---:|---:|---:|---:|');
    for (const r of kb.results)
      L.push(`| ${r.dtype} | ${r.n_in}x${r.n_out} | ${fmt(r.gemv_ms, 3)} | ${fmt(r.gemv_gbs)} | ${fmt(r.gemv_bw_pct, 0)}% | ${fmt(r.gemm_gops)} |`);
  } else L.push('_not run (see skipped sections)_');
  L.push('');

  L.push('## Single stream (`swiftlet mbench`, prefill 512 / decode 128) vs. issue 15', '');
  const srows = singleRows(dir);
  if (srows.length) {
    const r0 = srows[0];
    L.push(`Decode GB/s: matmul weight bytes read per token x decode tok/s; % of the ${r0.read_bandwidth_from === 'kbench' ? 'read bandwidth `kbench` measured' : 'read bandwidth mbench measured'}` +
      ` (${fmt(r0.read_bandwidth_gbs)} GB/s). ik_llama.cpp: the fastest CPU fork of llama.cpp, best of its modes, same files, 2 threads (issue 15).`, '');
    L.push('| file | prefill tok/s | decode tok/s | decode GB/s | % of read bandwidth | ik_llama.cpp prefill / decode | goal prefill / decode | goal met |',
      '|---|---:|---:|---:|---:|---:|---:|---|');
    const met = (r) => !r.goal ? '' : !comparable ? '– (not this preset)' :
      `${r.prefill_goal_met ? 'prefill yes' : 'prefill NO'}, ${r.decode_goal_met ? 'decode yes' : 'decode NO'}`;
    for (const r of srows)
      L.push(`| ${r.file} | ${fmt(r.prefill_tok_s)} | ${fmt(r.decode_tok_s)} | ${fmt(r.decode_weight_gbs)} | ${fmt(r.decode_bw_pct, 0)}% | ` +
        `${r.ik_llama ? `${r.ik_llama.prefill} / ${r.ik_llama.decode}` : ''} | ${r.goal ? `≥ ${r.goal.prefill} / ≥ ${r.goal.decode}` : ''} | ${met(r)} |`);
    if (!comparable) L.push('', `The ${preset} preset is not the issue's shape: its figures are not comparable with the goals.`);
  } else L.push('_mbench not run (see skipped sections)_');
  L.push('');

  L.push('## Batch scaling (`swiftlet generate --bench`, q8_0)', '');
  // generate --bench prints one JSON object per concurrency, one per line
  let sc = null;
  try {
    const rows = readFileSync(`${dir}/generate-scaling.json`, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    if (rows.length) sc = { prompt: rows[0].prompt, gen: rows[0].gen, results: rows };
  } catch { sc = null; }
  if (sc && Array.isArray(sc.results)) {
    L.push(`${sc.prompt}-token prompts, ${sc.gen} new tokens per sequence; aggregate decode tok/s over the window in which all sequences decode.`, '');
    L.push('| sequences | aggregate decode tok/s | vs 1 sequence | preemptions |', '|---:|---:|---:|---:|');
    for (const r of sc.results) L.push(`| ${r.concurrency} | ${fmt(r.decode_tok_s)} | ${fmt(r.speedup, 2)}x | ${r.preemptions ?? '–'} |`);
    const g = sc.results.find((r) => r.concurrency === SCALING_GOAL.concurrency);
    if (g && comparable) L.push('', `Issue 15's goal at ${SCALING_GOAL.concurrency} sequences: ≥ ${SCALING_GOAL.decode_tok_s} tok/s aggregate — ` +
      `${g.decode_tok_s >= SCALING_GOAL.decode_tok_s ? 'met' : 'NOT met'} (${fmt(g.decode_tok_s)}).`);
  } else L.push('_not run (see skipped sections)_');
  const tt = readJson(`${dir}/generate-ttft.json`);
  if (tt && tt.cold_ttft_ms) {
    L.push('', `Prefix cache: TTFT of a cold ${tt.cold_tokens}-token prompt ${fmt(tt.cold_ttft_ms)} ms; ` +
      `a ${tt.prefix_tokens}-token prompt with ${tt.cached_tokens} cached tokens ${fmt(tt.cached_ttft_ms)} ms (${fmt(tt.ratio, 2)}x the cold one).`);
  }
  L.push('');

  // KV cache q8_0 vs f16 (generate-kv-TYPE.json: one JSON line per concurrency)
  const kvRows = {};
  for (const kt of ['f16', 'q8_0']) {
    try {
      kvRows[kt] = readFileSync(`${dir}/generate-kv-${kt}.json`, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    } catch { kvRows[kt] = null; }
  }
  L.push('## KV cache: q8_0 vs f16 (`--kv-type`, same `--kv-mem`)', '');
  if (kvRows.f16?.length && kvRows.q8_0?.length) {
    const r0 = kvRows.f16[0];
    L.push(`${r0.prompt}-token prompts, ${r0.gen} new tokens; capacity = tokens the pool holds and whole sequences of that length.`, '');
    L.push('| KV type | pool tokens | sequences | decode tok/s (1 seq) | decode tok/s (16 seqs) |', '|---|---:|---:|---:|---:|');
    for (const kt of ['f16', 'q8_0']) {
      const rs = kvRows[kt], at = (c) => rs.find((r) => r.concurrency === c);
      L.push(`| ${kt} | ${rs[0].kv_tokens ?? '–'} | ${rs[0].kv_seqs ?? '–'} | ${fmt(at(1)?.decode_tok_s)} | ${fmt(at(16)?.decode_tok_s)} |`);
    }
    const a = kvRows.f16[0].kv_tokens, b = kvRows.q8_0[0].kv_tokens;
    if (a && b) L.push('', `q8_0 holds ${fmt(b / a, 2)}x the tokens of f16 at the same budget.`);
  } else L.push('_not run (see skipped sections)_');
  L.push('');

  structuredSection(dir, L);
  servingSection(dir, L);
  taxSection(dir, L);

  const sk = existsSync(`${dir}/skipped.txt`) ? readFileSync(`${dir}/skipped.txt`, 'utf8').trim() : '';
  L.push('## Skipped sections', '', sk ? sk.split('\n').map((l) => `- ${l}`).join('\n') : 'none', '');
  L.push(`Files: ${readdirSync(dir).filter((f) => /\.(json|svg)$/.test(f)).sort().join(', ')} (logs: *.log)`);
  console.log(L.join('\n'));
}

// ---- the single-sequence tax (issue 14): model alone vs engine vs a lone streaming client ----
const median = (a) => { const s = a.filter(finite).sort((x, y) => x - y), m = s.length >> 1; return !s.length ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const TAX_GOAL = { engine: 0.95, client: 0.9 };
function taxOf(dir) {
  const rounds = [];
  for (let r = 1; existsSync(`${dir}/tax-load-${r}.txt`); r++) {
    const mb = readJson(`${dir}/tax-mbench-${r}.json`), cl = readJson(`${dir}/tax-client-${r}.json`);
    let gen = null;
    try { gen = JSON.parse(readFileSync(`${dir}/tax-generate-${r}.json`, 'utf8').split('\n').find((l) => l.trim())); } catch { gen = null; }
    const mbTok = mb?.decode_tok_s ?? null, genTok = gen?.decode_tok_s ?? null, tpot = cl?.tpot_ms_p50 ?? null;
    const mbMs = mbTok ? 1000 / mbTok : null;
    rounds.push({ round: r, load: Number(readFileSync(`${dir}/tax-load-${r}.txt`, 'utf8')), mbench_decode_tok_s: mbTok,
      mbench_ms_per_token: mbMs, engine_decode_tok_s: genTok, client_tpot_ms_p50: tpot,
      engine_vs_mbench: mbTok && genTok ? genTok / mbTok : null, client_vs_mbench: mbMs && tpot ? mbMs / tpot : null });
  }
  const med = (k) => median(rounds.map((x) => x[k]));
  const t = { prompt_tokens: 128, gen_tokens: 128, rounds, goal: TAX_GOAL, mbench_decode_tok_s: med('mbench_decode_tok_s'),
    engine_decode_tok_s: med('engine_decode_tok_s'), client_tpot_ms_p50: med('client_tpot_ms_p50'),
    mbench_ms_per_token: med('mbench_ms_per_token'), engine_vs_mbench: med('engine_vs_mbench'), client_vs_mbench: med('client_vs_mbench') };
  t.engine_goal_met = finite(t.engine_vs_mbench) ? t.engine_vs_mbench >= TAX_GOAL.engine : null;
  t.client_goal_met = finite(t.client_vs_mbench) ? t.client_vs_mbench >= TAX_GOAL.client : null;
  return t;
}
const taxLine = (t) => `tax: engine 1-seq decode ${fmt(t.engine_decode_tok_s)} tok/s = ${fmt(t.engine_vs_mbench, 3)}x mbench's ${fmt(t.mbench_decode_tok_s)} ` +
  `(goal >= ${TAX_GOAL.engine}); lone streaming client TPOT p50 ${fmt(t.client_tpot_ms_p50, 2)} ms vs mbench ${fmt(t.mbench_ms_per_token, 2)} ms/token ` +
  `= ${fmt(t.client_vs_mbench, 3)}x its rate (goal >= ${TAX_GOAL.client}); medians of ${t.rounds.length} rounds`;
function taxSection(dir, L) {
  const t = readJson(`${dir}/tax.json`);
  L.push('## Single-sequence tax (issue 14: model alone vs engine vs a lone streaming client, q8_0)', '');
  if (!t || !t.rounds?.length) { L.push('_not run (see skipped sections)_', ''); return; }
  const goal = (ok) => (ok === null ? '–' : ok ? 'met' : '**not met**');
  L.push(`${t.prompt_tokens}-token prompt, ${t.gen_tokens} new tokens, one sequence, run back to back in each round: ` +
    '`swiftlet mbench` (model_forward alone), `swiftlet generate --bench 1` (the engine thread, scheduler, sampler), ' +
    'and `node bench/tax.mjs` streaming from a fresh `swiftlet serve` (HTTP, SSE; TPOT p50 at the client).', '');
  L.push('| round | load | mbench tok/s | mbench ms/token | engine tok/s | engine / mbench | client TPOT p50 ms | mbench ms / client TPOT |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of t.rounds)
    L.push(`| ${r.round} | ${fmt(r.load, 2)} | ${fmt(r.mbench_decode_tok_s)} | ${fmt(r.mbench_ms_per_token, 2)} | ${fmt(r.engine_decode_tok_s)} | ` +
      `${fmt(r.engine_vs_mbench, 3)} | ${fmt(r.client_tpot_ms_p50, 2)} | ${fmt(r.client_vs_mbench, 3)} |`);
  L.push(`| median | | ${fmt(t.mbench_decode_tok_s)} | ${fmt(t.mbench_ms_per_token, 2)} | ${fmt(t.engine_decode_tok_s)} | ${fmt(t.engine_vs_mbench, 3)} | ` +
    `${fmt(t.client_tpot_ms_p50, 2)} | ${fmt(t.client_vs_mbench, 3)} |`, '');
  L.push(`Goals: engine >= ${TAX_GOAL.engine}x mbench's decode rate: ${goal(t.engine_goal_met)}; client TPOT within 10% of mbench's ` +
    `ms/token (ratio >= ${TAX_GOAL.client}): ${goal(t.client_goal_met)}. Ratios are per round (back-to-back runs), then the median.`, '');
}

// ---- fcfs vs slo: the comparison chart and the acceptance check of issue 7 ----
const POLICIES = [{ name: 'fcfs', color: '#1f77b4' }, { name: 'slo', color: '#ff7f0e' }];
const xmlEsc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const finite = (x) => typeof x === 'number' && isFinite(x);
const sweepOf = (dir, wl, pol) => { const s = readJson(`${dir}/sweep-${wl}-${pol}.json`); return Array.isArray(s) && s.length ? s : null; };

// 1-2-5 step giving about 5 intervals up to max (as bench_svg.c)
function niceStep(max) {
  if (!(max > 0) || !isFinite(max)) return 1;
  const raw = max / 5, mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}
const tickText = (v, step) => v.toFixed(step >= 1 ? 0 : Math.min(6, Math.ceil(-Math.log10(step) - 1e-9)));

// One panel at x offset ox: series [{label, color, pts: [[x, y, tag?]]}], hlines [{y, label, color}];
// log: y on a log10 axis (non-positive values left out); yEnd: a fixed linear axis end.
function svgPanel(ox, { title, xlabel, ylabel, series, hlines = [], log = false, yEnd = 0 }) {
  const W = 460, H = 420, top = 56, ML = 72, MR = 22, MT = 62, MB = 58, O = [];
  const ok = (p) => finite(p[0]) && finite(p[1]) && (!log || p[1] > 0);
  const pts = series.flatMap((s) => s.pts.filter(ok));
  const ys = pts.map((p) => p[1]).concat(hlines.map((h) => h.y).filter(finite));
  const xmax = Math.max(0, ...pts.map((p) => p[0]));
  const xs = niceStep(xmax * 1.05), xend = xs * Math.ceil(xmax * 1.05 / xs) || xs;
  let y0, y1, yticks;
  if (log) {
    const lo = Math.min(...ys, Infinity), hi = Math.max(...ys, -Infinity);
    y0 = 10 ** Math.floor(Math.log10(isFinite(lo) ? lo : 1));
    y1 = 10 ** Math.ceil(Math.log10(isFinite(hi) ? hi * 1.05 : 10));
    if (y1 <= y0) y1 = y0 * 10;
    yticks = [];
    for (let d = y0; d < y1 * 1.001; d *= 10) for (const m of [1, 2, 5]) if (d * m <= y1 * 1.001) yticks.push(d * m);
  } else {
    const ymax = Math.max(0, ...ys);
    const st = niceStep(yEnd || ymax * 1.05);
    y0 = 0;
    y1 = yEnd || st * Math.ceil(ymax * 1.05 / st) || st;
    yticks = [];
    for (let v = 0; v <= y1 + st * 1e-9; v += st) yticks.push(v);
  }
  const px0 = ox + ML, px1 = ox + W - MR, py0 = top + H - MB, py1 = top + MT;
  const SX = (v) => (px0 + (v / xend) * (px1 - px0)).toFixed(1);
  const SY = (v) => (log ? py0 - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * (py0 - py1)
    : py0 - ((v - y0) / (y1 - y0)) * (py0 - py1)).toFixed(1);
  O.push(`<text x="${(px0 + px1) / 2}" y="${top + 20}" text-anchor="middle" font-size="14" font-weight="bold">${xmlEsc(title)}</text>`);
  for (let v = 0; v <= xend + xs * 1e-9; v += xs) {
    O.push(`<line x1="${SX(v)}" y1="${py0}" x2="${SX(v)}" y2="${py1}" stroke="#e4e4e4"/>`);
    O.push(`<text x="${SX(v)}" y="${py0 + 17}" text-anchor="middle" font-size="12">${tickText(v, xs)}</text>`);
  }
  for (const v of yticks) {
    const label = log ? String(Number(v.toPrecision(3))) : tickText(v, yticks[1] - yticks[0] || 1);
    O.push(`<line x1="${px0}" y1="${SY(v)}" x2="${px1}" y2="${SY(v)}" stroke="#e4e4e4"/>`);
    O.push(`<text x="${px0 - 6}" y="${Number(SY(v)) + 4}" text-anchor="end" font-size="12">${label}</text>`);
  }
  O.push(`<line x1="${px0}" y1="${py0}" x2="${px1}" y2="${py0}" stroke="#333"/>`, `<line x1="${px0}" y1="${py0}" x2="${px0}" y2="${py1}" stroke="#333"/>`);
  O.push(`<text x="${(px0 + px1) / 2}" y="${py0 + 40}" text-anchor="middle" font-size="13">${xmlEsc(xlabel)}</text>`);
  O.push(`<text transform="translate(${ox + 18},${(py0 + py1) / 2}) rotate(-90)" text-anchor="middle" font-size="13">${xmlEsc(ylabel)}</text>`);
  for (const h of hlines) {
    if (!finite(h.y) || (log && h.y <= 0)) continue;
    O.push(`<line x1="${px0}" y1="${SY(h.y)}" x2="${px1}" y2="${SY(h.y)}" stroke="${h.color}" stroke-width="1.5" stroke-dasharray="6,4"/>`);
    O.push(`<text x="${px1 - 4}" y="${Number(SY(h.y)) - 5}" text-anchor="end" font-size="11" fill="${h.color}">${xmlEsc(h.label)}</text>`);
  }
  for (const s of series) {
    const p = s.pts.filter(ok);
    O.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${p.map((q) => `${SX(q[0])},${SY(q[1])}`).join(' ')}"/>`);
    for (const q of p) {
      O.push(`<circle cx="${SX(q[0])}" cy="${SY(q[1])}" r="3.5" fill="${s.color}"/>`);
      if (q[2]) O.push(`<text x="${Number(SX(q[0])) + 6}" y="${Number(SY(q[1])) - 6}" font-size="10" fill="${s.color}">${xmlEsc(q[2])}</text>`);
    }
  }
  let lx = px0; // legend row between the title and the plot
  for (const s of series) {
    O.push(`<line x1="${lx}" y1="${top + 44}" x2="${lx + 26}" y2="${top + 44}" stroke="${s.color}" stroke-width="2"/>`);
    O.push(`<text x="${lx + 31}" y="${top + 48}" font-size="12">${xmlEsc(s.label)}</text>`);
    lx += 31 + 7 * s.label.length + 16;
  }
  return O.join('\n');
}

// compare-WORKLOAD.svg; returns false when neither policy has a sweep
function compare(dir, wl) {
  const sw = POLICIES.map((p) => sweepOf(dir, wl, p.name));
  if (!sw[0] && !sw[1]) return false;
  const r0 = (sw[0] || sw[1])[0];
  const obj = r0.slo_ttft_ms, shortN = r0.short_prompt_tokens ?? 256;
  const ser = (f, tag) => POLICIES.map((p, k) => ({ label: `--policy ${p.name}`, color: p.color,
    pts: (sw[k] || []).map((r) => [r.rate, f(r), tag ? tag(r, k) : undefined]) }));
  const fcfsAt = (rate) => (sw[0] || []).find((r) => Math.abs(r.rate - rate) <= 1e-9 * rate);
  const ratioTag = (r, k) => {
    if (k !== 1) return undefined;
    const f = fcfsAt(r.rate);
    return f && f.goodput > 0 && finite(r.goodput) ? `${(r.goodput / f.goodput).toFixed(2)}x` : undefined;
  };
  const rejTag = (r, k) => (k === 1 && r.n_rejected > 0 ? `${r.n_rejected} rejected` : undefined);
  const W = 3 * 460, H = 56 + 420, O = [];
  O.push('<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif">`,
    '<rect width="100%" height="100%" fill="white"/>');
  const slo = [finite(obj) ? `TTFT \u2264 ${obj} ms` : '', finite(r0.slo_tpot_ms) ? `TPOT \u2264 ${r0.slo_tpot_ms} ms` : ''].filter(Boolean).join(', ');
  O.push(`<text x="${W / 2}" y="30" text-anchor="middle" font-size="18" font-weight="bold">${xmlEsc(
    `swiftlet serve --policy fcfs vs slo: ${wl}, SLO ${slo || 'none'}, ${r0.num_requests ?? '?'} requests per rate`)}</text>`);
  O.push(svgPanel(0, { title: 'Goodput (labels: slo / fcfs)', xlabel: 'offered rate (req/s)', ylabel: 'goodput (req/s)',
    series: ser((r) => r.goodput, ratioTag) }));
  O.push(svgPanel(460, { title: 'SLO attainment', xlabel: 'offered rate (req/s)', ylabel: 'requests meeting every SLO (%)',
    series: ser((r) => 100 * r.slo_attainment, rejTag), hlines: [{ y: 80, label: '80%', color: '#777' }], yEnd: 100 }));
  O.push(svgPanel(920, { title: `p99 TTFT, prompts \u2264 ${shortN} tokens`, xlabel: 'offered rate (req/s)', ylabel: 'p99 TTFT (ms, log scale)',
    series: ser((r) => r.ttft_short?.p99), hlines: [{ y: obj, label: `objective ${obj} ms`, color: '#d62728' }], log: true }));
  O.push('</svg>', '');
  writeFileSync(`${dir}/compare-${wl}.svg`, O.join('\n'));
  return true;
}

// Issue 7's acceptance at each rate where fcfs meets the SLOs for < 80% of requests:
// slo goodput >= 1.5x fcfs's (> 0 when fcfs's is 0) and slo's short-prompt p99 TTFT within
// the TTFT objective. Returns {rows: [{rate, pass, why}], verdict}.
function acceptance(fcfs, slo) {
  const rows = [];
  for (const f of fcfs || []) {
    if (!(f.slo_attainment < 0.8)) continue;
    const s = (slo || []).find((r) => Math.abs(r.rate - f.rate) <= 1e-9 * f.rate);
    if (!s) { rows.push({ rate: f.rate, pass: false, why: 'no slo result at this rate' }); continue; }
    const why = [];
    const ratio = f.goodput > 0 ? s.goodput / f.goodput : s.goodput > 0 ? Infinity : NaN;
    const gOk = f.goodput > 0 ? s.goodput >= 1.5 * f.goodput : s.goodput > 0;
    why.push(`goodput ${fmt(s.goodput, 3)} vs ${fmt(f.goodput, 3)} req/s = ${ratio === Infinity ? '∞' : fmt(ratio, 2) + 'x'}${gOk ? '' : ' (< 1.5x)'}`);
    const p99 = s.ttft_short?.p99, obj = s.slo_ttft_ms;
    const tOk = finite(p99) && finite(obj) && p99 <= obj;
    why.push(finite(p99) ? `short p99 TTFT ${fmt(p99, 0)} ms ${p99 <= obj ? '≤' : '>'} ${obj} ms` : 'no short prompt completed');
    if (s.short_rejected > 0) why.push(`${s.short_rejected} short rejected`);
    rows.push({ rate: f.rate, pass: gOk && tOk, why: why.join(', ') });
  }
  const np = rows.filter((r) => r.pass).length;
  const verdict = !fcfs ? 'NOT TESTED (no fcfs sweep)'
    : !rows.length ? 'NOT TESTED (fcfs met the SLOs for >= 80% of requests at every rate: the sweep never overloaded it)'
    : np === rows.length ? `PASS at all ${rows.length} such rates`
    : np ? `PASS at ${np} of ${rows.length} such rates (${rows.filter((r) => r.pass).map((r) => r.rate).join(', ')} req/s)`
    : `FAIL at all ${rows.length} such rates`;
  return { rows, verdict };
}

function servingSection(dir, out) {
  out.push('## Serving: `swiftlet serve --policy fcfs` vs `--policy slo` (q8_0, `swiftlet bench --sweep --send-slo`, open loop, Poisson)', '');
  const L = [], verdicts = [];
  let any = false;
  for (const wl of ['chat-shared-prefix', 'mixed-lengths']) {
    const [fc, sl] = POLICIES.map((p) => sweepOf(dir, wl, p.name));
    if (!fc && !sl) continue;
    any = true;
    const r0 = (fc || sl)[0];
    const obj = r0.slo_ttft_ms, shortN = r0.short_prompt_tokens ?? 256;
    const charts = [existsSync(`${dir}/compare-${wl}.svg`) ? `[comparison](compare-${wl}.svg)` : '',
      ...POLICIES.filter((p, k) => [fc, sl][k]).map((p) => `[${p.name}](sweep-${wl}-${p.name}.svg)`)].filter(Boolean).join(', ');
    L.push(`### ${wl} — SLO TTFT ≤ ${obj} ms, TPOT ≤ ${r0.slo_tpot_ms} ms; ${r0.num_requests} requests per rate; short = prompt ≤ ${shortN} tokens (charts: ${charts})`, '');
    L.push(`| rate req/s | fcfs goodput | fcfs attainment | slo goodput | slo attainment | slo rejected | slo / fcfs goodput | short p99 TTFT ms fcfs / slo (objective ${obj}) |`,
      '|---:|---:|---:|---:|---:|---:|---:|---:|');
    const rates = [...new Set([...(fc || []), ...(sl || [])].map((r) => r.rate))].sort((a, b) => a - b);
    const at = (s, rate) => (s || []).find((r) => r.rate === rate);
    for (const rate of rates) {
      const f = at(fc, rate), s = at(sl, rate);
      const ratio = f && s && f.goodput > 0 ? `${fmt(s.goodput / f.goodput, 2)}x` : f && s && s.goodput > 0 ? '∞' : '–';
      const sp = (r) => (r && finite(r.ttft_short?.p99) ? fmt(r.ttft_short.p99, 0) : '–');
      L.push(`| ${rate} | ${f ? fmt(f.goodput, 3) : '–'} | ${f ? fmt(100 * f.slo_attainment, 0) + '%' : '–'} | ${s ? fmt(s.goodput, 3) : '–'} | ` +
        `${s ? fmt(100 * s.slo_attainment, 0) + '%' : '–'} | ${s ? s.n_rejected ?? '–' : '–'} | ${ratio} | ${sp(f)} / ${sp(s)} |`);
    }
    const acc = acceptance(fc, sl);
    verdicts.push(`${wl}: ${acc.verdict}`);
    L.push('', `**Acceptance (issue 7)** — at the rates where fcfs meets the SLOs for < 80% of requests, slo goodput ≥ 1.5x fcfs's ` +
      `and slo's short-prompt p99 TTFT ≤ ${obj} ms: **${acc.verdict}**.`);
    for (const r of acc.rows) L.push(`- ${r.rate} req/s: ${r.pass ? 'pass' : 'FAIL'} — ${r.why}`);
    L.push('');
    // issue 15: slo's goodput >= fcfs's at every rate; the highest rate slo holds >= 90% attainment
    if (fc && sl) {
      const worse = rates.filter((rate) => at(fc, rate) && at(sl, rate) && at(sl, rate).goodput < at(fc, rate).goodput);
      const held = (sl || []).filter((r) => r.slo_attainment >= 0.9).map((r) => r.rate);
      L.push(`**Issue 15** — slo goodput ≥ fcfs's at every rate: ${worse.length ? `**NO** (below at ${worse.join(', ')} req/s)` : '**yes**'}; ` +
        `highest rate where slo holds ≥ 90% attainment: ${held.length ? `${Math.max(...held)} req/s` : 'none'}.`, '');
    }
    for (const [k, s] of [fc, sl].entries()) {
      if (!s) continue;
      L.push(`<details><summary>--policy ${POLICIES[k].name}: per-rate details</summary>`, '');
      L.push('| rate req/s | achieved req/s | output tok/s | TTFT p50 / p99 ms | short TTFT p50 / p99 ms (n) | TPOT p50 / p99 ms | goodput req/s | attainment | failed (rejected) |',
        '|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
      for (const r of s)
        L.push(`| ${r.rate} | ${fmt(r.request_throughput, 3)} | ${fmt(r.output_throughput)} | ${fmt(r.ttft_ms.p50, 0)} / ${fmt(r.ttft_ms.p99, 0)} | ` +
          `${fmt(r.ttft_short?.p50, 0)} / ${fmt(r.ttft_short?.p99, 0)} (${r.ttft_short?.n ?? '–'}) | ${fmt(r.tpot_ms.p50)} / ${fmt(r.tpot_ms.p99)} | ` +
          `${fmt(r.goodput, 3)} | ${fmt(100 * r.slo_attainment, 0)}% | ${r.failed} (${r.n_rejected ?? '–'}) |`);
      L.push('', '</details>', '');
    }
  }
  if (!any) { out.push('_not run (see skipped sections)_', ''); return; }
  out.push(`Acceptance (issue 7): ${verdicts.join('; ')}.`, '', ...L);
  out.push('Both policies run the same binary on a fresh server each, with the same calibration requests, seeds, rates and SLOs;',
    'every request carries its SLOs (`--send-slo`: `slo_ttft_ms`, `slo_tpot_ms`; fcfs ignores them). Rates are multiples',
    '(BENCH_SWEEP_MULT) of the single-stream request rate measured by the calibration on the fcfs server; the SLOs are',
    'BENCH_SLO_TTFT_X x its TTFT p50 and BENCH_SLO_TPOT_X x its TPOT p50 (defaults 3 and 3: batching 16 sequences on',
    '2 cores alone raises TPOT ~3x). Goodput counts completed requests meeting both SLOs per second; a request the',
    'server refused (HTTP 503, e.g. `slo_unattainable`) is failed and rejected, never good. Short-prompt TTFT is over',
    'completed requests whose usage.prompt_tokens ≤ the threshold. Percentiles interpolate linearly (numpy default).', '');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'calib') calib(...args);
else if (cmd === 'compare') process.exit(compare(args[0], args[1]) ? 0 : 1);
else if (cmd === 'summary') summary(args[0]);
else if (cmd === 'tax') console.log(JSON.stringify(taxOf(args[0]), null, 2));
else if (cmd === 'tax-line') console.log(taxLine(readJson(`${args[0]}/tax.json`) || taxOf(args[0])));
else if (cmd === 'single') console.log(JSON.stringify(singleRows(args[0]), null, 2));
else { console.error('usage: node bench/report.mjs calib FILE [MULTS [TTFT_X [TPOT_X]]] | compare DIR WORKLOAD | tax DIR | tax-line DIR | single DIR | summary DIR'); process.exit(2); }
