import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deepMerge, mergeSummary, readSummary, updateSummary } from './summary.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'summary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('run summary', () => {
  it('merges updates from several writers without losing any, atomically', async () => {
    await Promise.all([
      mergeSummary(dir, { eval: { before: { accuracy: 0.1 } } }),
      mergeSummary(dir, { steps: 3 }),
      mergeSummary(dir, { eval: { after: { accuracy: 0.4 } } }),
      updateSummary(dir, (s) => ({ ...s, wall_s: 12.5 })),
    ]);
    const summary = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(summary).toEqual({ eval: { before: { accuracy: 0.1 }, after: { accuracy: 0.4 } }, steps: 3, wall_s: 12.5 });
    expect(await readSummary(path.join(dir, 'nowhere'))).toEqual({});
  });

  it('deep-merges objects and replaces everything else', () => {
    expect(deepMerge({ a: { b: 1, c: [1] }, d: 1 }, { a: { c: [2], e: 3 }, d: { x: 1 } })).toEqual({ a: { b: 1, c: [2], e: 3 }, d: { x: 1 } });
  });

  it('says which file is broken', async () => {
    const broken = mkdtempSync(path.join(dir, 'broken-'));
    writeFileSync(path.join(broken, 'summary.json'), '{"steps": ');
    await expect(mergeSummary(broken, { steps: 1 })).rejects.toThrow(`${path.join(broken, 'summary.json')} is not valid JSON`);
  });
});
