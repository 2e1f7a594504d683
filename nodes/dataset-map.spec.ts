import { join } from 'node:path';
import { from, lastValueFrom, take, toArray, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { readDatasetFile } from '../core/data/file-format.js';
import type { DatasetRow, PromptRecord } from '../core/ports.js';
import { fakeContext } from '../test/data/fake-context.js';
import { datasetMap } from './dataset-map.js';

const gsm8kFile = join(import.meta.dirname, '..', 'test/fixtures/gsm8k/train.jsonl');
const gsm8kMapping = {
  system: 'You are given a problem. Think step by step.',
  user: '${question}',
  fields: { answer: { from: 'answer', regex: '####\\s*(.*)$' } },
};

async function gsm8kRows(): Promise<DatasetRow[]> {
  const rows: DatasetRow[] = [];
  for await (const row of readDatasetFile(gsm8kFile)) rows.push(row);
  return rows;
}

async function run(config: Record<string, unknown>, rows: DatasetRow[], baseDir?: string) {
  const { ctx } = fakeContext(datasetMap.config.parse(config), { baseDir });
  const out = await datasetMap.run(ctx, { rows: from(rows) });
  const all = (o: Observable<PromptRecord> | undefined) => lastValueFrom(o!.pipe(toArray()));
  return { prompts: out.prompts!, test: out.test!, all };
}

describe('dataset.map', () => {
  it('maps GSM8K rows in order with the declarative mapping', async () => {
    const { prompts, test, all } = await run({ mapping: gsm8kMapping }, await gsm8kRows());
    const records = await all(prompts);
    expect(records).toHaveLength(20);
    expect(records[0].messages[1]).toEqual({ role: 'user', content: expect.stringMatching(/^Natalia sold clips/) });
    expect(records[0].fields.answer).toBe('72');
    expect(await all(test)).toEqual([]);
  });

  it('shuffles with a seed, limits, and holds out a disjoint test split', async () => {
    const rows = await gsm8kRows();
    const config = { mapping: gsm8kMapping, shuffle: true, seed: 3407, limit: 12, test_size: 0.25 };
    const a = await run(config, rows);
    const [train, test] = [await a.all(a.prompts), await a.all(a.test)];
    expect(train).toHaveLength(9);
    expect(test).toHaveLength(3);
    expect(new Set([...train, ...test].map((r) => r.id)).size).toBe(12);
    const b = await run(config, rows);
    expect((await b.all(b.prompts)).map((r) => r.id)).toEqual(train.map((r) => r.id));
    expect(train.map((r) => r.id)).not.toEqual([...train.map((r) => r.id)].sort((x, y) => Number(x) - Number(y)));
    const c = await run({ ...config, seed: 1 }, rows);
    expect((await c.all(c.prompts)).map((r) => r.id)).not.toEqual(train.map((r) => r.id));
  });

  it('without shuffling, limits to the first rows before splitting', async () => {
    const a = await run({ mapping: gsm8kMapping, limit: 6, test_size: 2 }, await gsm8kRows());
    const [train, test] = [await a.all(a.prompts), await a.all(a.test)];
    expect(train).toHaveLength(4);
    expect([...train, ...test].map((r) => Number(r.id)).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('repeats epochs, reshuffling each, or forever', async () => {
    const rows = await gsm8kRows();
    const { prompts, all } = await run({ mapping: gsm8kMapping, shuffle: true, epochs: 2, limit: 5 }, rows);
    const ids = (await all(prompts)).map((r) => r.id);
    expect(ids).toHaveLength(10);
    expect([...ids.slice(0, 5)].sort()).toEqual([...ids.slice(5)].sort());
    const forever = await run({ mapping: gsm8kMapping, epochs: 'forever' }, rows.slice(0, 2));
    expect(await lastValueFrom(forever.prompts.pipe(take(7), toArray()))).toHaveLength(7);
  });

  it('uses a map function from a file relative to the graph', async () => {
    const { prompts, all } = await run({ function: './map-gsm8k.ts', limit: 2 }, await gsm8kRows(), join(import.meta.dirname, '..', 'test/data/fixtures'));
    const records = await all(prompts);
    expect(records.map((r) => [r.id, r.fields.answer])).toEqual([
      ['gsm8k-0', '72'],
      ['gsm8k-1', '10'],
    ]);
  });

  it('fails with the file and row of a bad row', async () => {
    const rows = await gsm8kRows();
    rows[4] = { ...rows[4], data: { question: 'q' } };
    const { prompts, all } = await run({ mapping: gsm8kMapping }, rows);
    await expect(all(prompts)).rejects.toThrow(`${gsm8kFile}:5: missing field "answer"`);
  });

  it('rejects configs with both or neither of mapping and function', () => {
    expect(() => datasetMap.config.parse({})).toThrow(/give exactly one of .*mapping.* or .*function/);
    expect(() => datasetMap.config.parse({ mapping: gsm8kMapping, function: 'x.ts' })).toThrow(/give exactly one/);
  });
});
