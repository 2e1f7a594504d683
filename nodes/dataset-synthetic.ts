// dataset.synthetic: seeded arithmetic word problems (the embedded default task) with reference answers.
import { from } from 'rxjs';
import { z } from 'zod';
import { ARITHMETIC_LEVELS, ARITHMETIC_SYSTEM_PROMPT, arithmeticPromptRecord, formatGoldCompletion, type ArithmeticLevel, type ArithmeticProblem } from '../core/data/arithmetic.js';
import { arithmeticSplit } from '../core/data/arithmetic-set.js';
import { emitLazily } from '../core/data/emit.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

const level = z.union(ARITHMETIC_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>, z.ZodLiteral<4>]);

export const datasetSyntheticConfig = z.strictObject({
  seed: z.number().int().default(0),
  levels: z.array(level).min(1).default([1, 2, 3, 4]).describe('Difficulty levels to draw from, uniformly: 1 one step < 10; 2 two steps; 3 multiplication or two-digit numbers; 4 multiplication then + or -.'),
  count: z.number().int().positive().optional().describe('Training problems to emit; endless when absent.'),
  test_size: z.number().int().min(0).default(100).describe('Held-out problems on the `test` output (never in training).'),
  system: z.string().nullable().default(ARITHMETIC_SYSTEM_PROMPT).describe('System prompt; null for none.'),
  gold: z.boolean().default(false).describe('Add the worked gold completion (`<reasoning>3 + 5 = 8</reasoning><answer>8</answer>`) as fields.completion, for SFT.'),
});

export const datasetSynthetic = defineNode({
  type: 'dataset.synthetic',
  version: 1,
  description: 'Arithmetic word problems with difficulty levels and reference answers (fields.answer), seeded; the embedded default task.',
  inputs: {},
  outputs: {
    prompts: { type: ports.prompts, description: 'Training problems (endless unless count is set).' },
    test: { type: ports.prompts, description: 'Held-out problems, emitted once.' },
  },
  config: datasetSyntheticConfig,
  run(ctx) {
    const c = ctx.config;
    const levels = c.levels as ArithmeticLevel[];
    const split = () => arithmeticSplit({ seed: c.seed, levels, testSize: c.test_size });
    const record = (p: ArithmeticProblem, id: string) => {
      const r = arithmeticPromptRecord(p, id, c.system);
      if (c.gold) r.fields.completion = formatGoldCompletion(p);
      return r;
    };
    const prompts = emitLazily(ctx, function* () {
      const { train } = split();
      for (let i = 0; c.count === undefined || i < c.count; i++) {
        yield record(train.next().value!, `train-${i}`);
      }
    });
    const test = from(split().test.map((p, i) => record(p, `test-${i}`)));
    return { prompts, test };
  },
});
