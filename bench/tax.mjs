// bench/tax.mjs — the lone streaming client of `make bench` section `tax` (no dependencies):
//   node bench/tax.mjs URL PROMPT_TOKENS GEN_TOKENS RUNS [OUT.json]
// Sends RUNS /v1/completions requests one after another, each streaming (stream: true)
// GEN_TOKENS tokens (ignore_eos, temperature 0) after a prompt of PROMPT_TOKENS token ids
// (a fixed pseudo-random list, a different one per run so no run reuses another's prefix
// cache). One SSE event per token: a request's time per output token (TPOT) is
// (last event - first event) / (events - 1), taken where the client reads the bytes
// (node's plain http module: the lightest client node has). Prints and writes
// {"runs": [{tpot_ms, ttft_ms, tokens}...], "tpot_ms_p50": X, "ttft_ms_p50": Y}; the
// first run also warms the server and is not counted when RUNS > 1.
import http from 'node:http';
import { writeFileSync } from 'node:fs';

const [url, promptArg, genArg, runsArg, out] = process.argv.slice(2);
const nPrompt = Number(promptArg), nGen = Number(genArg), nRuns = Number(runsArg);
if (!url || !(nPrompt > 0) || !(nGen > 1) || !(nRuns > 0)) {
  console.error('usage: node bench/tax.mjs URL PROMPT_TOKENS GEN_TOKENS RUNS [OUT.json]');
  process.exit(2);
}

function promptIds(run) {
  let x = BigInt(run + 1) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn;
  const ids = [];
  for (let i = 0; i < nPrompt; i++) {
    x = (x * 6364136223846793005n + 1442695040888963407n) & 0xffffffffffffffffn;
    ids.push(100 + Number((x >> 33n) % 40000n));
  }
  return ids;
}

// One streaming request: resolves {ttft_ms, tpot_ms, tokens}.
function once(run) {
  const body = JSON.stringify({ prompt: promptIds(run), max_tokens: nGen, stream: true, temperature: 0,
    ignore_eos: true });
  const u = new URL('/v1/completions', url);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const times = [];
    let pending = '';
    const req = http.request(u, { method: 'POST', headers: { 'content-type': 'application/json',
      'content-length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) { reject(new Error(`HTTP ${res.statusCode}`)); res.resume(); return; }
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const now = performance.now();
        pending += chunk;
        let k;
        while ((k = pending.indexOf('\n\n')) >= 0) {
          const ev = pending.slice(0, k);
          pending = pending.slice(k + 2);
          if (ev.startsWith('data: {') && ev.includes('"text"')) times.push(now);
        }
      });
      res.on('end', () => {
        if (times.length < 2) { reject(new Error(`only ${times.length} token events`)); return; }
        resolve({ ttft_ms: times[0] - t0, tpot_ms: (times[times.length - 1] - times[0]) / (times.length - 1),
          tokens: times.length });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const median = (a) => { const s = [...a].sort((x, y) => x - y), m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const runs = [];
for (let r = 0; r < nRuns; r++) runs.push(await once(r));
const counted = runs.length > 1 ? runs.slice(1) : runs;
const res = { prompt_tokens: nPrompt, gen_tokens: nGen, runs, tpot_ms_p50: median(counted.map((x) => x.tpot_ms)),
  ttft_ms_p50: median(counted.map((x) => x.ttft_ms)) };
console.log(`tax client: TPOT p50 ${res.tpot_ms_p50.toFixed(2)} ms (${(1000 / res.tpot_ms_p50).toFixed(1)} tok/s), ` +
  `TTFT p50 ${res.ttft_ms_p50.toFixed(1)} ms over ${counted.length} streamed requests of ${nGen} tokens`);
if (out) writeFileSync(out, JSON.stringify(res, null, 2) + '\n');
