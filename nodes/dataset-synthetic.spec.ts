import { lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { ARITHMETIC_SYSTEM_PROMPT } from '../core/data/arithmetic.js';
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

  it('rejects unknown levels and keys', () => {
    expect(() => datasetSynthetic.config.parse({ levels: [5] })).toThrow();
    expect(() => datasetSynthetic.config.parse({ level: 1 })).toThrow();
  });
});
