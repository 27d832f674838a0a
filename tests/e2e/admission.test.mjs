// admission.test.mjs — end-to-end tests of the server's gatekeeping: --api-key (401 with
// a wrong or missing key, constant-time compared; /health stays open) and the bounded
// queue (--max-queue 0 with one running sequence: a burst gets 429 + Retry-After while
// the admitted requests still complete correctly), plus graceful shutdown on SIGTERM.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MODEL, post, scrape, metric, sharedMissing, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';

describe('--api-key', { skip }, () => {
  it('401 without or with a wrong key; 200 with the right one', async () => {
    const srv = await startServer(['--api-key', 'sekrit-key']);
    try {
      const body = { model: MODEL, prompt: 'hello', max_tokens: 2 };
      for (const hdr of [{}, { Authorization: 'Bearer wrong' }, { Authorization: 'Bearer sekrit-ke' },
        { Authorization: 'Bearer sekrit-key2' }, { Authorization: 'sekrit-key' }]) {
        const r = await post(srv.base, '/v1/completions', body, hdr);
        assert.equal(r.status, 401, JSON.stringify(hdr));
        assert.equal(r.json.error.type, 'authentication_error');
        assert.ok('param' in r.json.error && 'code' in r.json.error);
      }
      await assert.rejects(srv.client({ apiKey: 'nope' }).models.list(), (e) => e.status === 401);
      const ok = await srv.client({ apiKey: 'sekrit-key' }).completions.create(body);
      assert.equal(ok.usage.completion_tokens > 0, true);
      assert.equal((await fetch(`${srv.base}/health`)).status, 200);
    } finally {
      const st = await srv.stop();
      assert.equal(st.code, 0, `exit ${JSON.stringify(st)}\n${srv.log().slice(-3000)}`);
    }
  });
});

describe('--max-queue', { skip }, () => {
  it('a burst beyond the queue gets 429 with Retry-After; admitted requests finish', async () => {
    const srv = await startServer(['--max-queue', '0', '--max-seqs', '1']);
    try {
      const N = 6;
      const burst = await Promise.all(Array.from({ length: N }, (_, i) => post(srv.base, '/v1/completions',
        { model: MODEL, prompt: `burst ${i}`, max_tokens: 200, ignore_eos: true })));
      const ok = burst.filter((r) => r.status === 200);
      const busy = burst.filter((r) => r.status === 429);
      assert.equal(ok.length + busy.length, N, burst.map((r) => r.status).join(','));
      assert.ok(ok.length >= 1, 'at least one admitted');
      assert.ok(busy.length >= 1, 'at least one refused');
      for (const r of ok) assert.equal(r.json.usage.completion_tokens, 200);
      for (const r of busy) {
        assert.ok(Number(r.headers.get('retry-after')) >= 1);
        assert.equal(r.json.error.type, 'rate_limit_error');
        assert.ok('param' in r.json.error && 'code' in r.json.error);
      }
      // once idle, a request is admitted again
      const after = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'again', max_tokens: 3 });
      assert.equal(after.status, 200);
      // the engine updates its counters at the end of its step: poll briefly
      let running = -1;
      for (const t0 = Date.now(); Date.now() - t0 < 5000; await new Promise((r) => setTimeout(r, 20))) {
        running = metric(await scrape(srv.base), 'swiftlet:num_requests_running');
        if (running === 0) break;
      }
      assert.equal(running, 0);
    } finally {
      const st = await srv.stop();
      assert.equal(st.code, 0, `exit ${JSON.stringify(st)}\n${srv.log().slice(-3000)}`);
    }
  });

  it('SIGTERM during a stream ends the stream and exits 0', async () => {
    const srv = await startServer(['--drain-timeout', '1']); // drain.test.mjs covers the drain itself
    let stopped = false;
    try {
      const stream = await srv.client().completions.create({ model: MODEL, prompt: 'long', max_tokens: 100000,
        ignore_eos: true, stream: true });
      let n = 0;
      const reading = (async () => {
        try { for await (const ch of stream) { if (ch) n++; } } catch { /* connection closed by the server */ }
      })();
      while (n < 2) await new Promise((r) => setTimeout(r, 10));
      const st = await srv.stop();
      stopped = true;
      assert.equal(st.code, 0);
      await reading;
    } finally {
      if (!stopped) await srv.stop();
    }
  });
});

describe('built-in demo model (no -m)', { skip }, () => {
  it('/health is 503 while the demo model is written and loaded, then 200; it generates', async () => {
    const { spawn } = await import('node:child_process');
    const { bin, repoRoot } = await import('./server.mjs');
    const proc = spawn(bin, ['serve', '--port', '0', '--threads', '1'], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr.on('data', (d) => { log += d.toString(); });
    const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
    try {
      let port = 0;
      const deadline = Date.now() + 60000;
      while (!port && Date.now() < deadline) {
        const m = log.match(/listening on http:\/\/[^:]+:(\d+)/);
        if (m) port = Number(m[1]); else await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(port, log);
      const statuses = new Set();
      for (;;) {
        const r = await fetch(`http://127.0.0.1:${port}/health`);
        await r.text();
        statuses.add(r.status);
        if (r.status === 200) break;
        assert.ok(Date.now() < deadline, log);
        await new Promise((res) => setTimeout(res, 5));
      }
      assert.ok(statuses.has(503), `never saw 503 while loading (${[...statuses]})`);
      const r = await post(`http://127.0.0.1:${port}`, '/v1/chat/completions',
        { messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, ignore_eos: true });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.model, 'swiftlet-tiny-demo');
      assert.equal(r.json.usage.completion_tokens, 4);
      assert.match(log, /RANDOM weights/);
    } finally {
      proc.kill('SIGTERM');
      assert.equal(await exited, 0, log.slice(-2000));
    }
  });
});

describe('--policy slo', { skip }, () => {
  it('refuses an unreachable TTFT objective with 503 slo_unattainable, serves reachable ones, streams too', async () => {
    const srv = await startServer(['--policy', 'slo', '--slo-infeasible', 'reject', '--slo-ttft', '60000']);
    try {
      const client = srv.client();
      // alone on an idle server, even a hopeless objective is served
      const alone = await client.completions.create({ model: MODEL, prompt: 'hi', max_tokens: 2, slo_ttft_ms: 0.001 });
      assert.equal(alone.usage.completion_tokens > 0, true);
      // behind a running request, 1 microsecond cannot be met -> refused before any byte, with the reason
      const busy = client.completions.create({ model: MODEL, prompt: 'busy', max_tokens: 400, ignore_eos: true, stream: true });
      const it = (await busy)[Symbol.asyncIterator]();
      await it.next(); // its first token: it is running
      await assert.rejects(client.completions.create({ model: MODEL, prompt: 'hello there', max_tokens: 4, slo_ttft_ms: 0.001 }),
        (e) => e.status === 503 && e.code === 'slo_unattainable' && /objective/.test(e.message));
      await assert.rejects(client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, stream: true, slo_ttft_ms: 0.001,
      }), (e) => e.status === 503 && e.code === 'slo_unattainable');
      for (let c = await it.next(); !c.done; c = await it.next()) { /* let it finish */ }
      // the server default (60 s) and an explicit generous objective are met
      const ok = await client.completions.create({ model: MODEL, prompt: 'hello there', max_tokens: 4, ignore_eos: true });
      assert.equal(ok.usage.completion_tokens, 4);
      const stream = await client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5, ignore_eos: true, stream: true,
        slo_ttft_ms: 30000, slo_tpot_ms: 5000, priority: 1, user: 'tenant-a',
      });
      let chunks = 0;
      for await (const c of stream) if (c.choices[0]?.delta?.content) chunks++;
      assert.ok(chunks >= 1);
      const m = await scrape(srv.base);
      assert.equal(metric(m, 'swiftlet:slo_rejected_total'), 2);
      assert.ok(metric(m, 'swiftlet:step_time_predicted_ms') > 0);
      assert.ok(metric(m, 'swiftlet:step_time_actual_ms') > 0);
      assert.ok(Number.isFinite(metric(m, 'swiftlet:step_time_prediction_error')));
    } finally {
      const st = await srv.stop();
      assert.equal(st.code, 0, `exit ${JSON.stringify(st)}\n${srv.log().slice(-3000)}`);
    }
  });
  it('a bad --slo-ttft is refused at start with a message', async () => {
    await assert.rejects(startServer(['--policy', 'slo', '--slo-ttft', 'fast']), /slo-ttft/);
  });
});
