import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lastValueFrom, take, toArray, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { DatasetRow } from '../core/ports.js';
import { fakeContext } from '../test/data/fake-context.js';
import { datasetLoad } from './dataset-load.js';

const root = join(import.meta.dirname, '..');
const run = async (config: Record<string, unknown>, outputReady?: () => Promise<void>) => {
  const { ctx, abort } = fakeContext(datasetLoad.config.parse(config), { baseDir: root, outputReady });
  const out = await datasetLoad.run(ctx, {});
  return { rows: out.rows as Observable<DatasetRow>, abort };
};

describe('dataset.load', () => {
  it('an empty file is an error naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'empty-data-'));
    writeFileSync(join(dir, 'empty.jsonl'), '');
    const { ctx } = fakeContext(datasetLoad.config.parse({ path: 'empty.jsonl' }), { baseDir: dir });
    const rows = (await datasetLoad.run(ctx, {})).rows as Observable<DatasetRow>;
    await expect(lastValueFrom(rows.pipe(toArray()))).rejects.toThrow(`dataset.load ${ctx.id}: ${join(dir, 'empty.jsonl')} holds no rows`);
  });

  it('reads a file relative to the graph folder, format by extension', async () => {
    const { rows } = await run({ path: 'test/fixtures/gsm8k/train.jsonl' });
    const all = await lastValueFrom(rows.pipe(toArray()));
    expect(all).toHaveLength(20);
    expect(all[0].source).toBe(join(root, 'test/fixtures/gsm8k/train.jsonl:1'));
  });

  it('reads a split of a dataset folder', async () => {
    const { rows } = await run({ path: 'test/fixtures/gsm8k', split: 'test' });
    expect(await lastValueFrom(rows.pipe(toArray()))).toHaveLength(10);
  });

  it('emits lazily: one row per outputReady', async () => {
    let ready = 0;
    const { rows } = await run({ path: 'test/fixtures/gsm8k/train.jsonl' }, async () => {
      ready++;
    });
    await lastValueFrom(rows.pipe(take(3), toArray()));
    expect(ready).toBe(3);
  });

  it('stops when the run is aborted', async () => {
    const { rows, abort } = await run({ path: 'test/fixtures/gsm8k/train.jsonl' });
    const seen: DatasetRow[] = [];
    await new Promise<void>((resolve) =>
      rows.subscribe({
        next: (r) => {
          seen.push(r);
          if (seen.length === 2) abort.abort();
        },
        complete: resolve,
      }),
    );
    expect(seen).toHaveLength(2);
  });

  it('stops without error when outputReady rejects because the run was aborted', async () => {
    const abort = new AbortController();
    let calls = 0;
    // The first item has room; the second waits for room, and the run is aborted while it waits.
    const outputReady = (): Promise<void> =>
      calls++ === 0 ? Promise.resolve() : new Promise((_, reject) => abort.signal.addEventListener('abort', () => reject(new Error('aborted'))));
    const { ctx } = fakeContext(datasetLoad.config.parse({ path: 'test/fixtures/gsm8k/train.jsonl' }), { baseDir: root, outputReady });
    const out = await datasetLoad.run({ ...ctx, signal: abort.signal }, {});
    const seen: DatasetRow[] = [];
    await new Promise<void>((resolve, reject) => {
      out.rows!.subscribe({ next: (r) => seen.push(r), error: reject, complete: resolve });
      setTimeout(() => abort.abort(), 20);
    });
    expect(seen).toHaveLength(1);
    expect(calls).toBe(2);
  });

  it('rejects bad config and missing files clearly', async () => {
    expect(() => datasetLoad.config.parse({})).toThrow(/give exactly one of .*path.* or .*hub/);
    expect(() => datasetLoad.config.parse({ path: 'a.jsonl', colour: 'red' })).toThrow();
    const { rows } = await run({ path: 'nope.jsonl' });
    await expect(lastValueFrom(rows)).rejects.toThrow(`dataset.load test-node: no such file or folder: ${join(root, 'nope.jsonl')}`);
  });
});
