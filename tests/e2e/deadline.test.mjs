// deadline.test.mjs — request deadlines end to end: --queue-timeout (a request that waits
// too long for a place in the batch gets 503 queue_timeout, streaming or not, before any
// byte of a stream) and the per-request `timeout` extension (running: the text so far with
// finish_reason "timeout"; still queued: 504 request_timeout); KV blocks all free after.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MODEL, metric, post, scrape, sharedMissing, sleep, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';

describe('deadlines', { skip }, () => {
  it('--queue-timeout and the request timeout', async () => {
    const srv = await startServer(['--max-seqs', '1', '--queue-timeout', '1']);
    try {
      const client = srv.client();
      // a long request holds the only seat
      const hog = await client.completions.create({ model: MODEL, prompt: 'hog', max_tokens: 1800, ignore_eos: true, stream: true });
      const it0 = hog[Symbol.asyncIterator]();
      await it0.next();
      const t0 = Date.now();
      const [queued, queuedStream, ownTimeout] = await Promise.all([
        post(srv.base, '/v1/completions', { model: MODEL, prompt: 'waits', max_tokens: 4 }),
        post(srv.base, '/v1/completions', { model: MODEL, prompt: 'waits too', max_tokens: 4, stream: true }),
        post(srv.base, '/v1/completions', { model: MODEL, prompt: 'impatient', max_tokens: 4, timeout: 0.3 }),
      ]);
      assert.equal(queued.status, 503, queued.text);
      assert.equal(queued.json.error.code, 'queue_timeout');
      assert.match(queued.json.error.message, /queue timeout/);
      assert.ok(Number(queued.headers.get('retry-after')) >= 1);
      assert.equal(queuedStream.status, 503, queuedStream.text);
      assert.equal(queuedStream.json.error.code, 'queue_timeout');
      assert.equal(ownTimeout.status, 504, ownTimeout.text);
      assert.equal(ownTimeout.json.error.code, 'request_timeout');
      assert.ok(Date.now() - t0 >= 1000 && Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
      await it0.return?.(); // the hog's client leaves: it is cancelled
      // running requests past their own timeout end with what they have
      let st = null;
      for (let i = 0; i < 100 && st !== 0; i++) {
        await sleep(50);
        st = metric(await scrape(srv.base), 'swiftlet:num_requests_running');
      }
      const r = await client.completions.create({ model: MODEL, prompt: 'short on time', max_tokens: 1800, ignore_eos: true,
        timeout: 0.5 });
      assert.equal(r.choices[0].finish_reason, 'timeout');
      assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens < 1800, `${r.usage.completion_tokens} tokens`);
      const s = await client.completions.create({ model: MODEL, prompt: 'short on time', max_tokens: 1800, ignore_eos: true,
        timeout: 0.5, stream: true });
      let finish = null;
      let chunks = 0;
      for await (const ch of s) { chunks++; if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason; }
      assert.equal(finish, 'timeout');
      assert.ok(chunks > 1 && chunks < 1800);
      const bad = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'x', timeout: -1 });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.param, 'timeout');
      // every KV block back once idle
      let m;
      for (let i = 0; i < 100; i++) {
        m = await scrape(srv.base);
        if (metric(m, 'swiftlet:num_requests_running') === 0 && metric(m, 'swiftlet:kv_cache_usage_perc') === 0) break;
        await sleep(50);
      }
      assert.equal(metric(m, 'swiftlet:num_requests_waiting'), 0);
      assert.equal(metric(m, 'swiftlet:kv_cache_usage_perc'), 0);
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });
});
