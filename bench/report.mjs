// bench/report.mjs — node helper for bench/run.sh (no dependencies):
//   node bench/report.mjs calib FILE.json   from a closed-loop, concurrency-1 `swiftlet bench`
//                                           report: "R1,R2,R3,R4 SLO_TTFT_MS SLO_TPOT_MS" with
//                                           rates 0.5/1/2/4 x the single-stream request rate
//   node bench/report.mjs summary DIR       bench/results/summary.md on stdout
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import { execSync } from 'node:child_process';
import os from 'node:os';

// llama.cpp's reference figures for these files on the benchmark machine (tok/s)
const REFERENCE = {
  q8_0: { prefill: 538, decode: 48 },
  q4_0: { prefill: 489, decode: 68 },
  q4_k_m: { prefill: 196, decode: 35 },
};

const sig3 = (x) => Number(x.toPrecision(3));

function calib(file) {
  const j = JSON.parse(readFileSync(file, 'utf8'));
  const e2e = j.e2el_ms?.mean, ttft = j.ttft_ms?.p50, tpot = j.tpot_ms?.p50;
  if (!(e2e > 0) || !(ttft > 0) || !(tpot > 0) || !(j.completed > 0)) process.exit(1);
  const c1 = 1000 / e2e;
  const rates = [0.5, 1, 2, 4].map((m) => sig3(m * c1));
  console.log(`${rates.join(',')} ${Math.ceil(3 * ttft)} ${Math.ceil(20 * tpot) / 10}`);
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

  L.push('## Single stream (`swiftlet mbench`) vs. llama.cpp', '');
  L.push('| type | prefill tok/s | vs llama.cpp | decode tok/s | vs llama.cpp | decode GB/s |', '|---|---:|---:|---:|---:|---:|');
  let anyM = false;
  for (const t of Object.keys(REFERENCE)) {
    const m = readJson(`${dir}/mbench-${t}.json`);
    const ref = REFERENCE[t];
    if (!m) { L.push(`| ${t} | – | (ref ${ref.prefill}) | – | (ref ${ref.decode}) | – |`); continue; }
    anyM = true;
    // mbench's field names, with a loose match as a fallback should they change
    const pp = m.prompt_tok_s ?? pick(m, [/prompt|prefill|pp/i, /tok.*s|per_s|tps/i], /ms$|_ms\b|tokens$/i);
    const tg = m.decode_tok_s ?? pick(m, [/decode|gen|tg/i, /tok.*s|per_s|tps/i], /ms$|_ms\b|tokens$|gb/i);
    const gbs = m.decode_weight_gbs ?? pick(m, [/decode|gen|tg/i, /gb/i], /bandwidth|machine|read_bw/i);
    const bw = m.read_bandwidth_gbs;
    const ratio = (x, r) => (x && comparable ? fmt(x / r, 2) + 'x' : '–');
    L.push(`| ${t} | ${fmt(pp)} | ${ratio(pp, ref.prefill)} (ref ${ref.prefill}) | ${fmt(tg)} | ` +
      `${ratio(tg, ref.decode)} (ref ${ref.decode}) | ${fmt(gbs)}${gbs && bw ? ` (${fmt(100 * gbs / bw, 0)}% of ${fmt(bw)})` : ''} |`);
  }
  if (!anyM) L.push('', '_mbench not run (see skipped sections)_');
  L.push('', 'Reference: llama.cpp on the qwen2.5-0.5b files (Q8_0 538 / 48, Q4_0 489 / 68, Q4_K_M 196 / 35 tok/s prefill / decode)' +
    (comparable ? '.' : `; no ratios for the ${preset} preset.`), '');

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
  } else L.push('_not run (see skipped sections)_');
  const tt = readJson(`${dir}/generate-ttft.json`);
  if (tt && tt.cold_ttft_ms) {
    L.push('', `Prefix cache: TTFT of a cold ${tt.cold_tokens}-token prompt ${fmt(tt.cold_ttft_ms)} ms; ` +
      `a ${tt.prefix_tokens}-token prompt with ${tt.cached_tokens} cached tokens ${fmt(tt.cached_ttft_ms)} ms (${fmt(tt.ratio, 2)}x the cold one).`);
  }
  L.push('');

  L.push('## Serving (`swiftlet serve` q8_0 + `swiftlet bench --sweep`, open loop, Poisson)', '');
  let anyS = false;
  for (const wl of ['chat-shared-prefix', 'mixed-lengths']) {
    const s = readJson(`${dir}/sweep-${wl}.json`);
    if (!Array.isArray(s) || !s.length) continue;
    anyS = true;
    const r0 = s[0];
    L.push(`### ${wl} — SLO TTFT ≤ ${r0.slo_ttft_ms} ms, TPOT ≤ ${r0.slo_tpot_ms} ms, ${r0.num_requests} requests per rate ([chart](sweep-${wl}.svg))`, '');
    L.push('| rate req/s | achieved req/s | output tok/s | TTFT p50 / p99 ms | TPOT p50 / p99 ms | goodput req/s | SLO attainment | failed |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of s)
      L.push(`| ${r.rate} | ${fmt(r.request_throughput, 3)} | ${fmt(r.output_throughput)} | ${fmt(r.ttft_ms.p50, 0)} / ${fmt(r.ttft_ms.p99, 0)} | ` +
        `${fmt(r.tpot_ms.p50)} / ${fmt(r.tpot_ms.p99)} | ${fmt(r.goodput, 3)} | ${fmt(100 * r.slo_attainment, 0)}% | ${r.failed} |`);
    L.push('');
  }
  if (!anyS) L.push('_not run (see skipped sections)_', '');
  L.push('Rates are 0.5/1/2/4x the single-stream request rate measured just before; SLOs are 3x the single-stream',
    'TTFT p50 and 2x its TPOT p50. Percentiles interpolate linearly (numpy default).', '');

  const sk = existsSync(`${dir}/skipped.txt`) ? readFileSync(`${dir}/skipped.txt`, 'utf8').trim() : '';
  L.push('## Skipped sections', '', sk ? sk.split('\n').map((l) => `- ${l}`).join('\n') : 'none', '');
  L.push(`Files: ${readdirSync(dir).filter((f) => /\.(json|svg)$/.test(f)).sort().join(', ')} (logs: *.log)`);
  console.log(L.join('\n'));
}

const [cmd, a] = process.argv.slice(2);
if (cmd === 'calib') calib(a);
else if (cmd === 'summary') summary(a);
else { console.error('usage: node bench/report.mjs calib FILE | summary DIR'); process.exit(2); }
