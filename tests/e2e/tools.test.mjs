// tools.test.mjs — OpenAI tool calling end to end with the official openai client, on tiny
// random-weight models that carry real chat templates (written by `gen-model
// --chat-template`): the Qwen3 template (Hermes <tool_call> syntax, detected from the
// template), the shared Llama 3.1 template with --tool-parser llama3, and Mistral's
// [TOOL_CALLS] syntax with --tool-parser mistral. A random model emits random tokens, so
// tool_choice required / named is what makes calls appear: every call must parse and its
// arguments validate (zod, strict) against the tool's parameters, over several seeds at
// temperature 1. Also: streamed calls reassembled by the client's stream helper equal the
// non-streamed ones for the same seed; parallel_tool_calls; n > 1; tool_choice none and
// auto; a tool-result round trip (POST /apply-template against the shared template cases
// that include tools); 400s for bad tool fields.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { zodFunction } from 'openai/helpers/zod';
import { bin, post, shared, sharedMissing, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';
const dir = mkdtempSync(join(tmpdir(), 'swiftlet-tools-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function genModel(template) {
  const out = join(dir, `${template}.gguf`);
  const r = spawnSync(bin, ['gen-model', '-o', out, '--chat-template', resolve(shared, 'templates', `${template}.jinja`), '--ctx', '4096'],
    { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

const Weather = z.object({ city: z.enum(['Paris', 'Oslo', 'Lima']), days: z.number().int().min(1).max(7) });
const Alarm = z.object({ hour: z.number().int().min(0).max(23), loud: z.boolean() });
const SCHEMAS = { get_weather: Weather, set_alarm: Alarm };
const TOOLS = [
  zodFunction({ name: 'get_weather', parameters: Weather, description: 'Weather forecast for a city.' }),
  zodFunction({ name: 'set_alarm', parameters: Alarm, description: 'Sets an alarm.' }),
];
const MESSAGES = [{ role: 'user', content: 'Weather in Paris for 3 days, and wake me at 7.' }];
const SEEDS = [...Array(8).keys()];

// Checks one choice's calls: ids, type, known names, arguments that validate; returns them.
// A choice cut by max_tokens may end inside its last call: that one is not checked.
function checkCalls(choice, label) {
  const all = choice.message.tool_calls || [];
  const calls = choice.finish_reason === 'length' ? all.slice(0, -1) : all;
  for (const c of calls) {
    assert.match(c.id, /^call_[A-Za-z0-9]{24}$/, label);
    assert.equal(c.type, 'function', label);
    const schema = SCHEMAS[c.function.name];
    assert.ok(schema, `${label}: unknown function ${c.function.name}`);
    assert.equal(typeof c.function.arguments, 'string', label);
    const args = JSON.parse(c.function.arguments);
    schema.strict().parse(args); // throws when the arguments do not validate
  }
  if (choice.finish_reason === 'tool_calls') {
    assert.ok(calls.length >= 1, label);
    assert.equal(choice.message.content, null, `${label}: content ${JSON.stringify(choice.message.content)}`);
  }
  return calls;
}

const byName = (calls) => calls.map((c) => [c.function.name, c.function.arguments]);

for (const fam of [
  { name: 'hermes (Qwen3 template, detected)', template: 'qwen3', args: [] },
  { name: 'llama3 (Llama 3.1 template, --tool-parser llama3)', template: 'llama3_1', args: ['--tool-parser', 'llama3'] },
  { name: 'mistral (--tool-parser mistral)', template: 'qwen3', args: ['--tool-parser', 'mistral'] },
]) {
  describe(`tool calls: ${fam.name}`, { skip }, () => {
    let srv;
    let client;
    before(async () => {
      srv = await startServer(['-m', genModel(fam.template), '--max-seqs', '8', ...fam.args]);
      client = srv.client();
    });
    after(async () => { if (srv) assert.equal((await srv.stop()).code, 0); });

    const create = (extra) => client.chat.completions.create({ messages: MESSAGES, tools: TOOLS, temperature: 1, max_tokens: 600, ...extra });

    // parallel_tool_calls false here: a random model rarely chooses to stop between calls
    it('tool_choice required: every call parses and validates, over seeds', async () => {
      const rs = await Promise.all(SEEDS.map((seed) => create({ tool_choice: 'required', parallel_tool_calls: false, seed })));
      let ended = 0;
      for (const [k, r] of rs.entries()) {
        const ch = r.choices[0];
        assert.ok(['tool_calls', 'length'].includes(ch.finish_reason), `seed ${k}: ${ch.finish_reason}`);
        if (ch.finish_reason !== 'tool_calls') continue;
        ended++;
        checkCalls(ch, `seed ${k}`);
      }
      assert.ok(ended >= SEEDS.length / 2, `only ${ended} of ${SEEDS.length} completed their calls`);
    });

    it('named tool_choice: exactly one call of that tool', async () => {
      const rs = await Promise.all(SEEDS.map((seed) => create({ tool_choice: { type: 'function', function: { name: 'set_alarm' } }, seed })));
      let ended = 0;
      for (const [k, r] of rs.entries()) {
        const ch = r.choices[0];
        if (ch.finish_reason !== 'tool_calls') { assert.equal(ch.finish_reason, 'length'); continue; }
        ended++;
        const calls = checkCalls(ch, `seed ${k}`);
        assert.equal(calls.length, 1);
        assert.equal(calls[0].function.name, 'set_alarm');
      }
      assert.ok(ended >= SEEDS.length / 2, `only ${ended} of ${SEEDS.length} completed`);
    });

    it('parallel_tool_calls: false gives exactly one call; true allows several', async () => {
      const one = await Promise.all(SEEDS.map((seed) => create({ tool_choice: 'required', parallel_tool_calls: false, seed })));
      for (const r of one) {
        if (r.choices[0].finish_reason === 'tool_calls') assert.equal(checkCalls(r.choices[0], 'parallel false').length, 1);
      }
      const many = await Promise.all([...Array(6).keys()].map((seed) => create({ tool_choice: 'required', parallel_tool_calls: true, seed: 100 + seed })));
      const counts = many.map((r) => { checkCalls(r.choices[0], 'parallel true'); return (r.choices[0].message.tool_calls || []).length; });
      assert.ok(counts.some((n) => n > 1), `no response with more than one call: ${counts}`);
    });

    it('streamed calls, reassembled by the client helper, equal the non-streamed ones (same seed)', async () => {
      let compared = 0;
      for (const seed of [1, 2, 3, 4]) {
        const body = { messages: MESSAGES, tools: TOOLS, tool_choice: 'required', parallel_tool_calls: seed % 2 === 0, temperature: 1, max_tokens: 600, seed };
        const plain = await client.chat.completions.create(body);
        const chunks = [];
        const stream = client.beta.chat.completions.stream(body);
        stream.on('chunk', (c) => chunks.push(c));
        let final;
        try {
          final = await stream.finalChatCompletion();
        } catch (err) { // the helper refuses a completion cut by max_tokens
          assert.equal(err.constructor.name, 'LengthFinishReasonError', String(err));
          assert.equal(plain.choices[0].finish_reason, 'length');
          continue;
        }
        compared++;
        const a = plain.choices[0];
        const b = final.choices[0];
        assert.equal(b.finish_reason, a.finish_reason, `seed ${seed}`);
        assert.deepEqual(byName(b.message.tool_calls || []), byName(a.message.tool_calls || []), `seed ${seed}`);
        if (a.finish_reason === 'tool_calls') checkCalls(b, `stream seed ${seed}`);
        // OpenAI's shape: the first delta of a call has index, id, type and name; then fragments
        const deltas = chunks.flatMap((c) => c.choices.flatMap((x) => x.delta.tool_calls || []));
        const first = deltas.find((d) => d.index === 0);
        assert.ok(first && first.id && first.type === 'function' && first.function.name && first.function.arguments === '', JSON.stringify(first));
        assert.ok(deltas.filter((d) => d.index === 0 && !d.id).every((d) => typeof d.function.arguments === 'string'));
      }
      assert.ok(compared >= 1, 'no seed completed its calls');
    });

    it('n > 1: every choice has its own valid calls', async () => {
      const r = await create({ tool_choice: 'required', n: 3, seed: 7 });
      assert.equal(r.choices.length, 3);
      for (const ch of r.choices) {
        assert.ok(['tool_calls', 'length'].includes(ch.finish_reason));
        if (ch.finish_reason === 'tool_calls') checkCalls(ch, `choice ${ch.index}`);
      }
    });

    it('tool_choice auto is accepted and well-formed', async () => {
      const rs = await Promise.all(SEEDS.map((seed) => create({ tool_choice: 'auto', seed, max_tokens: 40 })));
      for (const r of rs) {
        const ch = r.choices[0];
        assert.ok(['stop', 'length', 'tool_calls'].includes(ch.finish_reason));
        checkCalls(ch, 'auto');
        if (!ch.message.tool_calls) assert.equal(typeof ch.message.content, 'string');
      }
    });
  });
}

describe('tool calls: request fields and the round trip (Qwen3 template)', { skip }, () => {
  let srv;
  let client;
  before(async () => {
    srv = await startServer(['-m', genModel('qwen3'), '--max-seqs', '4']);
    client = srv.client();
  });
  after(async () => { if (srv) await srv.stop(); });

  it('detects the Hermes syntax from the template', () => {
    assert.match(srv.log(), /tool calls hermes/);
  });

  it('tool_choice none: tools are rendered, nothing is parsed into tool_calls', async () => {
    const body = { messages: MESSAGES, tools: TOOLS, tool_choice: 'none', max_tokens: 30, temperature: 1, seed: 1 };
    const r = await client.chat.completions.create(body);
    assert.equal(r.choices[0].message.tool_calls, undefined);
    assert.notEqual(r.choices[0].finish_reason, 'tool_calls');
    assert.equal(typeof r.choices[0].message.content, 'string');
    const applied = await post(srv.base, '/apply-template', body);
    assert.ok(applied.json.prompt.includes('<tools>\n{"type": "function", "function": {"name": "get_weather"'), applied.json.prompt);
  });

  it('the shared Qwen3 cases with tools render exactly through /apply-template and are accepted', async () => {
    const cases = JSON.parse(readFileSync(resolve(shared, 'templates', 'qwen3.cases.json'), 'utf8')).filter((c) => c.tools);
    assert.ok(cases.length >= 3);
    for (const c of cases) {
      const body = { messages: c.messages, tools: c.tools, add_generation_prompt: c.add_generation_prompt, chat_template_kwargs: c.extra || {} };
      const applied = await post(srv.base, '/apply-template', body);
      assert.equal(applied.status, 200, applied.text);
      assert.equal(applied.json.prompt, c.expected, c.name);
      const r = await client.chat.completions.create({ ...body, max_tokens: 2, temperature: 0 });
      assert.equal(r.object, 'chat.completion', c.name);
    }
  });

  it('a tool-result round trip: the call goes back as an assistant message, its result as a tool message', async () => {
    const first = await client.chat.completions.create({ messages: MESSAGES, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_weather' } },
      temperature: 1, max_tokens: 600, seed: 5 });
    const ch = first.choices[0];
    assert.equal(ch.finish_reason, 'tool_calls');
    const [call] = checkCalls(ch, 'round trip');
    // the assistant message exactly as the client got it (content null: rendered as '')
    const messages = [...MESSAGES, ch.message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 21}' }];
    const second = await client.chat.completions.create({ messages, tools: TOOLS, max_tokens: 5, temperature: 0 });
    assert.equal(second.object, 'chat.completion');
    const applied = await post(srv.base, '/apply-template', { messages, tools: TOOLS });
    const p = applied.json.prompt;
    assert.ok(p.includes(`<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": ${call.function.arguments}}\n</tool_call><|im_end|>`), p);
    assert.ok(p.includes('<|im_start|>user\n<tool_response>\n{"temp": 21}\n</tool_response><|im_end|>\n<|im_start|>assistant\n'), p);
  });

  it('bad tool fields are 400s naming the field', async () => {
    const bad = async (extra, param) => {
      const r = await post(srv.base, '/v1/chat/completions', { messages: MESSAGES, max_tokens: 2, ...extra });
      assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${r.text}`);
      assert.equal(r.json.error.param, param, r.text);
    };
    await bad({ tools: {} }, 'tools');
    await bad({ tools: [{ type: 'retrieval' }] }, 'tools[0].type');
    await bad({ tools: [{ type: 'function', function: { description: 'x' } }] }, 'tools[0].function.name');
    await bad({ tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }, 'tools[0].function.parameters');
    await bad({ tools: TOOLS, tool_choice: 'sometimes' }, 'tool_choice');
    await bad({ tools: TOOLS, tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice.function.name');
    await bad({ tool_choice: 'required' }, 'tool_choice');
    await bad({ tools: TOOLS, parallel_tool_calls: 'yes' }, 'parallel_tool_calls');
    await bad({ tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } }, 'response_format');
    await bad({ tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', not: {} } } }], tool_choice: 'required' }, 'tools');
  });
});
