// drain.test.mjs — graceful drain on SIGTERM/SIGINT, end to end: with streams and a
// non-streaming request in flight, the signal turns /health to 503 {"status":"draining"}
// and new requests to 503 (code "draining") at once, while every request in flight
// completes in full; then the process exits 0. --drain-timeout bounds the wait.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MODEL, post, sharedMissing, sleep, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';

async function readStream(stream) {
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const ch of stream) {
    if (ch.usage) usage = ch.usage;
    else { chunks++; if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason; }
  }
  return { chunks, finish, usage };
}

describe('graceful drain', { skip }, () => {
  it('SIGTERM: health 503 draining, new requests 503, streams in flight finish, exit 0', async () => {
    const srv = await startServer(['--drain-timeout', '60']);
    const client = srv.client();
    const N = 4;
    const max = 600;
    const streams = await Promise.all(Array.from({ length: N }, (_, i) => client.completions.create({
      model: MODEL, prompt: `drain ${i}`, max_tokens: max, ignore_eos: true, stream: true,
      stream_options: { include_usage: true } })));
    const reads = streams.map(readStream);
    const whole = client.completions.create({ model: MODEL, prompt: 'drain whole', max_tokens: max, ignore_eos: true });
    await sleep(300); // all of them running
    process.kill(srv.pid, 'SIGTERM');
    await sleep(100);
    const h = await fetch(`${srv.base}/health`);
    assert.equal(h.status, 503);
    assert.deepEqual(await h.json(), { status: 'draining' });
    const late = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'late', max_tokens: 2 });
    assert.equal(late.status, 503, late.text);
    assert.equal(late.json.error.code, 'draining');
    const res = await Promise.all(reads);
    for (const r of res) {
      assert.equal(r.finish, 'length');
      assert.equal(r.usage.completion_tokens, max);
    }
    assert.equal((await whole).usage.completion_tokens, max);
    // drained: it exits by itself, without a second signal
    const st = await Promise.race([srv.waitExit(), sleep(10000).then(() => srv.stop())]);
    assert.equal(st.code, 0, srv.log().slice(-2000));
    assert.match(srv.log(), /drained/);
  });

  it('--drain-timeout ends what is still running and exits 0', async () => {
    const srv = await startServer(['--drain-timeout', '1']);
    const stream = await srv.client().completions.create({ model: MODEL, prompt: 'forever', max_tokens: 100000,
      ignore_eos: true, stream: true });
    const read = readStream(stream).catch((e) => ({ error: e }));
    await sleep(200);
    const t0 = Date.now();
    const st = await srv.stop();
    assert.equal(st.code, 0, srv.log().slice(-2000));
    assert.ok(Date.now() - t0 < 5000, `exit after ${Date.now() - t0} ms`);
    const r = await read;
    assert.ok(r.error || r.finish !== 'length', 'the stream was cut, not completed');
  });
});
