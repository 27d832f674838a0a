// structured.test.mjs — structured outputs end to end with the official openai client on
// the tiny random-weight GPT-2-vocab model (temperature 1, many seeds):
// chat.completions.parse + zodResponseFormat (every completion that ends by EOS parses and
// validates against the zod schema; one cut by max_tokens finishes 'length'), json_object,
// vLLM's guided_choice / guided_regex and llama-server's grammar through extra body
// fields, and a 400 naming an unsupported schema keyword.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { zodResponseFormat } from 'openai/helpers/zod';
import { post, sharedMissing, startServer } from './server.mjs';

const MODEL = 'qwen2-gpt2-tiny.f32';

describe('structured outputs', { skip: sharedMissing && 'no ../shared data' }, () => {
  let srv;
  let client;
  before(async () => {
    srv = await startServer(['--max-seqs', '16'], { model: MODEL });
    client = srv.client();
  });
  after(async () => {
    if (!srv) return;
    const st = await srv.stop();
    assert.equal(st.code, 0, `server did not exit cleanly: ${JSON.stringify(st)}`);
  });

  const Pet = z.object({
    name: z.string().max(6),
    age: z.number().int().min(0).max(30),
    kind: z.enum(['cat', 'dog', 'fish']),
    vaccinated: z.boolean(),
  });

  it('chat.completions.parse with zodResponseFormat: EOS-ended outputs validate', async () => {
    const runs = await Promise.all([...Array(16).keys()].map(async (seed) => {
      try {
        const c = await client.beta.chat.completions.parse({
          model: MODEL,
          messages: [{ role: 'user', content: 'Describe a pet as JSON.' }],
          response_format: zodResponseFormat(Pet, 'pet'),
          temperature: 1,
          seed,
          max_tokens: 200,
        });
        return { c };
      } catch (err) {
        return { err };
      }
    }));
    let parsed = 0;
    for (const { c, err } of runs) {
      if (err) {
        assert.equal(err.constructor.name, 'LengthFinishReasonError', `unexpected error: ${err}`);
        continue;
      }
      const msg = c.choices[0].message;
      assert.equal(c.choices[0].finish_reason, 'stop');
      assert.ok(msg.parsed, `no parsed value for ${msg.content}`);
      assert.deepEqual(Pet.parse(JSON.parse(msg.content)), msg.parsed);
      parsed++;
    }
    assert.ok(parsed >= 4, `only ${parsed} of 16 completions ended by EOS`);
  });

  it('a constrained output cut by max_tokens finishes with length', async () => {
    const c = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'pet?' }],
      response_format: zodResponseFormat(Pet, 'pet'),
      max_tokens: 3,
    });
    assert.equal(c.choices[0].finish_reason, 'length');
  });

  it('json_object gives a JSON object (or its start when cut by max_tokens)', async () => {
    for (let seed = 0; seed < 8; seed++) {
      const c = await client.chat.completions.create({
        model: MODEL, messages: [{ role: 'user', content: 'json please' }],
        response_format: { type: 'json_object' }, seed, max_tokens: 60,
      });
      const text = c.choices[0].message.content;
      assert.match(text, /^[ \t\n\r]*\{/, `not the start of an object: ${text}`);
      if (c.choices[0].finish_reason !== 'stop') continue; /* random weights: rarely closes */
      const v = JSON.parse(text);
      assert.equal(typeof v, 'object');
      assert.ok(v !== null && !Array.isArray(v));
    }
  });

  it('guided_choice, guided_regex and a GBNF grammar', async () => {
    for (let seed = 0; seed < 4; seed++) {
      const a = await client.completions.create({ model: MODEL, prompt: 'Is it?', guided_choice: ['yes', 'no', 'maybe'], seed, max_tokens: 10 });
      assert.ok(['yes', 'no', 'maybe'].includes(a.choices[0].text), a.choices[0].text);
      const b = await client.completions.create({ model: MODEL, prompt: 'Code:', guided_regex: '[A-Z]{2}-[0-9]{3}', seed, max_tokens: 10 });
      assert.match(b.choices[0].text, /^[A-Z]{2}-[0-9]{3}$/);
      const g = await client.completions.create({
        model: MODEL, prompt: 'List:', grammar: 'root ::= item ("," item){0,2}\nitem ::= "a" | "bb" | [0-9]', seed, max_tokens: 12,
      });
      if (g.choices[0].finish_reason === 'stop') assert.match(g.choices[0].text, /^(a|bb|[0-9])(,(a|bb|[0-9])){0,2}$/);
    }
  });

  it('an unsupported schema keyword is a 400 naming it', async () => {
    const r = await post(srv.base, '/v1/chat/completions', {
      model: MODEL, messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', uniqueItems: true } } },
    });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, 'response_format');
    assert.match(r.json.error.message, /uniqueItems/);
    const r2 = await post(srv.base, '/v1/completions', { model: MODEL, prompt: 'x', guided_regex: 'a(?=b)' });
    assert.equal(r2.status, 400);
    assert.match(r2.json.error.message, /lookaround/);
  });
});
