// hardening.test.mjs — end-to-end tests of the issue-11 hardening of `swiftlet serve`
// (one real server per describe, the openai client or raw fetch): every error is a JSON
// body (GET /%ff, a long non-ASCII model name), the sampled token's logprob is real when
// no alternatives are asked for, a prompt that cannot fit is refused before tokenization,
// non-streaming responses are bounded (chat's default max_tokens, a cap on logprob entries)
// and built as text token by token, API keys from a file or the environment and /metrics
// behind them, the access log, and prefix-cache isolation (cache_salt, --prefix-cache-scope).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { metric, post, scrape, sharedMissing, sleep, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';

describe('hardening: errors and logprobs', { skip }, () => {
  let srv;
  let client;
  before(async () => {
    srv = await startServer();
    client = srv.client();
  });
  after(async () => { if (srv) await srv.stop(); });

  it('GET /%ff answers a JSON 404 (the decoded URL is not valid UTF-8)', async () => {
    const r = await fetch(`${srv.base}/%ff`);
    assert.equal(r.status, 404);
    const j = JSON.parse(await r.text());
    assert.equal(j.error.code, 'not_found');
    assert.ok(j.error.message.includes('\ufffd'), j.error.message);
  });

  it('a long non-ASCII model name answers a JSON 404, message cut on a character', async () => {
    for (const ch of ['é', '€', '😀']) {
      const r = await post(srv.base, '/v1/chat/completions', { model: ch.repeat(400), messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 404, r.text);
      assert.ok(r.json, `not JSON: ${r.text.slice(0, 200)}`);
      assert.equal(r.json.error.code, 'model_not_found');
      assert.ok(!r.json.error.message.includes('\ufffd'), 'cut inside a character');
    }
  });

  it('chat logprobs: true without top_logprobs reports the real logprob', async () => {
    const base = { messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 8, temperature: 0 };
    const a = await client.chat.completions.create({ ...base, logprobs: true });
    const b = await client.chat.completions.create({ ...base, logprobs: true, top_logprobs: 1 });
    const la = a.choices[0].logprobs.content;
    const lb = b.choices[0].logprobs.content;
    assert.equal(la.length, lb.length);
    assert.ok(la.length > 0);
    for (let i = 0; i < la.length; i++) {
      assert.equal(la[i].token, lb[i].token);
      assert.ok(la[i].logprob < 0, `token ${i}: logprob ${la[i].logprob}`);
      // greedy: the sampled token is the top alternative
      assert.ok(Math.abs(la[i].logprob - lb[i].top_logprobs[0].logprob) < 1e-4, `token ${i}: ${la[i].logprob} vs ${lb[i].top_logprobs[0].logprob}`);
    }
  });

  it('completions logprobs: 0 reports the real logprob', async () => {
    const base = { model: undefined, prompt: 'The capital of France is', max_tokens: 8, temperature: 0 };
    const a = await post(srv.base, '/v1/completions', { ...base, logprobs: 0 });
    const b = await post(srv.base, '/v1/completions', { ...base, logprobs: 1 });
    assert.equal(a.status, 200, a.text);
    const la = a.json.choices[0].logprobs;
    const lb = b.json.choices[0].logprobs;
    assert.deepEqual(la.tokens, lb.tokens);
    la.token_logprobs.forEach((lp, i) => {
      assert.ok(lp < 0, `token ${i}: ${lp}`);
      assert.ok(Math.abs(lp - Object.values(lb.top_logprobs[i])[0]) < 1e-4, `token ${i}: ${lp} vs ${JSON.stringify(lb.top_logprobs[i])}`);
    });
  });
});

describe('hardening: prompt size', { skip }, () => {
  let srv;
  before(async () => { srv = await startServer(); });
  after(async () => { if (srv) await srv.stop(); });

  it('a 4 MB one-word prompt is refused before tokenization: a fast 400', async () => {
    const word = 'a'.repeat(4_000_000);
    for (const [path, body, param] of [
      ['/v1/completions', { prompt: word, max_tokens: 1 }, 'prompt'],
      ['/v1/chat/completions', { messages: [{ role: 'user', content: word }], max_tokens: 1 }, 'messages'],
    ]) {
      const t0 = performance.now();
      const r = await post(srv.base, path, body);
      const ms = performance.now() - t0;
      assert.equal(r.status, 400, r.text.slice(0, 300));
      assert.equal(r.json.error.code, 'context_length_exceeded');
      assert.equal(r.json.error.param, param);
      assert.match(r.json.error.message, /bytes/); // refused on its size, not after counting tokens
      assert.ok(ms < 1000, `${path}: ${ms.toFixed(0)} ms`);
    }
    // a prompt that fits still works
    const ok = await post(srv.base, '/v1/completions', { prompt: 'hello '.repeat(50), max_tokens: 2 });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe('hardening: response size', { skip }, () => {
  let srv;
  let client;
  before(async () => {
    srv = await startServer(['--max-tokens-default', '24', '--max-seqs', '16']);
    client = srv.client();
  });
  after(async () => { if (srv) await srv.stop(); });
  const messages = [{ role: 'user', content: 'Write a long story' }];

  it('n=16 x top_logprobs=20 x the default max_tokens, not streamed: 400 naming the field', async () => {
    // the audit's 54 MB response (chat's default max_tokens was the rest of the context)
    const r = await post(srv.base, '/v1/chat/completions', { messages, n: 16, logprobs: true, top_logprobs: 20, max_tokens: 2000 });
    assert.equal(r.status, 400, r.text.slice(0, 300));
    assert.equal(r.json.error.param, 'top_logprobs');
    const c = await post(srv.base, '/v1/completions', { prompt: 'Once', n: 16, logprobs: 20, max_tokens: 2000 });
    assert.equal(c.status, 400);
    assert.equal(c.json.error.param, 'logprobs');
  });

  it('chat without max_tokens stops at --max-tokens-default', async () => {
    const r = await client.chat.completions.create({ messages, temperature: 0, ignore_eos: true });
    assert.equal(r.usage.completion_tokens, 24);
    assert.equal(r.choices[0].finish_reason, 'length');
  });

  it('a large allowed response: JSON built token by token equals the streamed one', async () => {
    const req = { messages, n: 2, logprobs: true, top_logprobs: 5, max_tokens: 64, temperature: 0, ignore_eos: true };
    const r = await post(srv.base, '/v1/chat/completions', req);
    assert.equal(r.status, 200, r.text.slice(0, 300));
    assert.ok(r.text.length < 1_000_000, `${r.text.length} bytes`);
    assert.equal(r.json.choices.length, 2);
    const stream = await client.chat.completions.create({ ...req, n: 1, stream: true });
    const streamed = [];
    let text = '';
    for await (const ch of stream) {
      const d = ch.choices[0];
      if (d?.delta?.content) text += d.delta.content;
      if (d?.logprobs?.content) streamed.push(...d.logprobs.content);
    }
    for (const choice of r.json.choices) {
      assert.equal(choice.message.content, text);
      assert.equal(choice.logprobs.content.length, 64);
      assert.deepEqual(choice.logprobs.content.map((t) => [t.token, t.bytes, t.top_logprobs.length]),
        streamed.map((t) => [t.token, t.bytes, 5]));
      choice.logprobs.content.forEach((t, i) => assert.ok(Math.abs(t.logprob - streamed[i].logprob) < 1e-5));
    }
    const c = await post(srv.base, '/v1/completions', { prompt: 'Once upon', n: 2, logprobs: 3, max_tokens: 16, temperature: 0, ignore_eos: true });
    assert.equal(c.status, 200, c.text.slice(0, 300));
    for (const ch of c.json.choices) {
      assert.equal(ch.logprobs.tokens.length, 16);
      assert.equal(ch.logprobs.token_logprobs.length, 16);
      assert.equal(ch.logprobs.top_logprobs.length, 16);
      assert.equal(ch.logprobs.text_offset.length, 16);
      assert.equal(ch.logprobs.tokens.join(''), ch.text);
    }
    assert.equal(c.json.usage.completion_tokens, 32);
  });
});

describe('hardening: API keys and /metrics', { skip }, () => {
  let dir;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'swiftlet-keys-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const body = { prompt: 'hello', max_tokens: 2 };
  const auth = (k) => ({ Authorization: `Bearer ${k}` });

  it('--api-key-file (several keys, comments) + SWIFTLET_API_KEY; /metrics needs a key', async () => {
    const file = join(dir, 'keys');
    writeFileSync(file, '# team keys\n\nfile-key-1\n  file-key-2  \r\n# old-key\n');
    process.env.SWIFTLET_API_KEY = 'env-key';
    let srv;
    try {
      srv = await startServer(['--api-key-file', file]);
    } finally {
      delete process.env.SWIFTLET_API_KEY;
    }
    try {
      for (const k of ['file-key-1', 'file-key-2', 'env-key']) {
        const r = await post(srv.base, '/v1/completions', body, auth(k));
        assert.equal(r.status, 200, `${k}: ${r.text}`);
      }
      for (const k of ['old-key', '# old-key', 'file-key-', 'wrong']) {
        const r = await post(srv.base, '/v1/completions', body, auth(k));
        assert.equal(r.status, 401, k);
      }
      const m0 = await fetch(`${srv.base}/metrics`);
      assert.equal(m0.status, 401);
      assert.equal(JSON.parse(await m0.text()).error.type, 'authentication_error');
      const m1 = await fetch(`${srv.base}/metrics`, { headers: auth('file-key-2') });
      assert.equal(m1.status, 200);
      assert.match(await m1.text(), /swiftlet:num_requests_running/);
      assert.equal((await fetch(`${srv.base}/health`)).status, 200); // probes need no key
    } finally {
      await srv.stop();
    }
  });

  it('--metrics-public opens /metrics only', async () => {
    const srv = await startServer(['--api-key', 'k1', '--metrics-public']);
    try {
      assert.equal((await fetch(`${srv.base}/metrics`)).status, 200);
      assert.equal((await post(srv.base, '/v1/completions', body)).status, 401);
    } finally {
      await srv.stop();
    }
  });

  it('a key file without a key is refused at start', async () => {
    const file = join(dir, 'empty');
    writeFileSync(file, '# nothing here\n\n');
    await assert.rejects(startServer(['--api-key-file', file]), /exited early/);
  });
});

describe('hardening: access log', { skip }, () => {
  it('--access-log: one JSON line per request with route, status, tokens, TTFT, duration, user; no text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swiftlet-alog-'));
    const file = join(dir, 'access.log');
    const srv = await startServer(['--access-log', file]);
    const secret = 'SECRET-PROMPT-TEXT-4711';
    const readLines = () => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);
    await sleep(50);
    const n0 = readLines().length; // startServer's /health polls
    try {
      const client = srv.client();
      const chat = await client.chat.completions.create({
        messages: [{ role: 'user', content: secret }], max_tokens: 6, temperature: 0, ignore_eos: true, user: 'alice',
      });
      const stream = await client.completions.create({ prompt: `${secret} again`, max_tokens: 5, stream: true, user: 'bob', ignore_eos: true });
      let streamed = '';
      for await (const ch of stream) streamed += ch.choices[0]?.text ?? '';
      const nf = await fetch(`${srv.base}/no/such/${secret}`);
      await nf.text();
      await (await fetch(`${srv.base}/health`)).text();
      let lines = [];
      for (let i = 0; i < 100 && lines.length < 4; i++) {
        await sleep(20);
        lines = readLines().slice(n0);
      }
      assert.equal(lines.length, 4, lines.join('\n'));
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(secret), 'prompt text in the access log');
      const out = chat.choices[0].message.content;
      if (out.length >= 8) assert.ok(!text.includes(JSON.stringify(out).slice(1, -1)), 'output text in the access log');
      const recs = lines.map((l) => JSON.parse(l));
      for (const r of recs) {
        assert.match(r.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(r.duration_ms >= 0);
      }
      const [c, st, n404, h] = recs;
      assert.deepEqual([c.method, c.route, c.status, c.user], ['POST', '/v1/chat/completions', 200, 'alice']);
      assert.equal(c.prompt_tokens, chat.usage.prompt_tokens);
      assert.equal(c.completion_tokens, 6);
      assert.ok(c.ttft_ms > 0 && c.ttft_ms <= c.duration_ms, JSON.stringify(c));
      assert.deepEqual([st.route, st.status, st.user, st.completion_tokens], ['/v1/completions', 200, 'bob', 5]);
      assert.ok(st.ttft_ms > 0);
      assert.deepEqual([n404.method, n404.route, n404.status, n404.user], ['GET', 'unknown', 404, null]);
      assert.deepEqual([h.route, h.status], ['/health', 200]);
    } finally {
      await srv.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('hardening: prefix-cache isolation', { skip }, () => {
  const long = (tag) => `${tag} ` + 'the quick brown fox jumps over the lazy dog and keeps running far away '.repeat(8);
  // prompt tokens served from the prefix cache by one request (delta of the hits counter,
  // read once the engine's stats show the request's lookup: queries grew)
  const counters = async (srv) => {
    const m = await scrape(srv.base);
    return [metric(m, 'swiftlet:prefix_cache_queries_total'), metric(m, 'swiftlet:prefix_cache_hits_total')];
  };
  const hits = async (srv, body) => {
    const [q0, h0] = await counters(srv);
    const r = await post(srv.base, '/v1/completions', { max_tokens: 1, ...body });
    assert.equal(r.status, 200, r.text);
    for (let i = 0; i < 200; i++) {
      const [q, h] = await counters(srv);
      if (q > q0) return h - h0;
      await sleep(10);
    }
    throw new Error('the prefix-cache counters never moved');
  };

  it('cache_salt: blocks shared only between requests with the same salt', async () => {
    const srv = await startServer();
    try {
      const prompt = long('Salted');
      assert.equal(await hits(srv, { prompt, cache_salt: 'tenant-a' }), 0);
      assert.equal(await hits(srv, { prompt, cache_salt: 'tenant-b' }), 0, 'another salt hit the cache');
      assert.equal(await hits(srv, { prompt }), 0, 'no salt hit a salted block');
      const same = await hits(srv, { prompt, cache_salt: 'tenant-a' });
      assert.ok(same >= 48, `same salt did not share (${same} tokens)`);
      assert.ok(await hits(srv, { prompt }) >= 48, 'shared namespace did not share');
      const bad = await post(srv.base, '/v1/completions', { prompt, cache_salt: '' });
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.param, 'cache_salt');
    } finally {
      await srv.stop();
    }
  });

  it('--prefix-cache-scope user: blocks shared only within one user', async () => {
    const srv = await startServer(['--prefix-cache-scope', 'user']);
    try {
      const prompt = long('Scoped');
      assert.equal(await hits(srv, { prompt, user: 'u1' }), 0);
      assert.equal(await hits(srv, { prompt, user: 'u2' }), 0, 'another user hit the cache');
      assert.equal(await hits(srv, { prompt }), 0, 'an anonymous request hit a user block');
      assert.ok(await hits(srv, { prompt, user: 'u1' }) >= 48, 'the same user did not share');
      assert.equal(await hits(srv, { prompt, user: 'u1', cache_salt: 's' }), 0, 'the salt did not narrow the scope');
    } finally {
      await srv.stop();
    }
  });
});

