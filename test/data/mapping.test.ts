import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMapFunction } from '../../core/data/map-function.js';
import { compileMapping } from '../../core/data/mapping.js';
import { testCount, trainTestSplit } from '../../core/data/split.js';
import type { DatasetRow } from '../../core/ports.js';
import { Rng } from '../../core/rng.js';

const GSM8K_SYSTEM = 'You are given a problem.\nThink step by step.';
const gsm8kRow: DatasetRow = {
  index: 3,
  source: 'train.jsonl:4',
  data: { question: 'Natalia sold 48 clips...', answer: 'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72 ' },
};

describe('declarative mapping', () => {
  it('expresses the GSM8K mapping: constant system prompt, user = question, answer after ####, trimmed', () => {
    const map = compileMapping({ system: GSM8K_SYSTEM, user: '${question}', fields: { answer: { from: 'answer', regex: '####\\s*(.*)$' } } });
    expect(map(gsm8kRow)).toEqual({
      id: '3',
      messages: [
        { role: 'system', content: GSM8K_SYSTEM },
        { role: 'user', content: 'Natalia sold 48 clips...' },
      ],
      fields: { answer: '72' },
    });
  });

  it('fills templates with dotted paths, ids, numbers and message lists', () => {
    const row: DatasetRow = { index: 0, source: 'f:1', data: { p: { text: 'hi' }, n: '1,234', key: 'k7', chat: [{ role: 'user', content: 'yo' }] } };
    const map = compileMapping({ user: 'Say: ${p.text}', id: 'row-${key}', fields: { n: { from: 'n', type: 'number' }, raw: 'key' } });
    expect(map(row)).toEqual({ id: 'row-k7', messages: [{ role: 'user', content: 'Say: hi' }], fields: { n: 1234, raw: 'k7' } });
    expect(compileMapping({ messages: 'chat' })(row).messages).toEqual([{ role: 'user', content: 'yo' }]);
  });

  it('names the file and row of a missing field or a non-matching regex', () => {
    const map = compileMapping({ user: '${problem}' });
    expect(() => map(gsm8kRow)).toThrow('train.jsonl:4: missing field "problem" (row has: question, answer)');
    const map2 = compileMapping({ user: '${question}', fields: { answer: { from: 'answer', regex: '@@@(.*)' } } });
    expect(() => map2(gsm8kRow)).toThrow(/^train\.jsonl:4: field "answer" does not match/);
  });

  it('rejects bad specs before any row is read', () => {
    expect(() => compileMapping({ system: 'x' })).toThrow('needs "user"');
    expect(() => compileMapping({ user: 'x', fields: { a: { from: 'a', regex: '(' } } })).toThrow('fields.a.regex is not a valid regular expression');
    expect(() => compileMapping({ user: 'x', bogus: 1 } as never)).toThrow();
  });
});

describe('map function from a file', () => {
  const dir = join(import.meta.dirname, 'fixtures');
  it('loads a .ts module and fills defaults', async () => {
    const map = await loadMapFunction('map-gsm8k.ts', dir);
    expect(await map(gsm8kRow)).toEqual({
      id: 'gsm8k-3',
      messages: [{ role: 'user', content: 'Natalia sold 48 clips...' }],
      fields: { answer: '72' },
    });
    expect(await map({ index: 0, source: 'f:1', data: { question: '', answer: '#### 1' } })).toBeNull();
  });
  it('names the row when the function returns a bad record', async () => {
    const map = await loadMapFunction('map-gsm8k.ts', dir);
    await expect(map({ index: 0, source: 'f:9', data: { question: 'q', answer: 'no marker' } })).rejects.toThrow('f:9: map function map-gsm8k.ts threw: no #### in answer');
    await expect(loadMapFunction('missing.ts', dir)).rejects.toThrow('cannot import');
  });
});

describe('train/test split', () => {
  it('takes fractions or counts, seeded and disjoint, keeping order', () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    expect(testCount(20, 0.25)).toBe(5);
    expect(testCount(20, 3)).toBe(3);
    const a = trainTestSplit(items, 0.25, new Rng(1));
    const b = trainTestSplit(items, 0.25, new Rng(1));
    expect(a).toEqual(b);
    expect(a.test).toHaveLength(5);
    expect([...a.train, ...a.test].sort((x, y) => x - y)).toEqual(items);
    expect(a.train).toEqual([...a.train].sort((x, y) => x - y));
    expect(trainTestSplit(items, 0.25, new Rng(2)).test).not.toEqual(a.test);
    expect(() => testCount(4, 4)).toThrow('leaves no training rows');
  });
});
