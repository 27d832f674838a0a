// api.test.mjs — end-to-end tests of `swiftlet serve` through the official openai client:
// completions and chat (streaming and not) against the reference's greedy outputs in
// ../shared/golden, stop strings (also split across tokens), usage counts, n > 1,
// logprobs, 32 concurrent streams, a client disconnecting mid-stream (the engine must
// free its request: /metrics back to idle), and each bad-input status + error JSON.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MODEL, golden, metric, post, scrape, sharedMissing, startServer } from './server.mjs';

describe('swiftlet serve (OpenAI API)', { skip: sharedMissing && 'no ../shared data' }, () => {
  let srv;
  let client;
  let gold;
  before(async () => {
    gold = golden();
    srv = await startServer(['--max-seqs', '48']);
    client = srv.client();
  });
  after(async () => {
    if (!srv) return;
    const st = await srv.stop();
    assert.equal(st.code, 0, `server did not exit cleanly on SIGTERM: ${JSON.stringify(st)}\n${srv.log().slice(-2000)}`);
  });

  it('health, models and metrics answer', async () => {
    const h = await fetch(`${srv.base}/health`);
    assert.equal(h.status, 200);
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
    const m = await scrape(srv.base);
    for (const name of ['num_requests_running', 'num_requests_waiting', 'kv_cache_usage_perc',
      'prefix_cache_queries_total', 'prefix_cache_hits_total', 'num_preemptions_total', 'prompt_tokens_total',
      'generation_tokens_total', 'time_to_first_token_seconds_count', 'time_per_output_token_seconds_count',
      'e2e_request_latency_seconds_count', 'request_queue_time_seconds_count']) {
      assert.notEqual(metric(m, `swiftlet:${name}`), undefined, `missing swiftlet:${name}`);
    }
  });

  it('greedy completions match the reference (text prompt and token-id prompt)', async () => {
    for (const c of gold.cases) {
      const r = await client.completions.create({ model: MODEL, prompt: c.text, max_tokens: 32, temperature: 0, ignore_eos: true });
      assert.equal(r.object, 'text_completion');
      assert.equal(r.usage.prompt_tokens, c.prompt_tokens.length, `prompt tokens of ${JSON.stringify(c.text)}`);
      assert.equal(r.usage.completion_tokens, 32);
      assert.equal(r.usage.total_tokens, c.prompt_tokens.length + 32);
      assert.equal(r.choices[0].finish_reason, 'length');
      assert.equal(r.choices[0].text, c.greedy_text, `continuation of ${JSON.stringify(c.text)}`);
      const byIds = await client.completions.create({ model: MODEL, prompt: c.prompt_tokens, max_tokens: 32, temperature: 0, ignore_eos: true });
      assert.equal(byIds.choices[0].text, c.greedy_text);
      assert.equal(byIds.usage.prompt_tokens, c.prompt_tokens.length);
    }
  });

  it('streamed completion equals the non-streamed one; usage chunk; finish_reason', async () => {
    const c = gold.cases[1];
    const stream = await client.completions.create({ model: MODEL, prompt: c.text, max_tokens: 20, temperature: 0,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const ch of stream) {
      if (ch.usage) { usage = ch.usage; assert.equal(ch.choices.length, 0); continue; }
      assert.equal(ch.object, 'text_completion');
      text += ch.choices[0].text;
      if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
      chunks++;
    }
    assert.ok(chunks >= 2, `only ${chunks} chunks`);
    assert.equal(finish, 'length');
    assert.deepEqual(usage, { prompt_tokens: c.prompt_tokens.length, completion_tokens: 20, total_tokens: c.prompt_tokens.length + 20 });
    const full = await client.completions.create({ model: MODEL, prompt: c.text, max_tokens: 20, temperature: 0, ignore_eos: true });
    assert.equal(text, full.choices[0].text);
    assert.ok(c.greedy_text.startsWith(text));
  });

  it('chat completions, streaming and not, agree', async () => {
    const messages = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: [{ type: 'text', text: 'Say hi.' }] }];
    const r = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, temperature: 0, ignore_eos: true });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(typeof r.choices[0].message.content, 'string');
    assert.ok(r.choices[0].message.content.length > 0);
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 12);
    assert.ok(r.usage.prompt_tokens > 5);
    const stream = await client.chat.completions.create({ model: MODEL, messages, max_tokens: 12, temperature: 0,
      ignore_eos: true, stream: true, stream_options: { include_usage: true } });
    let content = '';
    let role = null;
    let usage = null;
    let finish = null;
    for await (const ch of stream) {
      if (ch.usage) { usage = ch.usage; continue; }
      assert.equal(ch.object, 'chat.completion.chunk');
      const d = ch.choices[0].delta;
      if (d.role) role = d.role;
      if (d.content) content += d.content;
      if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
    }
    assert.equal(role, 'assistant');
    assert.equal(finish, 'length');
    assert.equal(content, r.choices[0].message.content);
    assert.deepEqual(usage, r.usage);
  });

  it('stop strings end the text before the stop (also when split across tokens)', async () => {
    const c = gold.cases[0];
    const g = c.greedy_text; // ' buffнос Jan Produ suffer ...'
    const words = g.split(' ').filter((w) => w.length >= 3);
    const single = ` ${words[2]}`;               // one whole token's text
    const spanning = g.slice(g.indexOf(words[2]) - 2, g.indexOf(words[2]) + 2); // across a token boundary
    for (const stop of [single, spanning, [spanning, 'zzzz-never']]) {
      const s = Array.isArray(stop) ? stop[0] : stop;
      const want = g.slice(0, g.indexOf(s));
      const r = await client.completions.create({ model: MODEL, prompt: c.text, max_tokens: 32, temperature: 0, stop });
      assert.equal(r.choices[0].text, want, `stop ${JSON.stringify(stop)}`);
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.ok(r.usage.completion_tokens < 32);
      const stream = await client.completions.create({ model: MODEL, prompt: c.text, max_tokens: 32, temperature: 0, stop, stream: true });
      let text = '';
      let finish = null;
      for await (const ch of stream) {
        text += ch.choices[0]?.text ?? '';
        if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
      }
      assert.equal(text, want, `streamed, stop ${JSON.stringify(stop)}`);
      assert.equal(finish, 'stop');
    }
  });

  it('n > 1, seeds and logprobs', async () => {
    const r = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 8, temperature: 1,
      seed: 7, n: 3, ignore_eos: true, logprobs: 2 });
    assert.equal(r.choices.length, 3);
    assert.deepEqual(r.choices.map((c) => c.index).sort(), [0, 1, 2]);
    assert.equal(r.usage.completion_tokens, 24);
    for (const ch of r.choices) {
      assert.equal(ch.logprobs.tokens.length, 8);
      assert.equal(ch.logprobs.token_logprobs.length, 8);
      assert.equal(ch.logprobs.tokens.join(''), ch.text);
      for (const lp of ch.logprobs.token_logprobs) assert.ok(lp <= 0);
      for (const top of ch.logprobs.top_logprobs) assert.ok(Object.keys(top).length >= 1 && Object.keys(top).length <= 2);
    }
    const again = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 8, temperature: 1,
      seed: 7, n: 3, ignore_eos: true });
    assert.deepEqual(again.choices.map((c) => c.text), r.choices.map((c) => c.text), 'same seed, same text');
    const chat = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 4, temperature: 0, ignore_eos: true, logprobs: true, top_logprobs: 3 });
    const content = chat.choices[0].logprobs.content;
    assert.equal(content.length, 4);
    for (const t of content) {
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(t.top_logprobs[0].logprob >= t.logprob - 1e-6, 'greedy: the sampled token is the best');
      if (!t.token.includes('\ufffd')) assert.deepEqual(t.bytes, [...Buffer.from(t.token, 'utf8')]);
    }
  });

  it('32 concurrent streaming requests all complete with the right token counts', async () => {
    const N = 32;
    const jobs = Array.from({ length: N }, async (_, i) => {
      const max = 8 + (i % 5);
      const stream = await client.completions.create({ model: MODEL, prompt: `Request number ${i}: once upon a time`,
        max_tokens: max, ignore_eos: true, temperature: 0.7, seed: i, stream: true, stream_options: { include_usage: true } });
      let usage = null;
      let finish = null;
      for await (const ch of stream) {
        if (ch.usage) usage = ch.usage;
        else if (ch.choices[0].finish_reason) finish = ch.choices[0].finish_reason;
      }
      return { max, usage, finish };
    });
    const res = await Promise.all(jobs);
    for (const r of res) {
      assert.equal(r.finish, 'length');
      assert.equal(r.usage.completion_tokens, r.max);
    }
  });

  it('a client that disconnects mid-stream is cancelled and its KV freed', async () => {
    const idle = await scrape(srv.base);
    const kvIdle = metric(idle, 'swiftlet:kv_cache_usage_perc');
    const abortsBefore = metric(idle, 'swiftlet:request_success_total', 'finished_reason="abort"');
    const stream = await client.completions.create({ model: MODEL, prompt: 'A very long story:', max_tokens: 1500,
      ignore_eos: true, stream: true });
    let got = 0;
    for await (const ch of stream) {
      if (ch.choices[0]?.text !== undefined) got++;
      if (got === 3) break; // leaving the loop aborts the HTTP request
    }
    assert.equal(got, 3);
    let m;
    const deadline = Date.now() + 10000;
    for (;;) {
      m = await scrape(srv.base);
      if (metric(m, 'swiftlet:num_requests_running') === 0 && metric(m, 'swiftlet:kv_cache_usage_perc') === kvIdle &&
          metric(m, 'swiftlet:request_success_total', 'finished_reason="abort"') === abortsBefore + 1) break;
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(metric(m, 'swiftlet:num_requests_running'), 0);
    assert.equal(metric(m, 'swiftlet:num_requests_waiting'), 0);
    assert.equal(metric(m, 'swiftlet:kv_cache_usage_perc'), kvIdle);
    assert.equal(metric(m, 'swiftlet:request_success_total', 'finished_reason="abort"'), abortsBefore + 1);
    assert.ok(metric(m, 'swiftlet:generation_tokens_total') < metric(idle, 'swiftlet:generation_tokens_total') + 1500);
  });

  it('bad input: 400 naming the field, 404, 405, 413, context overflow', async () => {
    const expectErr = (r, status, param) => {
      assert.equal(r.status, status, r.text);
      assert.equal(typeof r.json?.error?.message, 'string', r.text);
      assert.equal(typeof r.json.error.type, 'string');
      assert.ok('param' in r.json.error && 'code' in r.json.error, r.text);
      if (param !== undefined) assert.equal(r.json.error.param, param);
    };
    expectErr(await post(srv.base, '/v1/completions', '{"prompt": "x", '), 400, null);
    expectErr(await post(srv.base, '/v1/completions', { prompt: 'x', max_tokens: 'ten' }), 400, 'max_tokens');
    expectErr(await post(srv.base, '/v1/completions', { prompt: 'x', temperature: 9 }), 400, 'temperature');
    expectErr(await post(srv.base, '/v1/completions', { prompt: 'x', stop: [1] }), 400, 'stop');
    expectErr(await post(srv.base, '/v1/completions', { prompt: [1, 99999999] }), 400, 'prompt');
    expectErr(await post(srv.base, '/v1/chat/completions', { messages: 'hi' }), 400, 'messages');
    expectErr(await post(srv.base, '/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], n: 0 }), 400, 'n');
    expectErr(await post(srv.base, '/v1/completions', { prompt: 'x', model: 'gpt-4' }), 404, 'model');
    // prompt longer than the context (2048 tokens)
    const long = await post(srv.base, '/v1/completions', { prompt: Array(3000).fill(100) });
    expectErr(long, 400, 'prompt');
    assert.equal(long.json.error.code, 'context_length_exceeded');
    // body over the 4 MiB limit
    expectErr(await post(srv.base, '/v1/completions', JSON.stringify({ prompt: 'a'.repeat(5 << 20) })), 413);
    // unknown route, wrong method
    const nf = await fetch(`${srv.base}/v1/nothing`);
    expectErr({ status: nf.status, json: await nf.json(), text: '' }, 404);
    const wm = await fetch(`${srv.base}/v1/chat/completions`);
    expectErr({ status: wm.status, json: await wm.json(), text: '' }, 405);
    assert.equal(wm.headers.get('allow'), 'POST');
    // the SDK maps them to typed errors
    await assert.rejects(client.completions.create({ model: MODEL, prompt: 'x', max_tokens: -1 }),
      (e) => e.status === 400 && e.param === 'max_tokens');
    // and the server still serves
    const ok = await client.completions.create({ model: MODEL, prompt: 'still alive?', max_tokens: 2 });
    assert.equal(ok.choices.length, 1);
  });
});
