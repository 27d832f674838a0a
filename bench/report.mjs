// bench/report.mjs — node helper for bench/run.sh (no dependencies):
//   node bench/report.mjs prompts N WORDS   N JSONL lines {"prompt": ...} of WORDS words each,
//                                           distinct (no shared prefix), deterministic
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

const WORDS = ('the of and to in is that for it as was with be by on not he this are or his from at which but have ' +
  'an had they you were their one all we can her has there been if more when will would who so no time people year ' +
  'way day man thing woman life child world school state family student group country problem hand part place case ' +
  'week company system program question work government number night point home water room mother area money story ' +
  'fact month lot right study book eye job word business issue side kind head house service friend father power hour ' +
  'game line end member law car city community name president team minute idea body information back parent face').split(' ');

function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function prompts(n, words) {
  const r = rng(1234);
  for (let i = 0; i < n; i++) {
    const w = [`Story ${i + 1}:`];
    for (let k = 0; k < words; k++) w.push(WORDS[Math.floor(r() * WORDS.length)]);
    console.log(JSON.stringify({ prompt: w.join(' ') + '.' }));
  }
}

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
  L.push('# swiftlet benchmark summary', '');
  L.push('| | |', '|---|---|');
  L.push(`| machine | ${cpu}, ${cores} cores |`);
  L.push(`| date | ${new Date().toISOString().replace('T', ' ').slice(0, 16)} UTC |`);
  L.push(`| git commit | ${commit || '?'} |`);
  L.push('| model | qwen2.5-0.5b preset, random weights, GPT-2 vocab (`swiftlet gen-model`) |', '');

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
    const pp = pick(m, [/prompt|prefill|pp/i, /tok.*s|per_s|tps/i], /ms$|_ms\b|tokens$/i);
    const tg = pick(m, [/decode|gen|tg/i, /tok.*s|per_s|tps/i], /ms$|_ms\b|tokens$|gb/i);
    const gbs = pick(m, [/decode|gen|tg/i, /gb/i], /bandwidth|machine|read_bw/i);
    L.push(`| ${t} | ${fmt(pp)} | ${pp ? fmt(pp / ref.prefill, 2) + 'x' : '–'} (ref ${ref.prefill}) | ${fmt(tg)} | ` +
      `${tg ? fmt(tg / ref.decode, 2) + 'x' : '–'} (ref ${ref.decode}) | ${fmt(gbs)} |`);
  }
  if (!anyM) L.push('', '_mbench not run (see skipped sections)_');
  L.push('', 'Reference: llama.cpp on the same files (Q8_0 538 / 48, Q4_0 489 / 68, Q4_K_M 196 / 35 tok/s prefill / decode).', '');

  L.push('## Batch scaling (`swiftlet generate`, q8_0, ~128-token prompts, 128 new tokens each)', '');
  const rows = [];
  for (const b of [1, 4, 16, 32]) {
    const meta = readJson(`${dir}/generate-${b}.json`);
    if (!meta || !existsSync(`${dir}/generate-${b}.jsonl`)) continue;
    const lines = readFileSync(`${dir}/generate-${b}.jsonl`, 'utf8').split('\n').filter((l) => l.trim().startsWith('{')).map((l) => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
    const gen = lines.reduce((s, l) => s + (Array.isArray(l.ids) ? l.ids.length : 0), 0);
    const span = Math.max(0, ...lines.map((l) => l.total_ms || 0)) / 1000;
    const log = existsSync(`${dir}/generate-${b}.log`) ? readFileSync(`${dir}/generate-${b}.log`, 'utf8') : '';
    const own = (log.match(/([0-9.]+)\s*tok\/s/g) || []).pop();
    rows.push({ b, n: lines.length, gen, tps: span > 0 ? gen / span : gen / meta.wall_s, wall: meta.wall_s, own });
  }
  if (rows.length) {
    L.push('| sequences | completed | tokens generated | aggregate tok/s | vs 1 sequence | wall s | engine says |', '|---:|---:|---:|---:|---:|---:|---|');
    const base = rows.find((r) => r.b === 1)?.tps;
    for (const r of rows)
      L.push(`| ${r.b} | ${r.n} | ${r.gen} | ${fmt(r.tps)} | ${base ? fmt(r.tps / base, 2) + 'x' : '–'} | ${fmt(r.wall, 1)} | ${r.own || '–'} |`);
    L.push('', 'aggregate tok/s = generated tokens / longest request time (prefill included).');
  } else L.push('_not run (see skipped sections)_');
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
  L.push(`Files: ${readdirSync(dir).sort().join(', ')}`);
  console.log(L.join('\n'));
}

const [cmd, a, b] = process.argv.slice(2);
if (cmd === 'prompts') prompts(Number(a), Number(b));
else if (cmd === 'calib') calib(a);
else if (cmd === 'summary') summary(a);
else { console.error('usage: node bench/report.mjs prompts N WORDS | calib FILE | summary DIR'); process.exit(2); }
