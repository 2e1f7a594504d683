import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ARITHMETIC_SYSTEM_PROMPT } from '../core/data/arithmetic.js';
import { problemFacts } from '../core/data/arithmetic-set.js';
import { fakeContext } from '../test/data/fake-context.js';
import { datasetSynthetic } from './dataset-synthetic.js';

async function run(config: Record<string, unknown>) {
  const { ctx } = fakeContext(datasetSynthetic.config.parse(config));
  return datasetSynthetic.run(ctx, {});
}

describe('dataset.synthetic', () => {
  it('emits N seeded problems with answers, and a held-out set never trained on', async () => {
    const out = await run({ seed: 4, levels: [1, 2], count: 300, test_size: 40 });
    const train = await lastValueFrom(out.prompts!.pipe(toArray()));
    const test = await lastValueFrom(out.test!.pipe(toArray()));
    expect(train).toHaveLength(300);
    expect(test).toHaveLength(40);
    expect(train[0].messages).toEqual([
      { role: 'system', content: ARITHMETIC_SYSTEM_PROMPT },
      { role: 'user', content: expect.stringMatching(/How many \w+ does (he|she) have\?$/) },
    ]);
    expect(train.every((p) => /^\d+$/.test(String(p.fields.answer)) && [1, 2].includes(p.fields.level as number))).toBe(true);
    expect(train.every((p) => (p.fields.gold as string).endsWith(`<answer>${p.fields.answer}</answer>`))).toBe(true);
    const held = new Set(test.map((p) => p.messages[1].content));
    expect(train.some((p) => held.has(p.messages[1].content))).toBe(false);
    const again = await run({ seed: 4, levels: [1, 2], count: 300, test_size: 40 });
    expect(await lastValueFrom(again.prompts!.pipe(toArray()))).toEqual(train);
  });

  it('is endless without count, and can drop the system prompt', async () => {
    const out = await run({ system: null, test_size: 0 });
    const items = await lastValueFrom(out.prompts!.pipe(take(1000), toArray()));
    expect(items).toHaveLength(1000);
    expect(items[0].messages.map((m) => m.role)).toEqual(['user']);
    expect(new Set(items.map((p) => p.fields.level))).toEqual(new Set([1, 2, 3, 4]));
  });

  it('adds the gold completion for SFT when asked, and only then', async () => {
    const gold = await lastValueFrom((await run({ seed: 2, levels: [4], count: 5, test_size: 3, gold: true })).prompts!.pipe(toArray()));
    for (const p of gold) {
      const steps = p.fields.steps as string[];
      expect(p.fields.completion).toBe(`<reasoning>${steps.join(', ')}</reasoning><answer>${p.fields.answer}</answer>`);
      expect(steps).toHaveLength(2);
    }
    const plain = await lastValueFrom((await run({ seed: 2, levels: [4], count: 5, test_size: 3 })).prompts!.pipe(toArray()));
    expect(plain.some((p) => 'completion' in p.fields)).toBe(false);
  });

  it('holds validation and test out by fact, and writes their overlap with what it emitted to summary.json', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dataset-synthetic-'));
    const hooks: (() => void | Promise<void>)[] = [];
    const { ctx } = fakeContext(datasetSynthetic.config.parse({ seed: 3, levels: [1, 3], test_size: 30, validation_size: 20, heldout_facts: true, system: null }));
    const out = await datasetSynthetic.run({ ...ctx, outDir: dir, onTeardown: (fn) => hooks.push(fn) }, {});
    const train = await lastValueFrom(out.prompts!.pipe(take(500), toArray()));
    const test = await lastValueFrom(out.test!.pipe(toArray()));
    const validation = await lastValueFrom(out.validation!.pipe(toArray()));
    expect([test.length, validation.length]).toEqual([30, 20]);
    const facts = (records: typeof train) => new Set(records.flatMap((r) => problemFacts({ steps: r.fields.steps as string[] })));
    const trainFacts = facts(train);
    expect([...facts(test), ...facts(validation)].filter((f) => trainFacts.has(f))).toEqual([]);
    expect([...facts(validation)].filter((f) => facts(test).has(f))).toEqual([]);
    for (const hook of hooks) await hook();
    const { heldout } = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(heldout).toMatchObject({ n: 30, overlap_sft: null, overlap_train: 0, shared_facts: 0, validation: { n: 20, shared_facts: 0 } });
    expect(heldout.train_problems_checked).toBeGreaterThanOrEqual(500);
    rmSync(dir, { recursive: true, force: true });
  });

  it('says when the held-out facts cannot be found outside the SFT data', async () => {
    const config = datasetSynthetic.config.parse({ levels: [1], test_size: 10, heldout_facts: true, sft_data: { seed: 1, levels: [1], test_size: 0, count: 3000 } });
    await expect(async () => lastValueFrom((await datasetSynthetic.run(fakeContext(config).ctx, {})).test!)).rejects.toThrow(
      /cannot draw 10 distinct held-out problems whose facts the training data never uses from levels 1 \(got 0\)/,
    );
  });

  it('rejects unknown levels and keys', () => {
    expect(() => datasetSynthetic.config.parse({ levels: [6] })).toThrow();
    expect(() => datasetSynthetic.config.parse({ level: 1 })).toThrow();
  });
});
