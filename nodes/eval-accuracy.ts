// eval.accuracy: accuracy and pass@k of the model on held-out prompts, scored by the reward functions.
// A sample is correct when the `correct_reward` function gives it at least `correct_score` (with the
// reference correctness reward: 3.0, an exact match of the answer). It samples with its own rollout
// engine (the model's weights as they are when the node starts; then the weights each policy snapshot
// carries). It evaluates "before" training, every `every` optimiser steps (with the weights of the
// policy version the trainer announces), and "after" (the last version, when the trainer's policy
// stream ends). Every evaluation samples with the same seed, so before and
// after differ by the weights only, not by the draw. With `greedy`, each problem is also decoded once
// greedily. Each figure comes with its standard error over problems (`stderr`). Results go to the
// metrics bus (`eval/accuracy`, `eval/greedy_accuracy`, `eval/pass@k`, `eval/rewards/NAME/mean`), to the
// UI (an event whose data holds `eval`), and to OUT/summary.json under `eval.before`, `eval.after` and
// `eval.periodic.STEP`.
import { lastValueFrom, take, toArray, type Subscription } from 'rxjs';
import { z } from 'zod';
import { resumeCheckpoint } from '../core/grpo/resume.js';
import { scoreBatch } from '../core/grpo/rewards/score.js';
import { sampledGroup } from '../core/engine/sampled.js';
import { rolloutEngineNamed } from '../core/engine/model-engine.js';
import type { RolloutEngine } from '../core/engine/interfaces.js';
import { EngineWorker } from '../core/scheduler/engine-worker.js';
import { defineNode, type MetricsPublisher } from '../core/plugin.js';
import { ports, type PolicySnapshot, type PromptRecord, type RolloutGroup } from '../core/ports.js';
import { mergeSummary, readSummarySync } from '../core/report/summary.js';
import { preparePrompt, stopTokenIds } from './rollout-generate.js';

export const evalAccuracyConfig = z
  .strictObject({
    n: z.number().int().positive().default(1).describe('Samples per prompt (pass@k needs n ≥ k).'),
    k: z.array(z.number().int().positive()).min(1).default([1]).describe('The k of each pass@k reported.'),
    temperature: z.number().min(0).default(0).describe('Sampling temperature; 0 is greedy.'),
    top_p: z.number().gt(0).max(1).default(1).describe('Nucleus sampling mass; 1 is off.'),
    max_new_tokens: z.number().int().positive().default(256).describe('Most tokens per completion.'),
    max_prompt_length: z.number().int().positive().optional().describe('Prompts longer than this keep their last tokens (as the generator does).'),
    limit: z.number().int().positive().optional().describe('Evaluate the first N held-out prompts only.'),
    correct_reward: z.string().min(1).default('correctness').describe('Name of the reward whose score says whether a sample is correct.'),
    correct_score: z
      .number()
      .default(3)
      .describe("A sample is correct when correct_reward scores it at least this (3.0: the correctness reward's exact match)."),
    before: z.boolean().default(true).describe('Evaluate before the first optimiser step.'),
    after: z.boolean().default(true).describe('Evaluate when training has ended (needs the policy input).'),
    every: z.number().int().min(0).default(0).describe('Also evaluate every N optimiser steps (0: never).'),
    max_batch: z.number().int().positive().default(16).describe('Sequences decoded together.'),
    merged_sampling: z
      .boolean()
      .default(false)
      .describe('Sample with the LoRA adapter folded into a copy of the adapted weights (as rollout.generate\'s merged_sampling): faster on small models.'),
    greedy: z.boolean().default(false).describe('Also decode each problem once greedily and report greedy_accuracy (when temperature > 0).'),
    seed: z.number().int().optional().describe("Sampling seed, the same for every evaluation; default the graph's seed."),
    engine: z
      .string()
      .min(1)
      .default('tfjs')
      .describe('The rollout engine that samples (`grpoflow nodes` lists the installed ones; built in: tfjs); on this thread, or in a worker thread if it runs only there.'),
  })
  .refine((c) => c.k.every((k) => k <= c.n), { message: 'every k must be ≤ n (samples per prompt)', path: ['k'] });

export type EvalAccuracyConfig = z.output<typeof evalAccuracyConfig>;

export interface EvalResult {
  label: string;
  /** The policy version (optimiser step) evaluated. */
  step: number;
  /** Problems evaluated. */
  n: number;
  /** Fraction of all samples that are correct. */
  accuracy: number;
  /** `pass@k` (unbiased estimator), `greedy_accuracy`, `rewards/NAME/mean` ... */
  values: Record<string, number>;
  /** The standard error over problems of `accuracy`, `pass@k` and `greedy_accuracy`. */
  stderr: Record<string, number>;
}

/** The unbiased pass@k estimate for one problem with `correct` of `n` samples correct (Chen et al. 2021). */
export function passAtK(n: number, correct: number, k: number): number {
  if (k > n) throw new Error(`pass@${k} needs at least ${k} samples (got ${n})`);
  if (n - correct < k) return 1;
  let missAll = 1;
  for (let i = n - correct + 1; i <= n; i++) missAll *= 1 - k / i;
  return 1 - missAll;
}

export const evalAccuracy = defineNode({
  type: 'eval.accuracy',
  version: 1,
  description: 'Accuracy and pass@k on held-out prompts, scored by the reward functions, before, during and after training; writes summary.json.',
  inputs: {
    model: { type: ports.model },
    tokenizer: { type: ports.tokenizer },
    template: { type: ports.chatTemplate },
    prompts: { type: ports.prompts, description: 'Held-out prompts (collected before the first evaluation).' },
    rewards: { type: ports.reward, multiple: true, description: 'Reward functions; correct_reward names the one that decides correctness.' },
    policy: {
      type: ports.policy,
      optional: true,
      description: "The trainer's policy stream: its versions time the periodic evaluations, its end the 'after' one.",
    },
  },
  outputs: {},
  config: evalAccuracyConfig,
  run(ctx, inputs) {
    const c = ctx.config;
    const { model, tokenizer, template, rewards } = inputs;
    const where = `eval.accuracy ${ctx.id}`;
    if (!rewards.some((r) => r.name === c.correct_reward)) {
      throw new Error(`${where}: correct_reward "${c.correct_reward}" is not among the rewards connected (${rewards.map((r) => r.name).join(', ')})`);
    }
    if (c.after && !inputs.policy) {
      throw new Error(`${where}: after: true needs the policy input (connect it to the trainer's policy output), or set after: false`);
    }
    // An engine with its own copy of the weights, taken now: the trainer's steps never change them under
    // an evaluation in progress. On this thread, or through the worker host for an engine that runs only there.
    const definition = rolloutEngineNamed(ctx.services, c.engine, where);
    const starting: Promise<RolloutEngine> = definition.threads.includes('main')
      ? definition.create({ model, tokenizer, thread: 'main' })
      : EngineWorker.start(definition, { model, tokenizer, thread: 'worker', backend: (ctx.services.backend as { name?: string } | undefined)?.name });
    starting.catch(() => undefined); // awaited by the first evaluation, which reports a failure
    ctx.onTeardown(async () => (await starting.catch(() => undefined))?.close());
    const eosTokenIds = stopTokenIds(model, tokenizer, template);
    const seed = c.seed ?? (typeof ctx.services.seed === 'number' ? ctx.services.seed : 0);

    let collected: Promise<PromptRecord[]> | undefined;
    const heldOut = () =>
      (collected ??= lastValueFrom(inputs.prompts.pipe(c.limit !== undefined ? take(c.limit) : (s) => s, toArray())).then((prompts) => {
        if (prompts.length === 0) throw new Error(`${where}: no held-out prompts arrived`);
        return prompts;
      }));

    const results = new Map<number, EvalResult>();
    const greedyPass = c.greedy && c.temperature > 0;
    /** Evaluates the engine's current weights, or `policy`'s. */
    const evaluate = async (label: string, step: number, policy?: PolicySnapshot): Promise<EvalResult> => {
      const prompts = await heldOut();
      const engine = await starting;
      // The engine runs its calls in the order made: the weights and the samples are asked for together,
      // so no other evaluation's weights come between them.
      const weightsSet = policy ? engine.setWeights(policy) : Promise.resolve();
      const sampling = generateGroups(engine, prompts, c.n, c.temperature, label);
      const greedying = greedyPass ? generateGroups(engine, prompts, 1, 0, `${label} greedy`) : Promise.resolve(undefined);
      const [, sampled, greedy] = await Promise.all([weightsSet, sampling, greedying]);
      const result = await score(label, step, sampled, greedy);
      results.set(step, result);
      await report(result);
      return result;
    };

    const generateGroups = async (engine: RolloutEngine, prompts: PromptRecord[], n: number, temperature: number, label: string): Promise<RolloutGroup[]> => {
      const prepared = prompts.map((p) => preparePrompt(p, template, tokenizer, { max_prompt_length: c.max_prompt_length, long_prompts: 'truncate', template_variables: {} }));
      const kept = prepared.flatMap((p) => ('promptIds' in p ? [p] : []));
      const onFinished = evalProgress(ctx.metrics, label, kept.length * n); // the UI's eval progress and ETA
      const rows = await engine.sample(
        kept.map((p) => p.promptIds),
        n,
        { maxNewTokens: c.max_new_tokens, temperature, topP: c.top_p, maxBatch: c.max_batch, seed, eosTokenIds, merged: c.merged_sampling },
        ctx.signal,
        { onFinished },
      );
      return kept.map((p, i) => ({
        prompt: p.record,
        promptText: p.promptText,
        promptIds: p.promptIds,
        completions: sampledGroup(rows, i, n),
      }));
    };

    const correctCounts = async (step: number, groups: RolloutGroup[]) => {
      const scored = await scoreBatch({ index: step, policyVersion: step, groups }, rewards, {
        onWarning: (message) => ctx.metrics.event('warn', `${where}: ${message}`),
      });
      const decisive = scored.rewards.find((r) => r.name === c.correct_reward)!;
      return { scored, correctPerProblem: decisive.values.map((values) => values.filter((v) => v >= c.correct_score).length) };
    };

    const score = async (label: string, step: number, groups: RolloutGroup[], greedyGroups?: RolloutGroup[]): Promise<EvalResult> => {
      const { scored, correctPerProblem } = await correctCounts(step, groups);
      // Each figure is a mean over problems of a per-problem estimate; its standard error is theirs.
      const perProblem: Record<string, number[]> = { accuracy: correctPerProblem.map((correct) => correct / c.n) };
      for (const k of c.k) perProblem[`pass@${k}`] = correctPerProblem.map((correct) => passAtK(c.n, correct, k));
      if (greedyGroups) perProblem.greedy_accuracy = (await correctCounts(step, greedyGroups)).correctPerProblem;
      else if (c.greedy) perProblem.greedy_accuracy = perProblem.accuracy; // temperature 0: the samples are greedy
      const values: Record<string, number> = {};
      const stderr: Record<string, number> = {};
      for (const [name, estimates] of Object.entries(perProblem)) {
        if (name !== 'accuracy') values[name] = mean(estimates);
        stderr[name] = standardError(estimates);
      }
      for (const reward of scored.rewards) values[`rewards/${reward.name}/mean`] = mean(reward.values.flat());
      return { label, step, n: groups.length, accuracy: mean(perProblem.accuracy), values, stderr };
    };

    const report = async (result: EvalResult) => {
      const { label, step, n, accuracy, values, stderr } = result;
      const metrics: Record<string, number> = { 'eval/accuracy': accuracy, 'eval/n': n };
      for (const [name, value] of Object.entries(values)) metrics[`eval/${name}`] = value;
      ctx.metrics.publish(step, metrics);
      const passes = Object.fromEntries(Object.entries(values).filter(([name]) => name.startsWith('pass@') || name === 'greedy_accuracy'));
      const greedyText = values.greedy_accuracy === undefined ? '' : `, greedy ${values.greedy_accuracy.toFixed(3)} ± ${stderr.greedy_accuracy.toFixed(3)}`;
      ctx.metrics.event('info', `eval ${label} (step ${step}): accuracy ${accuracy.toFixed(3)} ± ${stderr.accuracy.toFixed(3)}${greedyText} on ${n} problems`, {
        eval: { label, accuracy, ...passes, n },
      });
      const entry = { step, n, accuracy, ...values, stderr, seed };
      const key = label === 'before' || label === 'after' ? { [label]: entry } : { periodic: { [String(step)]: entry } };
      await mergeSummary(ctx.outDir, { eval: key });
    };

    // The engine's copy of the weights is taken as this node starts, before the trainer's first step.
    const startStep = resumeCheckpoint(ctx.services)?.step ?? 0;
    // Collect the held-out prompts now even without a "before" evaluation: a source that feeds this node
    // and the generator (dataset.synthetic's test and prompts) may hold the training prompts back until
    // the held-out ones are taken, and nothing else would take them until training ends.
    heldOut().catch(() => undefined); // awaited by the first evaluation, which reports a failure
    // A resumed run keeps the first segment's "before" (in summary.json) instead of evaluating the checkpoint again.
    const recordedBefore = startStep > 0 ? recordedEval(ctx.outDir, 'before') : undefined;
    if (recordedBefore) results.set(recordedBefore.step, recordedBefore);
    const before = c.before ? (recordedBefore ? Promise.resolve(recordedBefore) : evaluate('before', startStep)) : undefined;
    before?.catch(() => undefined); // awaited below; a rejection fails the node there

    const periodic: Promise<EvalResult>[] = [];
    let lastVersion = startStep;
    let lastPolicy: PolicySnapshot | undefined;
    let policySub: Subscription | undefined;
    const policyEnded = new Promise<void>((resolve, reject) => {
      if (!inputs.policy) return resolve();
      policySub = inputs.policy.subscribe({
        next: (policy) => {
          lastVersion = policy.version;
          lastPolicy = policy;
          if (c.every > 0 && policy.version > startStep && policy.version % c.every === 0 && !results.has(policy.version)) {
            const pending = evaluate(`step ${policy.version}`, policy.version, policy);
            pending.catch(() => undefined);
            periodic.push(pending);
          }
        },
        error: reject,
        complete: resolve,
      });
    });
    ctx.onTeardown(() => policySub?.unsubscribe());

    const done = (async () => {
      const beforeResult = await before;
      await policyEnded;
      await Promise.all(periodic);
      let afterResult: EvalResult | undefined;
      if (c.after) {
        const same = results.get(lastVersion);
        if (same && same.label !== 'before') {
          afterResult = { ...same, label: 'after' };
          await report(afterResult);
        } else {
          afterResult = await evaluate('after', lastVersion, lastPolicy);
        }
      }
      const rows = [beforeResult, afterResult].filter((r): r is EvalResult => r !== undefined);
      if (rows.length > 0) ctx.metrics.event('info', `${where}: evaluation\n${evalTable(rows)}`, { evalTable: rows });
    })();
    return { done };
  },
});

/** An evaluation an earlier segment of this run wrote to summary.json (`eval.before`, `eval.after`). */
export function recordedEval(outDir: string, label: 'before' | 'after'): EvalResult | undefined {
  const evals = readSummarySync(outDir).eval as Record<string, unknown> | undefined;
  const entry = evals?.[label] as Record<string, unknown> | undefined;
  if (!entry || typeof entry.step !== 'number' || typeof entry.n !== 'number' || typeof entry.accuracy !== 'number') return undefined;
  const { step, n, accuracy, stderr, ...rest } = entry;
  const values = Object.fromEntries(Object.entries(rest).filter((e): e is [string, number] => typeof e[1] === 'number'));
  const recordedStderr = typeof stderr === 'object' && stderr !== null ? (stderr as Record<string, number>) : {};
  return { label, step, n, accuracy, values, stderr: recordedStderr };
}

/**
 * Progress of one evaluation for the terminal UI (core/ui/types.ts): a debug event whose data holds
 * `evalProgress: {label, done, total}` (samples), at the start and then at most once a second.
 */
function evalProgress(metrics: MetricsPublisher, label: string, total: number): () => void {
  let done = 0;
  let sentAt = Date.now();
  const send = () => metrics.event('debug', `eval ${label}: ${done}/${total} samples`, { evalProgress: { label, done, total } });
  send();
  return () => {
    done++;
    if (done === total || Date.now() - sentAt >= 1000) {
      sentAt = Date.now();
      send();
    }
  };
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

/** The standard error of the mean of `values` (sample standard deviation / √n); 0 for fewer than 2. */
export function standardError(values: number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  const variance = values.reduce((a, v) => a + (v - m) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance / values.length);
}

/** A plain-text table, one row per evaluation. */
export function evalTable(rows: EvalResult[]): string {
  const columns = ['accuracy', ...new Set(rows.flatMap((r) => Object.keys(r.values)))];
  const cell = (r: EvalResult, column: string) => (column === 'accuracy' ? r.accuracy : r.values[column]);
  const lines = [['eval', 'step', ...columns].join('\t')];
  for (const r of rows) lines.push([r.label, String(r.step), ...columns.map((col) => (cell(r, col) === undefined ? '-' : cell(r, col)!.toFixed(3)))].join('\t'));
  return lines.join('\n');
}
