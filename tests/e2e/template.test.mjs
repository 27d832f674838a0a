// template.test.mjs — end-to-end tests of chat templates (the model's own Jinja
// tokenizer.chat_template): `swiftlet template` renders every case of the real templates
// in ../shared/templates byte for byte (from the .jinja file, and from the vocab GGUFs of
// ../shared/vocab that embed the same template); a server whose model carries the Qwen3
// template (written by `gen-model --chat-template`) answers POST /apply-template with
// exactly the reference text, accepts chat requests with tool calls and tool results
// (prompt_tokens = the tokens of that text; text parts joined for a template that takes
// only strings), passes chat_template_kwargs to the template;
// a template's raise_exception becomes a 400 carrying its message.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bin, post, shared, sharedMissing, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';
const TEMPLATES = ['qwen3', 'llama3_1', 'gemma3', 'gptoss', 'deepseek_v3'];
const VOCAB_OF = { qwen3: 'qwen3', llama3_1: 'llama3', gemma3: 'gemma3', gptoss: 'gptoss' };
const tmpl = (name) => resolve(shared, 'templates', `${name}.jinja`);
const cases = (name) => JSON.parse(readFileSync(resolve(shared, 'templates', `${name}.cases.json`), 'utf8'));

// The OpenAI request body of a shared case.
function requestOf(c) {
  const req = { messages: c.messages, add_generation_prompt: c.add_generation_prompt, chat_template_kwargs: c.extra || {} };
  if (c.tools) req.tools = c.tools;
  return req;
}

const dir = mkdtempSync(join(tmpdir(), 'swiftlet-template-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function runTemplate(args, req, now) {
  const path = join(dir, 'req.json');
  writeFileSync(path, JSON.stringify(req));
  const env = { ...process.env };
  if (now) env.SWIFTLET_NOW = now.slice(0, 10);
  else delete env.SWIFTLET_NOW;
  return spawnSync(bin, ['template', ...args, path], { env, encoding: 'utf8' });
}

describe('swiftlet template', { skip }, () => {
  it('renders every shared case byte for byte from the .jinja file', () => {
    for (const name of TEMPLATES) {
      let pass = 0;
      const all = cases(name);
      for (const c of all) {
        const args = ['--template', tmpl(name)];
        if (c.special_tokens.bos_token !== undefined) args.push('--bos-token', c.special_tokens.bos_token);
        if (c.special_tokens.eos_token !== undefined) args.push('--eos-token', c.special_tokens.eos_token);
        const r = runTemplate(args, requestOf(c), c.now);
        assert.equal(r.status, 0, `${name}/${c.name}: ${r.stderr}`);
        assert.equal(r.stdout, c.expected, `${name}/${c.name}`);
        pass++;
      }
      assert.equal(pass, all.length);
    }
  });

  it('renders them from the template embedded in the vocab GGUF (-m), with its BOS/EOS texts', () => {
    for (const [name, vocab] of Object.entries(VOCAB_OF)) {
      for (const c of cases(name)) {
        const r = runTemplate(['-m', resolve(shared, 'vocab', `ggml-vocab-${vocab}.gguf`)], requestOf(c), c.now);
        assert.equal(r.status, 0, `${name}/${c.name}: ${r.stderr}`);
        assert.equal(r.stdout, c.expected, `${name}/${c.name}`);
      }
    }
  });

  it('a template that raises exits 1 with its message; bad usage exits 2', () => {
    const r = runTemplate(['--template', tmpl('gemma3')], { messages: [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }] });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /Conversation roles must alternate user\/assistant\/user\/assistant\/\.\.\./);
    assert.equal(r.stdout, '');
    assert.equal(spawnSync(bin, ['template'], { encoding: 'utf8' }).status, 2);
  });
});

// A tiny random model (built-in ChatML byte vocab) carrying one of the shared templates.
function genModel(name) {
  const out = join(dir, `${name}.gguf`);
  const r = spawnSync(bin, ['gen-model', '-o', out, '--chat-template', tmpl(name), '--ctx', '4096'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

describe('server: the model\'s own chat template', { skip }, () => {
  let srv;
  let model;
  before(async () => {
    model = genModel('qwen3');
    srv = await startServer(['-m', model, '--max-seqs', '2']);
  });
  after(async () => { if (srv) await srv.stop(); });

  it('POST /apply-template returns the exact reference prompt of every qwen3 case', async () => {
    for (const c of cases('qwen3')) {
      const r = await post(srv.base, '/apply-template', requestOf(c));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.prompt, c.expected, c.name);
    }
    assert.match(srv.log(), /chat template from the model/);
  });

  it('accepts a chat request with tool calls and tool results; prompt_tokens are the rendered prompt\'s', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'text', text: 'Weather in ' }, { type: 'text', text: 'Paris?' }] },
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 21}' },
      { role: 'user', content: 'Thanks!' },
    ];
    const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather.',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
    const body = { model: 'qwen3', messages, tools, max_tokens: 3, temperature: 0 };
    const r = await srv.client().chat.completions.create(body);
    assert.equal(r.object, 'chat.completion');
    const applied = await post(srv.base, '/apply-template', body);
    assert.equal(applied.status, 200);
    const prompt = applied.json.prompt;
    assert.ok(prompt.includes('<tool_call>\n{"name": "get_weather", "arguments": {"city":"Paris"}}\n</tool_call>'), prompt);
    assert.ok(prompt.includes('<|im_start|>user\n<tool_response>\n{"temperature": 21}\n</tool_response><|im_end|>'), prompt);
    assert.ok(prompt.includes('"name": "get_weather", "description": "Weather."'), prompt);
    assert.ok(prompt.includes('<|im_start|>user\nWeather in Paris?<|im_end|>'), prompt);
    const tk = spawnSync(bin, ['tokenize', '-m', model, '--special', '--', prompt], { encoding: 'utf8' });
    assert.equal(tk.status, 0, tk.stderr);
    assert.equal(r.usage.prompt_tokens, tk.stdout.trim().split(/\s+/).length);
  });

  it('chat_template_kwargs reach the template (enable_thinking: false)', async () => {
    const body = { messages: [{ role: 'user', content: 'hi' }], chat_template_kwargs: { enable_thinking: false } };
    const r = await post(srv.base, '/apply-template', body);
    assert.equal(r.json.prompt, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n');
    const bad = await post(srv.base, '/apply-template', { messages: 'nope' });
    assert.equal(bad.status, 400);
  });
});

describe('server: a template that raises', { skip }, () => {
  let srv;
  before(async () => { srv = await startServer(['-m', genModel('gemma3')]); });
  after(async () => { if (srv) await srv.stop(); });

  it('is a 400 carrying the template\'s message (chat and /apply-template)', async () => {
    const messages = [{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }];
    const msg = 'Conversation roles must alternate user/assistant/user/assistant/...';
    await assert.rejects(srv.client().chat.completions.create({ model: 'gemma3', messages, max_tokens: 2 }),
      (e) => e.status === 400 && e.error.message === msg);
    const r = await post(srv.base, '/apply-template', { messages });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.message, msg);
    const ok = await srv.client().chat.completions.create({ model: 'gemma3', messages: messages.slice(0, 1), max_tokens: 2 });
    assert.equal(ok.object, 'chat.completion');
  });
});
