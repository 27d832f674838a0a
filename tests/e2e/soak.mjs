// soak.mjs — soak test of `swiftlet serve`: mixed traffic at about twice the measured
// capacity, for a while, against one real server on loopback. Used by soak.test.mjs
// (60 s, inside `make test`) and by `make soak` (node tests/e2e/soak.mjs --seconds 600).
//
// 1. Capacity: C closed-loop clients send the mix's well-behaved requests for a few
//    seconds; capacity = completed requests per second.
// 2. Load: Poisson arrivals at `factor` x capacity for `seconds`, each one of:
//      35% completion, non-streaming        20% stream the client drops mid-way (abort)
//      20% chat stream, read to the end     10% slow reader (raw socket, pauses reading)
//      15% malformed: bad JSON, wrong types, declared body over the limit, a garbage
//          request line, headers that never end (the client gives up)
//    Each arrival is tallied by what it got: an HTTP status, an intended abort, or an
//    unexpected failure (connection error, no answer within 60 s, bad status).
// 3. Checks (returned in `report.failures`, empty when all hold): the server never
//    exited; every request was answered with 200 / 4xx / 429 / 503 (aborts excepted);
//    once idle, /metrics shows no running or waiting request and no KV block in use;
//    RSS at the end (idle) is under 5% above RSS after the warm-up (the first 20%
//    of the load, then a pause until idle; the other 80% follow); the server exits 0
//    on SIGTERM.
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { MODEL, metric, procStatus, scrape, sleep, startServer } from './server.mjs';

const OK_STATUS = new Set([200, 400, 404, 405, 413, 429, 503]);

// Seeded uniform [0,1) (mulberry32): the same mix every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function postJson(base, path, body, signal) {
  const r = await fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body), signal });
  return r;
}

// One raw-socket exchange: writes `data`, resolves the status code of the answer (0 when
// the server closed without one). opts.slow: pause reading for pauseMs between reads.
function rawExchange(port, data, { slow = false, pauseMs = 400, giveUpMs = 60000, endAfterWrite = false } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    let status = null;
    let timer = null;
    const t = setTimeout(() => { s.destroy(); resolve({ status, timeout: true }); }, giveUpMs);
    const take = (d) => {
      text += d.toString('latin1');
      if (status === null) {
        const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
        if (m) status = Number(m[1]);
      }
      if (text.length > 4096) text = text.slice(-64); // keep the tail: enough to see [DONE]
    };
    if (slow) {
      // a slow reader: takes what has arrived once every pauseMs, the rest waits in the socket
      s.pause();
      timer = setInterval(() => { let d; while ((d = s.read()) !== null) take(d); }, pauseMs);
    } else {
      s.on('data', take);
    }
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      clearInterval(timer);
      let d;
      while (slow && (d = s.read()) !== null) take(d);
      resolve({ status: status ?? 0, done: text.includes('data: [DONE]') });
    });
    s.write(data);
    if (endAfterWrite) s.end();
  });
}

function completionBody(r, extra = {}) {
  return { model: MODEL, prompt: `soak ${Math.floor(r() * 1e6)} once upon a time`, max_tokens: 8 + Math.floor(r() * 56),
    temperature: 0.8, ...extra };
}

// The kinds of arrival; each resolves { kind, status | aborted | error }.
const KINDS = [
  ['completion', 0.35, async (ctx, r) => {
    const res = await postJson(ctx.base, '/v1/completions', completionBody(r));
    await res.text();
    return { status: res.status };
  }],
  ['stream-abort', 0.20, async (ctx, r) => {
    const ac = new AbortController();
    const res = await postJson(ctx.base, '/v1/completions', completionBody(r, { max_tokens: 200, ignore_eos: true, stream: true }), ac.signal);
    if (res.status !== 200) { await res.text(); return { status: res.status }; }
    const want = 1 + Math.floor(r() * 5);
    let chunks = 0;
    try {
      for await (const part of res.body) { chunks += (part.toString().match(/data: /g) || []).length; if (chunks >= want) break; }
    } catch { /* aborted */ }
    ac.abort();
    return { status: 200, aborted: true };
  }],
  ['chat-stream', 0.20, async (ctx, r) => {
    const res = await postJson(ctx.base, '/v1/chat/completions', { model: MODEL, messages: [{ role: 'user', content: `hi ${Math.floor(r() * 1e6)}` }],
      max_tokens: 8 + Math.floor(r() * 40), stream: true });
    const text = await res.text();
    if (res.status === 200 && !text.includes('data: [DONE]')) return { status: res.status, error: 'stream without [DONE]' };
    return { status: res.status };
  }],
  ['slow-reader', 0.10, async (ctx, r) => {
    const body = JSON.stringify(completionBody(r, { max_tokens: 120, ignore_eos: true, stream: true }));
    const req = `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
    const x = await rawExchange(ctx.port, req, { slow: true, pauseMs: 200 + Math.floor(r() * 400) });
    if (x.timeout) return { status: x.status, error: 'no end within 60 s' };
    return x.status === 200 && !x.done ? { status: 200, error: 'stream cut before [DONE]' } : { status: x.status };
  }],
  ['malformed', 0.15, async (ctx, r) => {
    const which = Math.floor(r() * 5);
    if (which === 0) { const res = await postJson(ctx.base, '/v1/completions', '{"prompt": "x", '); await res.text(); return { status: res.status, want: 400 }; }
    if (which === 1) { const res = await postJson(ctx.base, '/v1/chat/completions', { messages: 7, max_tokens: 'x' }); await res.text(); return { status: res.status, want: 400 }; }
    if (which === 2) {
      const x = await rawExchange(ctx.port, 'POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n{"pro');
      return { status: x.status, want: 413 };
    }
    if (which === 3) {
      const x = await rawExchange(ctx.port, '\x16\x03\x01 not http at all\r\n\r\n', { endAfterWrite: true });
      return { status: x.status === 0 ? 400 : x.status, garbage: true }; // closed without an answer counts as refused
    }
    // headers that never end: the client gives up after a while
    const s = net.connect({ port: ctx.port, host: '127.0.0.1' });
    s.on('error', () => {});
    s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    await sleep(500 + Math.floor(r() * 2000));
    s.destroy();
    return { status: 400, aborted: true };
  }],
];

function pickKind(u) {
  let acc = 0;
  for (const k of KINDS) { acc += k[1]; if (u < acc) return k; }
  return KINDS[KINDS.length - 1];
}

// Closed-loop capacity of the well-behaved part of the mix (requests/s).
async function measureCapacity(ctx, seconds, clients) {
  const r = rng(7);
  const tEnd = Date.now() + seconds * 1000;
  let done = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (Date.now() < tEnd) {
      const res = await postJson(ctx.base, '/v1/completions', completionBody(r));
      await res.text();
      if (res.status === 200) done++;
    }
  }));
  return done / seconds;
}

async function waitIdle(base, ms) {
  let m;
  const t0 = Date.now();
  for (;;) {
    m = await scrape(base);
    const idle = metric(m, 'swiftlet:num_requests_running') === 0 && metric(m, 'swiftlet:num_requests_waiting') === 0 &&
      metric(m, 'swiftlet:kv_cache_usage_perc') === 0;
    if (idle || Date.now() - t0 > ms) return { idle, m };
    await sleep(100);
  }
}

export async function soak({ seconds = 60, factor = 2, serverArgs = [], log = () => {} } = {}) {
  const srv = await startServer(['--max-queue', '64', '--queue-timeout', '15', '--max-conns-per-ip', '1000', ...serverArgs]);
  const ctx = { base: srv.base, port: srv.port };
  const report = { seconds, factor, failures: [], counts: {}, statuses: {}, unexpected: [] };
  try {
    report.capacityRps = await measureCapacity(ctx, Math.min(10, Math.max(4, seconds / 10)), 16);
    report.rateRps = report.capacityRps * factor;
    log(`capacity ${report.capacityRps.toFixed(1)} req/s; offering ${report.rateRps.toFixed(1)} req/s for ${seconds} s`);
    const r = rng(12345);
    const inflight = new Set();
    const t0 = Date.now();
    const tWarm = t0 + seconds * 200;
    let tEnd = t0 + seconds * 1000;
    let warmRss = null;
    let next = t0;
    let n = 0;
    let lastTrace = t0;
    const traceMs = Math.max(5000, seconds * 1000 / 20);
    report.trace = [];
    const tally = (kind, res) => {
      report.counts[kind] = (report.counts[kind] || 0) + 1;
      const key = res.aborted ? 'aborted' : String(res.status);
      report.statuses[key] = (report.statuses[key] || 0) + 1;
      const bad = res.error || (!res.aborted && !OK_STATUS.has(res.status)) || (res.want && res.status !== res.want);
      if (bad && report.unexpected.length < 20) report.unexpected.push({ kind, ...res });
      if (bad) report.nUnexpected = (report.nUnexpected || 0) + 1;
    };
    while (Date.now() < tEnd) {
      if (srv.exited()) break;
      if (warmRss === null && Date.now() >= tWarm) {
        // warm-up over: let the queue empty, then the reference RSS (idle, like the final one)
        await Promise.all([...inflight]);
        await waitIdle(srv.base, 30000);
        await sleep(1000); // the server trims its heap once idle (http.c watchdog)
        warmRss = procStatus(srv.pid).rssKiB;
        log(`warm-up done after ${n} requests: RSS ${warmRss} KiB`);
        next = Date.now();
        tEnd = next + seconds * 800; // the rest of the load, however long the pause took
      }
      const now = Date.now();
      if (now - lastTrace >= traceMs) {
        lastTrace = now;
        const ps = procStatus(srv.pid);
        report.trace.push({ t: Math.round((now - t0) / 1000), rssKiB: ps.rssKiB, threads: ps.threads, inflight: inflight.size });
        log(`t=${Math.round((now - t0) / 1000)} s: RSS ${ps.rssKiB} KiB, threads ${ps.threads}, in flight ${inflight.size}`);
      }
      if (now < next) { await sleep(Math.min(50, next - now)); continue; }
      next += -Math.log(1 - r()) * 1000 / report.rateRps;
      const [kind, , fn] = pickKind(r());
      const seed = Math.floor(r() * 2 ** 31);
      const p = fn(ctx, rng(seed)).then((res) => tally(kind, res), (e) => tally(kind, { status: 0, error: String(e.cause?.code || e.message || e) }))
        .finally(() => inflight.delete(p));
      inflight.add(p);
      n++;
    }
    report.requests = n;
    await Promise.all([...inflight]);
    const { idle, m } = await waitIdle(srv.base, 30000);
    await sleep(1000);
    report.idle = idle;
    report.kvUsageIdle = metric(m, 'swiftlet:kv_cache_usage_perc');
    report.runningIdle = metric(m, 'swiftlet:num_requests_running');
    report.waitingIdle = metric(m, 'swiftlet:num_requests_waiting');
    if (!srv.exited()) {
      report.threads = procStatus(srv.pid).threads;
      report.warmRssKiB = warmRss;
      report.finalRssKiB = procStatus(srv.pid).rssKiB;
      report.rssGrowthPct = warmRss ? 100 * (report.finalRssKiB - warmRss) / warmRss : null;
    }
    log(`done: ${n} requests, statuses ${JSON.stringify(report.statuses)}`);
  } finally {
    report.crashed = !!srv.exited();
    const st = await srv.stop();
    report.exit = st;
  }
  const f = report.failures;
  if (report.crashed) f.push(`server exited during the soak: ${JSON.stringify(report.exit)}`);
  if (report.exit.code !== 0) f.push(`exit on SIGTERM: ${JSON.stringify(report.exit)}`);
  if (report.nUnexpected) f.push(`${report.nUnexpected} unexpected answers, e.g. ${JSON.stringify(report.unexpected.slice(0, 5))}`);
  if (!report.idle) f.push(`not idle after the load: running ${report.runningIdle}, waiting ${report.waitingIdle}, kv ${report.kvUsageIdle}`);
  if (!(report.rssGrowthPct < 5)) f.push(`RSS grew ${report.rssGrowthPct?.toFixed(2)}% (${report.warmRssKiB} -> ${report.finalRssKiB} KiB)`);
  if (!(report.counts['stream-abort'] > 0 && report.counts['slow-reader'] > 0 && report.counts.malformed > 0))
    f.push(`the mix did not run: ${JSON.stringify(report.counts)}`);
  return report;
}

// CLI: node tests/e2e/soak.mjs [--seconds N] [--factor F]
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
  const report = await soak({ seconds: arg('--seconds', 600), factor: arg('--factor', 2), log: (s) => console.error(`soak: ${s}`) });
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = report.failures.length ? 1 : 0;
}
