// net.test.mjs — end-to-end tests of the server's connection handling against abuse, over
// real loopback sockets (node:net, no HTTP client in the way):
//  - decisions taken on the headers alone, before any body is read: 401 for a bad or
//    missing key, 404, 405 and 413 (declared Content-Length over the limit) arrive while
//    the client has sent only headers; 50 unauthenticated partial bodies leave the
//    server's memory and thread count where they were.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { MODEL, post, procStatus, sharedMissing, sleep, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';

// Opens a socket, writes `head`, resolves { text, ms } once the server answers (first
// bytes of a complete status line + headers) or closes; ms from connect to the answer.
function rawRequest(port, head, { localAddress, timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress });
    let text = '';
    const t0 = Date.now();
    const done = (err) => { clearTimeout(t); s.destroy(); resolve({ text, ms: Date.now() - t0, err }); };
    const t = setTimeout(() => done('timeout'), timeoutMs);
    s.on('data', (d) => { text += d; if (/\r\n\r\n/.test(text) && /Content-Length: (\d+)/i.test(text)) {
      const n = Number(text.match(/Content-Length: (\d+)/i)[1]);
      if (text.length - text.indexOf('\r\n\r\n') - 4 >= n) done();
    } });
    s.on('close', () => done());
    s.on('error', (e) => done(e.code));
    s.write(head);
  });
}

function postHead(path, { key, length, extra = '' } = {}) {
  return `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    (key ? `Authorization: Bearer ${key}\r\n` : '') + `Content-Length: ${length}\r\n${extra}\r\n`;
}

const statusOf = (r) => Number((r.text.match(/^HTTP\/1\.1 (\d{3})/) || [])[1]);

describe('decisions on the headers, before the body', { skip }, () => {
  it('401 / 404 / 405 / 413 arrive with only the headers sent', async () => {
    const srv = await startServer(['--api-key', 'right-key']);
    try {
      const big = 1 << 30; // 1 GiB declared, never sent
      for (const [head, want] of [
        [postHead('/v1/completions', { key: 'wrong', length: big }), 401],
        [postHead('/v1/chat/completions', { length: big }), 401],
        [postHead('/v1/nothing', { key: 'right-key', length: big }), 404],
        [`PUT /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer right-key\r\nContent-Length: ${big}\r\n\r\n`, 405],
        [postHead('/v1/completions', { key: 'right-key', length: big }), 413],
      ]) {
        const r = await rawRequest(srv.port, head);
        assert.equal(statusOf(r), want, `${head.split('\r\n')[0]}: ${r.text || r.err}`);
        assert.ok(r.ms < 1000, `answered after ${r.ms} ms`);
        const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
        assert.equal(typeof body.error.message, 'string');
      }
      // the right key with an acceptable body still works
      const ok = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'hi', max_tokens: 2 },
        { Authorization: 'Bearer right-key' });
      assert.equal(ok.status, 200, ok.text);
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });

  it('50 unauthenticated partial bodies cost no memory and no threads', async () => {
    const srv = await startServer(['--api-key', 'right-key']);
    const socks = [];
    try {
      await post(srv.base, '/v1/completions', { prompt: 'warm', max_tokens: 2 }, { Authorization: 'Bearer right-key' });
      await sleep(200);
      const before = procStatus(srv.pid);
      const answers = [];
      const chunk = Buffer.alloc(1 << 20, 0x61); // 1 MiB of body per connection (of 4 MiB declared)
      for (let i = 0; i < 50; i++) {
        const s = net.connect({ port: srv.port, host: '127.0.0.1' });
        s.on('error', () => {});
        let text = '';
        answers.push(new Promise((res) => {
          const t = setTimeout(() => res('still open'), 3000);
          s.on('data', (d) => { text += d; });
          s.on('close', () => { clearTimeout(t); res(text); });
        }));
        s.write(postHead('/v1/completions', { key: 'guess', length: 4 << 20 }));
        s.write('{"prompt":"');
        s.write(chunk);
        socks.push(s);
      }
      const texts = await Promise.all(answers);
      // the server answers 401 and closes without reading the rest; the client may see the
      // answer or, with its unread megabyte refused, a reset — never a connection left open
      for (const t of texts) assert.ok(t === '' || /^HTTP\/1\.1 401/.test(t), t.slice(0, 40));
      assert.ok(texts.some((t) => /^HTTP\/1\.1 401/.test(t)), 'no 401 seen at all');
      await sleep(300);
      const after = procStatus(srv.pid);
      assert.ok(after.rssKiB - before.rssKiB < 8 * 1024, `RSS grew ${before.rssKiB} -> ${after.rssKiB} KiB`);
      assert.ok(after.threads <= before.threads, `threads ${before.threads} -> ${after.threads}`);
    } finally {
      for (const s of socks) s.destroy();
      assert.equal((await srv.stop()).code, 0);
    }
  });
});

// Opens n connections from localAddress that send half a request line and then nothing.
async function halfOpen(port, n, localAddress) {
  const socks = [];
  let closed = 0;
  await Promise.all(Array.from({ length: n }, () => new Promise((res) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => { s.write('POST /v1/compl'); res(); });
    s.on('error', () => res());
    s.on('close', () => { closed++; res(); });
    socks.push(s);
  })));
  return { socks, closed: () => closed, destroy: () => socks.forEach((s) => s.destroy()) };
}

describe('slow clients hold no threads', { skip }, () => {
  it('300 half-open connections from one address do not delay a normal request', async () => {
    const srv = await startServer(['--max-conns-per-ip', '1000', '--http-threads', '2']);
    let idle;
    try {
      const base = procStatus(srv.pid).threads;
      idle = await halfOpen(srv.port, 300, '127.0.0.2');
      await sleep(300);
      assert.equal(idle.closed(), 0, 'the server dropped idle connections it should hold');
      const t0 = Date.now();
      const r = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'hello', max_tokens: 4, ignore_eos: true });
      const ms = Date.now() - t0;
      assert.equal(r.status, 200, r.text);
      assert.ok(ms < 1000, `answered after ${ms} ms`);
      const h = await rawRequest(srv.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(statusOf(h), 200);
      assert.ok(h.ms < 1000, `/health after ${h.ms} ms`);
      const threads = procStatus(srv.pid).threads;
      assert.ok(threads <= base + 2, `threads ${base} -> ${threads} with 300 open connections`);
    } finally {
      idle?.destroy();
      assert.equal((await srv.stop()).code, 0);
    }
  });

  it('per-address connection limit and read timeout', async () => {
    const srv = await startServer(['--max-conns-per-ip', '20', '--read-timeout', '2']);
    let idle;
    try {
      idle = await halfOpen(srv.port, 60, '127.0.0.2');
      await sleep(500);
      // the 40 beyond the limit are closed at once; the 20 others when their read time is up
      assert.ok(idle.closed() >= 40 && idle.closed() < 60, `${idle.closed()} closed`);
      const r = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'hello', max_tokens: 2 });
      assert.equal(r.status, 200, r.text);
      const t0 = Date.now();
      while (idle.closed() < 60 && Date.now() - t0 < 6000) await sleep(50);
      assert.equal(idle.closed(), 60, 'slow requests were not cut at the read timeout');
    } finally {
      idle?.destroy();
      assert.equal((await srv.stop()).code, 0);
    }
  });

  it('requests waiting for tokens do not pin the HTTP thread', async () => {
    // one HTTP thread, one running sequence: 6 requests wait (streaming and not) while
    // /health, /metrics and a 7th request are still served by that same thread
    const srv = await startServer(['--http-threads', '1', '--max-seqs', '1']);
    try {
      const client = srv.client();
      const long = { model: MODEL, prompt: 'long story', max_tokens: 300, ignore_eos: true };
      const jobs = [];
      for (let i = 0; i < 3; i++) jobs.push(client.completions.create(long));
      for (let i = 0; i < 3; i++) {
        jobs.push((async () => {
          // counted by the usage chunk: a sampled token that ends inside a UTF-8 character
          // sends no chunk of its own (its bytes go out with the next one)
          let n = 0;
          const opts = { ...long, stream: true, stream_options: { include_usage: true } };
          for await (const ch of await client.completions.create(opts)) if (ch.usage) n = ch.usage.completion_tokens;
          return n;
        })());
      }
      await sleep(300);
      const t0 = Date.now();
      const h = await fetch(`${srv.base}/health`);
      assert.equal(h.status, 200);
      assert.ok(Date.now() - t0 < 1000, `/health after ${Date.now() - t0} ms`);
      const res = await Promise.all(jobs);
      for (const r of res.slice(0, 3)) assert.equal(r.usage.completion_tokens, 300);
      for (const n of res.slice(3)) assert.equal(n, 300, `${n} tokens streamed`);
    } finally {
      assert.equal((await srv.stop()).code, 0);
    }
  });
});
