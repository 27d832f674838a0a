// reasoning.test.mjs — end-to-end tests of reasoning models and request-field checks,
// with the official openai client against the real server:
//  - a tiny random Qwen3-shaped model with the real Qwen3 vocabulary and chat template
//    (`gen-model --vocab ../shared/vocab/ggml-vocab-qwen3.gguf --chat-template
//    ../shared/templates/qwen3.jinja`): a random model emits random tokens, so a GBNF
//    `grammar` makes it write a real `<think>…</think>` block (the vocabulary's own
//    <think>/</think> tokens, or their spelling, are allowed by the grammar) followed by an
//    answer. The split is checked against the raw output the same request produces (the
//    bytes of its logprobs tokens, and a second server with --reasoning-format none);
//    streamed deltas concatenated equal the non-streamed message for the same seed; an
//    output cut by max_tokens inside the block is all reasoning (finish_reason length);
//  - a QwQ-style template whose generation prompt already opens `<think>\n` (as
//    QwQ-32B's and the DeepSeek-R1 distills' do): the output starts inside the block;
//  - chat_template_kwargs.enable_thinking reaches the template (/apply-template equals the
//    shared reference case) and a reply then carries no reasoning_content;
//  - unsupported fields (echo, best_of, suffix, functions, function_call, audio,
//    modalities, prediction, web_search_options, reasoning_effort) and unknown ones are
//    400s naming the field; metadata (store, metadata, service_tier, user,
//    stream_options) is accepted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { bin, post, shared, sharedMissing, startServer } from './server.mjs';

const skip = sharedMissing && 'no ../shared data';
const dir = mkdtempSync(join(tmpdir(), 'swiftlet-reasoning-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

// A tiny random qwen3 model with the real Qwen3 vocabulary and the given chat template.
function genModel(name, templatePath) {
  const out = join(dir, `${name}.gguf`);
  const r = spawnSync(bin, ['gen-model', '--vocab', resolve(shared, 'vocab', 'ggml-vocab-qwen3.gguf'), '--arch', 'qwen3',
    '--type', 'q8_0', '--chat-template', templatePath, '--ctx', '4096', '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return out;
}

const WORDS = 'w ::= [a-z]{1,6}\n';
// A think block, then an answer (Qwen3's layout: "<think>\n...\n</think>\n\n" + answer).
const THINK_GRAMMAR = `root ::= "<think>\\n" w (" " w){2,5} "\\n</think>\\n\\n" w (" " w){1,3}\n${WORDS}`;
// The same when the prompt already opened the block.
const OPEN_GRAMMAR = `root ::= w (" " w){2,5} "\\n</think>\\n\\n" w (" " w){1,3}\n${WORDS}`;
const PLAIN_GRAMMAR = `root ::= w (" " w){1,3}\n${WORDS}`;
const PHRASE = /^[a-z]{1,6}( [a-z]{1,6})+$/;
const user = (content) => [{ role: 'user', content }];

// The raw output text of a non-streamed chat response with logprobs (token bytes joined).
const rawText = (r) => Buffer.from(r.choices[0].logprobs.content.flatMap((t) => t.bytes)).toString('utf8');

async function streamed(client, body) {
  const s = await client.chat.completions.create({ ...body, stream: true });
  let reasoning = '';
  let content = '';
  let finish = null;
  let contentSeen = false;
  for await (const ch of s) {
    const c = ch.choices[0];
    if (!c) continue;
    if (c.delta.reasoning_content) {
      assert.ok(!contentSeen, 'reasoning after content');
      reasoning += c.delta.reasoning_content;
    }
    if (c.delta.content) { contentSeen = true; content += c.delta.content; }
    if (c.finish_reason) finish = c.finish_reason;
  }
  return { reasoning, content, finish };
}

describe('reasoning: Qwen3 template and vocabulary', { skip }, () => {
  let srv;
  let model;
  before(async () => {
    model = genModel('qwen3', resolve(shared, 'templates', 'qwen3.jinja'));
    srv = await startServer(['-m', model, '--max-seqs', '2']);
  });
  after(async () => { if (srv) await srv.stop(); });

  it('detects the reasoning model from its template', () => {
    assert.match(srv.log(), /reasoning on/);
  });

  it('splits <think>…</think> into message.reasoning_content and content (checked against the raw output)', async () => {
    for (const seed of [1, 2, 3]) {
      const body = { model: 'qwen3', messages: user('Is 91 prime?'), seed, max_tokens: 200, grammar: THINK_GRAMMAR, logprobs: true };
      const r = await srv.client().chat.completions.create(body);
      const m = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.match(m.reasoning_content, PHRASE, JSON.stringify(m));
      assert.match(m.content, PHRASE, JSON.stringify(m));
      assert.equal(rawText(r), `<think>\n${m.reasoning_content}\n</think>\n\n${m.content}`);
    }
  });

  it('streamed reasoning and content deltas concatenate to the non-streamed message (same seed)', async () => {
    for (const seed of [4, 5]) {
      const body = { model: 'qwen3', messages: user('Count to three.'), seed, max_tokens: 200, grammar: THINK_GRAMMAR };
      const whole = await srv.client().chat.completions.create(body);
      const s = await streamed(srv.client(), body);
      assert.equal(s.reasoning, whole.choices[0].message.reasoning_content);
      assert.equal(s.content, whole.choices[0].message.content);
      assert.equal(s.finish, 'stop');
      assert.ok(s.reasoning.length > 0 && s.content.length > 0);
    }
  });

  it('an output cut inside the think block by max_tokens is all reasoning, finish_reason length', async () => {
    const body = { model: 'qwen3', messages: user('Is 91 prime?'), seed: 1, grammar: THINK_GRAMMAR };
    const full = await srv.client().chat.completions.create({ ...body, max_tokens: 200 });
    const cut = await srv.client().chat.completions.create({ ...body, max_tokens: 3 });
    const m = cut.choices[0].message;
    assert.equal(cut.choices[0].finish_reason, 'length');
    assert.equal(m.content, '');
    assert.ok(m.reasoning_content.length > 0);
    assert.ok(full.choices[0].message.reasoning_content.startsWith(m.reasoning_content), m.reasoning_content);
    const s = await streamed(srv.client(), { ...body, max_tokens: 3 });
    assert.deepEqual(s, { reasoning: m.reasoning_content, content: '', finish: 'length' });
  });

  it('an output without a think block is plain content', async () => {
    const r = await srv.client().chat.completions.create({ model: 'qwen3', messages: user('hi'), seed: 7, max_tokens: 60,
      grammar: PLAIN_GRAMMAR });
    assert.match(r.choices[0].message.content, PHRASE);
    assert.equal(r.choices[0].message.reasoning_content, undefined);
  });

  it('stop strings apply to the raw output, reasoning included', async () => {
    const body = { model: 'qwen3', messages: user('Is 91 prime?'), seed: 2, max_tokens: 200, grammar: THINK_GRAMMAR };
    const full = await srv.client().chat.completions.create(body);
    const reasoning = full.choices[0].message.reasoning_content;
    const stop = reasoning.split(' ')[1]; // the second word of the reasoning
    const r = await srv.client().chat.completions.create({ ...body, stop: [` ${stop}`] });
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].message.reasoning_content, reasoning.slice(0, reasoning.indexOf(` ${stop}`)));
    assert.equal(r.choices[0].message.content, '');
    const closing = await srv.client().chat.completions.create({ ...body, stop: ['</think>'] });
    assert.equal(closing.choices[0].message.reasoning_content, reasoning);
    assert.equal(closing.choices[0].message.content, '');
  });

  it('chat_template_kwargs.enable_thinking reaches the template; the reply then has no reasoning', async () => {
    const ref = JSON.parse(readFileSync(resolve(shared, 'templates', 'qwen3.cases.json'), 'utf8'))
      .find((c) => c.name === 'enable_thinking_false');
    const a = await post(srv.base, '/apply-template', { messages: ref.messages, chat_template_kwargs: ref.extra });
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.prompt, ref.expected);
    assert.ok(a.json.prompt.endsWith('<think>\n\n</think>\n\n'));
    const on = await post(srv.base, '/apply-template', { messages: ref.messages, chat_template_kwargs: { enable_thinking: true } });
    assert.ok(on.json.prompt.endsWith('<|im_start|>assistant\n'), on.json.prompt);
    const r = await srv.client().chat.completions.create({ model: 'qwen3', messages: ref.messages, seed: 3, max_tokens: 60,
      grammar: PLAIN_GRAMMAR, chat_template_kwargs: { enable_thinking: false } });
    assert.match(r.choices[0].message.content, PHRASE);
    assert.equal(r.choices[0].message.reasoning_content, undefined);
  });

  it('refuses every unsupported field with a 400 naming it', async () => {
    const chat = { model: 'qwen3', messages: user('hi'), max_tokens: 2 };
    const refused = {
      functions: [{ name: 'f', parameters: { type: 'object' } }], function_call: 'auto', audio: { voice: 'alloy', format: 'wav' },
      modalities: ['text', 'audio'], prediction: { type: 'content', content: 'x' }, web_search_options: {},
      reasoning_effort: 'low', echo: true, best_of: 2, frobnicate: 1,
    };
    for (const [k, v] of Object.entries(refused)) {
      await assert.rejects(srv.client().chat.completions.create({ ...chat, [k]: v }),
        (e) => e.status === 400 && e.param === k && e.type === 'invalid_request_error', k);
    }
    const unknown = await post(srv.base, '/v1/chat/completions', { ...chat, frobnicate: 1 });
    assert.equal(unknown.json.error.message, 'Unrecognized request argument supplied: frobnicate');
    for (const [k, v] of Object.entries({ echo: true, best_of: 3, suffix: 'end', top_logprobs: 2 })) {
      await assert.rejects(srv.client().completions.create({ model: 'qwen3', prompt: 'a', max_tokens: 2, [k]: v }),
        (e) => e.status === 400 && e.param === k, k);
    }
  });

  it('accepts metadata and the values that change nothing', async () => {
    const r = await srv.client().chat.completions.create({
      model: 'qwen3', messages: user('hi'), max_tokens: 2, store: false, metadata: { team: 'a' }, service_tier: 'auto',
      user: 'u1', modalities: ['text'],
    });
    assert.equal(r.object, 'chat.completion');
    const s = await srv.client().chat.completions.create({ model: 'qwen3', messages: user('hi'), max_tokens: 2, stream: true,
      stream_options: { include_usage: true }, store: true });
    let usage = null;
    for await (const ch of s) if (ch.usage) usage = ch.usage;
    assert.equal(usage.completion_tokens, 2);
    const c = await srv.client().completions.create({ model: 'qwen3', prompt: 'a', max_tokens: 2, echo: false, best_of: 1,
      suffix: '', metadata: { k: 'v' } });
    assert.equal(c.object, 'text_completion');
  });
});

describe('reasoning: --reasoning-format none keeps the think block in content', { skip }, () => {
  let srv;
  before(async () => { srv = await startServer(['-m', join(dir, 'qwen3.gguf'), '--reasoning-format', 'none']); });
  after(async () => { if (srv) await srv.stop(); });

  it('content is the raw output', async () => {
    const body = { model: 'qwen3', messages: user('Is 91 prime?'), seed: 1, max_tokens: 200, grammar: THINK_GRAMMAR, logprobs: true };
    const r = await srv.client().chat.completions.create(body);
    assert.match(srv.log(), /reasoning off/);
    assert.equal(r.choices[0].message.reasoning_content, undefined);
    assert.equal(r.choices[0].message.content, rawText(r));
    assert.ok(r.choices[0].message.content.startsWith('<think>\n'));
  });
});

// QwQ-32B's template ends its generation prompt inside an open think block (as the
// DeepSeek-R1 distills' do): this is its generation-prompt logic on ChatML.
const QWQ_TEMPLATE = `{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}`;

describe('reasoning: a template that opens the think block in the prompt', { skip }, () => {
  let srv;
  before(async () => {
    const path = join(dir, 'qwq.jinja');
    writeFileSync(path, QWQ_TEMPLATE);
    srv = await startServer(['-m', genModel('qwq', path)]);
  });
  after(async () => { if (srv) await srv.stop(); });

  it('the output starts inside the block: reasoning until </think>, then content', async () => {
    const a = await post(srv.base, '/apply-template', { messages: user('hi') });
    assert.equal(a.json.prompt, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n');
    for (const seed of [1, 2]) {
      const body = { model: 'qwq', messages: user('hi'), seed, max_tokens: 200, grammar: OPEN_GRAMMAR, logprobs: true };
      const r = await srv.client().chat.completions.create(body);
      const m = r.choices[0].message;
      assert.match(m.reasoning_content, PHRASE);
      assert.match(m.content, PHRASE);
      assert.equal(rawText(r), `${m.reasoning_content}\n</think>\n\n${m.content}`);
      const s = await streamed(srv.client(), { ...body, logprobs: false });
      assert.deepEqual(s, { reasoning: m.reasoning_content, content: m.content, finish: 'stop' });
    }
  });
});
