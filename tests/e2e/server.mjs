// server.mjs — helpers for the end-to-end tests: start the real `swiftlet serve` binary
// (process.env.SWIFTLET_BIN, else build/swiftlet) on a free loopback port with a tiny
// model from ../shared/models, wait for /health 200, and always kill it afterwards.
// Also: read ../shared golden data, scrape /metrics values.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');
export const shared = resolve(repoRoot, '..', 'shared');
export const sharedMissing = !existsSync(resolve(shared, 'README.md'));
export const bin = process.env.SWIFTLET_BIN || resolve(repoRoot, 'build', 'swiftlet');
export const MODEL = 'llama-spm-tiny.q8_0';

export function golden(model = MODEL) {
  return JSON.parse(readFileSync(resolve(shared, 'golden', model, 'cases.json'), 'utf8'));
}

const live = new Set();
process.on('exit', () => { for (const p of live) { try { p.kill('SIGKILL'); } catch { /* gone */ } } });

// Starts a server; resolves { port, base, url, client(opts), stop(), log() }.
export async function startServer(args = [], { model = MODEL, timeoutMs = 30000 } = {}) {
  const argv = ['serve', '-m', resolve(shared, 'models', `${model}.gguf`), '--port', '0', '--threads', '1', ...args];
  const proc = spawn(bin, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SWIFTLET_LOG: 'info' } });
  live.add(proc);
  let log = '';
  let exited = null;
  const exitP = new Promise((res) => proc.on('exit', (code, sig) => { exited = { code, sig }; live.delete(proc); res(exited); }));
  proc.stderr.on('data', (d) => { log += d.toString(); });
  const deadline = Date.now() + timeoutMs;
  let port = 0;
  while (!port) {
    const m = log.match(/listening on http:\/\/[^:]+:(\d+)/);
    if (m) port = Number(m[1]);
    else if (exited) throw new Error(`server exited early (${JSON.stringify(exited)}):\n${log}`);
    else if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`server did not start:\n${log}`); }
    else await sleep(20);
  }
  const base = `http://127.0.0.1:${port}`;
  for (;;) {
    try {
      const r = await fetch(`${base}/health`);
      await r.text();
      if (r.status === 200) break;
    } catch { /* not up yet */ }
    if (exited) throw new Error(`server exited while loading:\n${log}`);
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error(`/health never became 200:\n${log}`); }
    await sleep(25);
  }
  return {
    port,
    base,
    pid: proc.pid,
    exited: () => exited,
    waitExit: () => exitP, // resolves { code, sig } once the process has exited
    client: (opts = {}) => new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0, timeout: 60000, ...opts }),
    log: () => log,
    // SIGTERM, then SIGKILL if it does not stop in time; resolves the exit status.
    stop: async () => {
      if (exited) return exited;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      const r = await exitP;
      clearTimeout(t);
      return r;
    },
  };
}

// Resident memory (KiB) and thread count of a process, from /proc (Linux).
export function procStatus(pid) {
  const t = readFileSync(`/proc/${pid}/status`, 'utf8');
  return { rssKiB: Number(t.match(/^VmRSS:\s+(\d+)/m)[1]), threads: Number(t.match(/^Threads:\s+(\d+)/m)[1]) };
}

export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// Parses Prometheus text into { 'name{labels}': value }.
export async function scrape(base) {
  const r = await fetch(`${base}/metrics`);
  const text = await r.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// First value whose key starts with name (and contains every extra fragment).
export function metric(m, name, ...frags) {
  for (const [k, v] of Object.entries(m)) {
    if ((k === name || k.startsWith(`${name}{`)) && frags.every((f) => k.includes(f))) return v;
  }
  return undefined;
}

// POSTs raw JSON (or a string body) with fetch; resolves { status, headers, json }.
export async function post(base, path, body, headers = {}) {
  const r = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, json, text };
}
