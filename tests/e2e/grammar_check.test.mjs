// grammar_check.test.mjs — `swiftlet grammar --check` as a user runs it: for every
// supported JSON Schema keyword (and GBNF / regex / json_object) a valid instance prints
// `accept`, an invalid one `reject at byte N` (N = where the first rejected token starts),
// both exit 0; an unsupported keyword exits 1 with a one-line error naming it. Both tiny
// vocabularies (GPT-2 BPE and SentencePiece with byte fallback). N is checked to be at or
// before the first byte that cannot continue a valid instance (or the text's length when
// only the end is wrong), since a token may start before that byte.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { bin, shared, sharedMissing } from './server.mjs';

const dir = mkdtempSync(join(tmpdir(), 'swiftlet-grammar-'));
let n = 0;
function file(text) {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, text);
  return p;
}
function check(model, args, instance) {
  const r = spawnSync(bin, ['grammar', '-m', model, ...args, '--check', file(instance)], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
}

// [schema, valid instances, invalid instances (with the byte where the rejection starts)]
const cases = [
  [{ type: 'integer' }, ['12', '-7', '3.0'], [['1.5', 2], ['"1"', 0]]],
  [{ type: ['string', 'null'] }, ['"a"', 'null'], [['1', 0]]],
  [{ enum: ['red', 7, null] }, ['"red"', '7', 'null'], [['"re"', 3], ['8', 0]]],
  [{ const: { a: [1, 2] } }, ['{"a":[1,2]}'], [['{"a":[1]}', 7]]],
  [{ anyOf: [{ type: 'boolean' }, { type: 'string', maxLength: 2 }] }, ['true', '"ab"'], [['"abc"', 3]]],
  [{ oneOf: [{ type: 'number', minimum: 10 }, { const: 'x' }] }, ['11', '"x"'], [['9', 1]]],
  [{ allOf: [{ type: 'array', items: { type: 'integer' } }] }, ['[1,2]'], [['[1,"a"]', 3]]],
  [{ $defs: { n: { type: 'object', properties: { v: { type: 'integer' }, next: { $ref: '#/$defs/n' } } } }, $ref: '#/$defs/n' },
    ['{"v":1,"next":{"v":2,"next":{}}}'], [['{"v":1,"next":{"v":"x"}}', 18]]],
  [{ type: 'object', properties: { a: { type: 'string' }, b: { type: 'integer' } }, required: ['b'], additionalProperties: false },
    ['{"b":1}', '{"a":"x","b":2}'], [['{"a":"x"}', 8], ['{"b":1,"c":2}', 6]]],
  [{ type: 'object', additionalProperties: { type: 'integer' } }, ['{"x":1,"y":2}'], [['{"x":"s"}', 5]]],
  [{ type: 'array', prefixItems: [{ type: 'string' }, { type: 'integer' }], items: false }, ['["a",1]', '["a"]'], [['["a",1,2]', 6]]],
  [{ type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 3 }, ['[1,2]', '[1,2,3]'], [['[1]', 2], ['[1,2,3,4]', 6]]],
  [{ type: 'string', minLength: 2, maxLength: 3 }, ['"ab"', '"abc"', '"é€"'], [['"a"', 2], ['"abcd"', 4]]],
  [{ type: 'string', pattern: '^[a-z]+-[0-9]{2}$' }, ['"ab-12"'], [['"ab-1x"', 5]]],
  [{ type: 'string', format: 'date' }, ['"2024-02-29"'], [['"2024-13-01"', 7]]],
  [{ type: 'string', format: 'time' }, ['"12:30:00Z"', '"23:59:60+01:00"'], [['"24:00:00Z"', 2]]],
  [{ type: 'string', format: 'date-time' }, ['"2024-01-02T03:04:05.678+02:00"'], [['"2024-01-02 03:04:05Z"', 11]]],
  [{ type: 'string', format: 'email' }, ['"ann.lee@example.com"'], [['"ann..lee@example.com"', 4]]],
  [{ type: 'string', format: 'uuid' }, ['"123e4567-e89b-12d3-a456-426614174000"'], [['"123e4567-e89b-12d3-a456-42661417400"', 37]]],
  [{ type: 'string', format: 'uri' }, ['"https://example.com/a?b=c#d"'], [['"not a uri"', 4]]],
  [{ type: 'integer', minimum: -5, maximum: 250 }, ['-5', '0', '250', '99'], [['251', 2], ['-6', 1]]],
  [{ type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 10 }, ['1', '9'], [['0', 0], ['10', 1]]],
  [{ type: 'number', minimum: 0, maximum: 1 }, ['0', '0.5', '1', '1.0'], [['1.01', 3], ['-0.1', 0]]],
];

for (const model of ['qwen2-gpt2-tiny.f32', 'llama-spm-tiny.f32']) {
  describe(`grammar --check (${model})`, { skip: sharedMissing && 'no ../shared data' }, () => {
    const m = resolve(shared, 'models', `${model}.gguf`);
    it('every supported keyword: valid accepted, invalid rejected', () => {
      const wrong = [];
      for (const [schema, good, badOnes] of cases) {
        const s = file(JSON.stringify(schema));
        for (const inst of good) {
          const r = check(m, ['--schema', s], inst);
          assert.equal(r.code, 0, r.err);
          if (r.out !== 'accept') wrong.push(`${JSON.stringify(schema)} on ${inst}: ${r.out}`);
        }
        for (const [inst, at] of badOnes) {
          const r = check(m, ['--schema', s], inst);
          assert.equal(r.code, 0, r.err);
          const got = r.out.match(/^reject at byte (\d+)$/);
          // the rejected token starts at or before the first wrong byte
          if (!got || Number(got[1]) > at) wrong.push(`${JSON.stringify(schema)} on ${inst}: ${r.out}, first wrong byte ${at}`);
        }
      }
      assert.deepEqual(wrong, []);
    });
    it('GBNF, regex and json_object', () => {
      const g = file('root ::= "[" item ("," item)* "]"\nitem ::= [0-9]+ | "\\"" [^"]* "\\""\n');
      assert.equal(check(m, ['--gbnf', g], '[1,"a b",22]').out, 'accept');
      assert.match(check(m, ['--gbnf', g], '[1,x]').out, /^reject at byte [0-3]$/);
      assert.equal(check(m, ['--regex', '(ab|cd)+[0-9]?'], 'abcdab7').out, 'accept');
      assert.match(check(m, ['--regex', '(ab|cd)+[0-9]?'], 'abce').out, /^reject at byte [0-3]$/);
      assert.equal(check(m, ['--json-object'], '{"a": [1, {"b": null}], "c": "d\\u00e9"}').out, 'accept');
      assert.match(check(m, ['--json-object'], '[1]').out, /^reject at byte 0$/);
      assert.match(check(m, ['--json-object'], '{"a": 1').out, /^reject at byte 7$/);
    });
    it('unsupported keywords exit 1 with one line naming them', () => {
      for (const [schema, kw] of [[{ not: {} }, 'not'], [{ type: 'array', uniqueItems: true }, 'uniqueItems'],
        [{ type: 'number', multipleOf: 2 }, 'multipleOf'], [{ type: 'string', format: 'hostname' }, 'hostname']]) {
        const r = check(m, ['--schema', file(JSON.stringify(schema))], '1');
        assert.equal(r.code, 1);
        assert.equal(r.err.split('\n').length, 1);
        assert.ok(r.err.includes(kw), r.err);
      }
      const r = check(m, ['--gbnf', file('root ::= undefined-rule\n')], 'x');
      assert.equal(r.code, 1);
      assert.match(r.err, /undefined rule/);
    });
  });
}
