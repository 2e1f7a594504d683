import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDatasetFile } from '../../core/data/file-format.js';
import { readHfFolder, resolveHfSplits } from '../../core/data/hf-folder.js';
import { cachedDatasetSnapshot, readHubDataset } from '../../core/data/hub.js';
import type { DatasetRow } from '../../core/ports.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const gsm8k = join(import.meta.dirname, '..', 'fixtures', 'gsm8k');

async function collect(rows: AsyncIterable<DatasetRow>): Promise<DatasetRow[]> {
  const out: DatasetRow[] = [];
  for await (const row of rows) out.push(row);
  return out;
}

let tmp: string;
function writeParquet(file: string, questions: string[], answers: bigint[]) {
  mkdirSync(join(file, '..'), { recursive: true });
  parquetWriteFile({
    filename: file,
    columnData: [
      { name: 'question', data: questions, type: 'STRING' },
      { name: 'answer', data: answers, type: 'INT64' },
    ],
  });
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'grpoflow-data-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('file readers', () => {
  it('reads JSONL with 1-based line sources, skipping blank lines', async () => {
    const file = join(fixtures, 'good.jsonl');
    const rows = await collect(readDatasetFile(file));
    expect(rows.map((r) => [r.index, r.source])).toEqual([
      [0, `${file}:1`],
      [1, `${file}:3`],
    ]);
    expect(rows[1].data.question).toBe('What is 3*3?');
  });

  it('reports invalid JSONL with the file and line', async () => {
    const file = join(fixtures, 'bad.jsonl');
    await expect(collect(readDatasetFile(file))).rejects.toThrow(`${file}:2: invalid JSON`);
  });

  it('reads the GSM8K fixture', async () => {
    const rows = await collect(readDatasetFile(join(gsm8k, 'train.jsonl')));
    expect(rows).toHaveLength(20);
    expect(rows[0].data.answer).toMatch(/#### 72$/);
  });

  it('reads a JSON object holding the rows array, and says which key when ambiguous', async () => {
    const rows = await collect(readDatasetFile(join(fixtures, 'object.json')));
    expect(rows.map((r) => r.data.question)).toEqual(['q1', 'q2']);
    const two = join(tmp, 'two.json');
    writeFileSync(two, JSON.stringify({ a: [{ x: 1 }], b: [{ x: 2 }] }));
    await expect(collect(readDatasetFile(two))).rejects.toThrow('several arrays (a, b); say which with "field"');
    expect((await collect(readDatasetFile(two, { jsonField: 'b' })))[0].data).toEqual({ x: 2 });
  });

  it('rejects a non-object item in a JSON array with its position', async () => {
    const file = join(fixtures, 'bad-array.json');
    await expect(collect(readDatasetFile(file))).rejects.toThrow(`${file}:2: expected a JSON object, got a number`);
  });

  it('reads CSV with header columns and line sources (multi-line records end on their last line)', async () => {
    const file = join(fixtures, 'good.csv');
    const rows = await collect(readDatasetFile(file));
    expect(rows.map((r) => r.data)).toEqual([
      { question: 'What is 2+2?', answer: '#### 4' },
      { question: 'Multi\nline?', answer: '#### 5' },
      { question: 'last', answer: '#### 6' },
    ]);
    expect(rows.map((r) => r.source)).toEqual([`${file}:2`, `${file}:4`, `${file}:5`]);
  });

  it('reports a CSV record with the wrong column count', async () => {
    const file = join(tmp, 'bad.csv');
    writeFileSync(file, 'a,b\n1,2\n3,4,5\n');
    await expect(collect(readDatasetFile(file))).rejects.toThrow(new RegExp(`^${file}:3: invalid CSV`));
  });

  it('reads Parquet (written by hyparquet-writer) with INT64 as numbers', async () => {
    const file = join(tmp, 'rows.parquet');
    writeParquet(file, ['q1', 'q2', 'q3'], [1n, 2n, 3n]);
    const rows = await collect(readDatasetFile(file));
    expect(rows.map((r) => r.data)).toEqual([
      { question: 'q1', answer: 1 },
      { question: 'q2', answer: 2 },
      { question: 'q3', answer: 3 },
    ]);
    expect(rows[2].source).toBe(`${file}:3`);
  });

  it('refuses an unknown extension, naming the formats', () => {
    expect(() => readDatasetFile('/x/data.txt')).toThrow('cannot tell the dataset format from the extension ".txt"');
  });
});

describe('Hugging Face dataset folders', () => {
  it('finds splits in the data/ layout, shards in order', async () => {
    const dir = join(tmp, 'hf-data');
    writeParquet(join(dir, 'data', 'train-00001-of-00002.parquet'), ['b'], [2n]);
    writeParquet(join(dir, 'data', 'train-00000-of-00002.parquet'), ['a'], [1n]);
    writeParquet(join(dir, 'data', 'test-00000-of-00001.parquet'), ['t'], [9n]);
    writeFileSync(join(dir, 'README.md'), '# card');
    expect(Object.keys(resolveHfSplits(dir)).sort()).toEqual(['test', 'train']);
    const train = await collect(readHfFolder(dir, 'train'));
    expect(train.map((r) => [r.index, r.data.question])).toEqual([
      [0, 'a'],
      [1, 'b'],
    ]);
    expect(train[1].source).toMatch(/train-00001-of-00002\.parquet:1$/);
    expect(() => readHfFolder(dir, 'validation')).toThrow('no split "validation" (found: test, train)');
  });

  it('finds split folders under data/ and split names with underscores', async () => {
    const dir = join(tmp, 'hf-split-dirs');
    writeParquet(join(dir, 'data', 'train', '0000.parquet'), ['a'], [1n]);
    writeParquet(join(dir, 'data', 'validation_matched-00000-of-00001.parquet'), ['v'], [2n]);
    expect(resolveHfSplits(dir)).toEqual({
      train: [join(dir, 'data', 'train', '0000.parquet')],
      validation_matched: [join(dir, 'data', 'validation_matched-00000-of-00001.parquet')],
    });
  });

  it('finds splits from top-level JSONL files', async () => {
    const rows = await collect(readHfFolder(gsm8k, 'test'));
    expect(rows).toHaveLength(10);
  });

  it('picks a configuration folder (main/) and asks when there are several', async () => {
    const dir = join(tmp, 'hf-configs');
    writeParquet(join(dir, 'main', 'train-00000-of-00001.parquet'), ['m'], [1n]);
    writeParquet(join(dir, 'socratic', 'train-00000-of-00001.parquet'), ['s'], [1n]);
    expect(() => resolveHfSplits(dir)).toThrow('several configurations (main, socratic)');
    const rows = await collect(readHfFolder(dir, 'train', { config: 'socratic' }));
    expect(rows[0].data.question).toBe('s');
  });
});

describe('Hub datasets', () => {
  it('resolves a cached snapshot (refs/main → snapshots/<commit>) and reads it offline', async () => {
    const cache = join(tmp, 'hub-cache');
    const repo = join(cache, 'datasets--openai--gsm8k');
    const commit = 'e53f048856ff4f594e959d75785d2c2d37b678ee';
    mkdirSync(join(repo, 'refs'), { recursive: true });
    writeFileSync(join(repo, 'refs', 'main'), commit);
    mkdirSync(join(repo, 'snapshots', commit, 'main'), { recursive: true });
    copyFileSync(join(gsm8k, 'train.jsonl'), join(repo, 'snapshots', commit, 'main', 'train.jsonl'));
    expect(cachedDatasetSnapshot('openai/gsm8k', { cacheDir: cache })).toBe(join(repo, 'snapshots', commit));
    const rows = await collect(readHubDataset('openai/gsm8k', { split: 'train', config: 'main', cacheDir: cache, offline: true }));
    expect(rows).toHaveLength(20);
    await expect(collect(readHubDataset('nobody/nothing', { split: 'train', cacheDir: cache, offline: true }))).rejects.toThrow(
      'hub:nobody/nothing: not in the HF cache',
    );
  });
});
