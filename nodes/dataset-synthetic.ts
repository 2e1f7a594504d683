// dataset.synthetic: seeded arithmetic word problems (the embedded default task) with reference answers.
// Held-out problems come in two splits: `validation` (for tuning) and `test` (reported only). With
// `heldout_facts` they share no arithmetic fact with the training stream, and with `sft_data` none with
// the stream that trained the model either; when the run ends the node writes to OUT/summary.json how far
// the test split overlaps what was actually emitted for training and the SFT data (`heldout.*`), counted
// from the problems themselves rather than assumed from the construction.
import { from } from 'rxjs';
import { z } from 'zod';
import { ARITHMETIC_LEVELS, ARITHMETIC_SYSTEM_PROMPT, arithmeticPromptRecord, formatGoldCompletion, type ArithmeticLevel, type ArithmeticProblem } from '../core/data/arithmetic.js';
import { arithmeticSplit, heldoutOverlap, problemFacts, streamFootprint, type ProblemFootprint } from '../core/data/arithmetic-set.js';
import { emitLazily } from '../core/data/emit.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { mergeSummary } from '../core/report/summary.js';

const level = z.union(ARITHMETIC_LEVELS.map((l) => z.literal(l)) as [z.ZodLiteral<1>, z.ZodLiteral<2>, z.ZodLiteral<3>, z.ZodLiteral<4>, z.ZodLiteral<5>]);

export const datasetSyntheticConfig = z.strictObject({
  seed: z.number().int().default(0),
  levels: z.array(level).min(1).default([1, 2, 3, 4]).describe('Difficulty levels to draw from, uniformly: 1 one step < 10; 2 two steps; 3 multiplication or two-digit numbers; 4 multiplication then + or -; 5 a two-digit sum ("What is 34 + 57?") worked digit by digit.'),
  count: z.number().int().positive().optional().describe('Training problems to emit; endless when absent.'),
  test_size: z.number().int().min(0).default(100).describe('Held-out problems on the `test` output (never in training; report only).'),
  validation_size: z.number().int().min(0).default(0).describe('Held-out problems on the `validation` output, for tuning; disjoint from `test`.'),
  heldout_facts: z
    .boolean()
    .default(false)
    .describe('Hold arithmetic facts out too (each step\'s operands and operator): no held-out problem shares one with training, `sft_data` or the other held-out split.'),
  heldout_levels: z.array(level).min(1).optional().describe('Levels the held-out problems are drawn from; default `levels`.'),
  sft_data: z
    .strictObject({
      seed: z.number().int(),
      levels: z.array(level).min(1),
      test_size: z.number().int().min(0),
      validation_size: z.number().int().min(0).default(0),
      heldout_facts: z.boolean().default(false),
      count: z.number().int().min(0).describe('Training problems the SFT run consumed (steps × batch size).'),
    })
    .optional()
    .describe("The dataset.synthetic stream that trained the model (its SFT graph's settings), replayed: held-out problems avoid its questions (and facts, with heldout_facts)."),
  system: z.string().nullable().default(ARITHMETIC_SYSTEM_PROMPT).describe('System prompt; null for none.'),
  gold: z.boolean().default(false).describe('Add the worked gold completion (`<reasoning>3 + 5 = 8</reasoning><answer>8</answer>`) as fields.completion, for SFT.'),
});

export type DatasetSyntheticConfig = z.output<typeof datasetSyntheticConfig>;

/** The held-out splits and training stream a dataset.synthetic config makes, and the SFT data it avoids. */
export function syntheticSplit(c: DatasetSyntheticConfig) {
  const d = c.sft_data;
  const sft =
    d &&
    streamFootprint({ seed: d.seed, levels: d.levels as ArithmeticLevel[], testSize: d.test_size, validationSize: d.validation_size, heldoutFacts: d.heldout_facts, count: d.count });
  const split = arithmeticSplit({
    seed: c.seed,
    levels: c.levels as ArithmeticLevel[],
    testSize: c.test_size,
    validationSize: c.validation_size,
    heldoutFacts: c.heldout_facts,
    heldoutLevels: c.heldout_levels as ArithmeticLevel[] | undefined,
    seen: sft,
  });
  return { ...split, sft };
}

/** The summary's `heldout` block: the test split's size and its overlap with the SFT data and the training problems. */
export function heldoutReport(test: readonly ArithmeticProblem[], training: ProblemFootprint, trainProblems: number, sft?: ProblemFootprint) {
  const withTrain = heldoutOverlap(test, training);
  const withSft = sft ? heldoutOverlap(test, sft) : undefined;
  const heldFacts = new Set(test.flatMap(problemFacts));
  const sharedFacts = [...heldFacts].filter((f) => training.facts.has(f) || (sft?.facts.has(f) ?? false)).length;
  return {
    n: test.length,
    facts: heldFacts.size,
    overlap_sft: withSft?.questions ?? null,
    overlap_train: withTrain.questions,
    shared_facts: sharedFacts,
    train_problems_checked: trainProblems,
  };
}

export const datasetSynthetic = defineNode({
  type: 'dataset.synthetic',
  version: 1,
  description: 'Arithmetic word problems with difficulty levels and reference answers (fields.answer), seeded; the embedded default task.',
  inputs: {},
  outputs: {
    prompts: { type: ports.prompts, description: 'Training problems (endless unless count is set).' },
    test: { type: ports.prompts, description: 'Held-out test problems, emitted once: report on them only.' },
    validation: { type: ports.prompts, description: 'Held-out validation problems (validation_size), emitted once: tune on them.' },
  },
  config: datasetSyntheticConfig,
  run(ctx) {
    const c = ctx.config;
    let made: ReturnType<typeof syntheticSplit> | undefined;
    const split = () => (made ??= syntheticSplit(c));
    const record = (p: ArithmeticProblem, id: string) => {
      const r = arithmeticPromptRecord(p, id, c.system);
      if (c.gold) r.fields.completion = formatGoldCompletion(p);
      return r;
    };
    // What was actually emitted for training, to count the held-out overlap at the end of the run.
    const emitted = { questions: new Set<string>(), facts: new Set<string>() };
    let emittedCount = 0;
    const prompts = emitLazily(ctx, function* () {
      const { train } = syntheticSplit(c); // a fresh stream for each subscriber
      for (let i = 0; c.count === undefined || i < c.count; i++) {
        const problem = train.next().value!;
        emitted.questions.add(problem.question);
        for (const f of problemFacts(problem)) emitted.facts.add(f);
        emittedCount++;
        yield record(problem, `train-${i}`);
      }
    });
    const test = from(split().test.map((p, i) => record(p, `test-${i}`)));
    const validation = from(split().validation.map((p, i) => record(p, `validation-${i}`)));
    ctx.onTeardown(async () => {
      if (emittedCount === 0) return; // nothing trained on: no run to report the overlap of
      const { test, validation, sft } = split();
      const heldout = { ...heldoutReport(test, emitted, emittedCount, sft), validation: heldoutReport(validation, emitted, emittedCount, sft) };
      await mergeSummary(ctx.outDir, { heldout });
    });
    return { prompts, test, validation };
  },
});
