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
      assert.equal((await srv.stop()).code, 0);
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
      const m = await scrape(srv.base);
      assert.equal(metric(m, 'swiftlet:num_requests_running'), 0);
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });

  it('SIGTERM during a stream ends the stream and exits 0', async () => {
    const srv = await startServer([]);
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
