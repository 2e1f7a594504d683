import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { from, lastValueFrom, Observable, Subject } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate } from '../core/llm/chat-template.js';
import { type CausalLM } from '../engines/tfjs/model.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { tf } from '../engines/tfjs/tf.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import type { PolicySnapshot, PromptRecord, RewardFunction } from '../core/ports.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { evalAccuracy, passAtK, standardError } from './eval-accuracy.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
const out = mkdtempSync(path.join(os.tmpdir(), 'eval-accuracy-'));
let model: CausalLM;
let tokenizer: Tokenizer;
let template: ChatTemplate;
beforeAll(async () => {
  await tf.setBackend('cpu');
  model = await loadModel(LLAMA_TINY);
  tokenizer = await Tokenizer.fromDir(LLAMA_TINY);
  template = await ChatTemplate.fromDir(LLAMA_TINY);
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

const prompts: PromptRecord[] = [0, 1, 2, 3].map((i) => ({ id: `q${i}`, messages: [{ role: 'user', content: `What is ${i} + 1?` }], fields: { answer: String(i + 1), even: i % 2 === 0 } }));
// "Correct" on the even prompts whatever the model says, so the expected accuracy is known: 1/2.
const correctness: RewardFunction = { name: 'correctness', weight: 1, onError: 'fail', score: ({ fields }) => fields.map((f) => (f.even ? 3 : -1.5)) };
const format: RewardFunction = { name: 'format', weight: 1, onError: 'fail', score: ({ completions }) => completions.map(() => 0) };

function start(config: Record<string, unknown>, policy?: Observable<PolicySnapshot>, dir = out) {
  const recorded = recordingContext(evalAccuracy.config.parse(config), { id: 'eval', services: { seed: 1 } });
  const run = () => evalAccuracy.run({ ...recorded.ctx, outDir: dir }, { model, tokenizer, template, prompts: from(prompts), rewards: [format, correctness], policy });
  return { ...recorded, run };
}

describe('eval.accuracy', () => {
  it('pass@k is the unbiased estimator', () => {
    expect(passAtK(5, 2, 1)).toBeCloseTo(0.4, 12);
    expect(passAtK(5, 2, 2)).toBeCloseTo(1 - 3 / 10, 12); // 1 − C(3,2)/C(5,2)
    expect(passAtK(5, 0, 3)).toBe(0);
    expect(passAtK(5, 4, 2)).toBe(1);
    expect(() => evalAccuracy.config.parse({ n: 2, k: [1, 4] })).toThrow(/every k must be ≤ n/);
  });

  it('evaluates before, every N steps and after; writes summary.json and the UI events', async () => {
    const policy = new Subject<PolicySnapshot>();
    const dir = mkdtempSync(path.join(out, 'run-'));
    const { run, metrics, events } = start({ n: 2, k: [1, 2], temperature: 1, max_new_tokens: 3, every: 2 }, policy, dir);
    const result = await run();
    for (const version of [0, 1, 2]) policy.next({ version, weights: {} });
    policy.complete();
    await result.done;

    const summary = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(summary.eval.before).toMatchObject({ step: 0, n: 4, accuracy: 0.5, 'pass@1': 0.5, 'pass@2': 0.5, 'rewards/correctness/mean': 0.75 });
    expect(summary.eval.periodic['2']).toMatchObject({ step: 2, accuracy: 0.5 });
    expect(summary.eval.after).toMatchObject({ step: 2, accuracy: 0.5 }); // the step-2 result, not evaluated twice
    expect(metrics.map((m) => m.step)).toEqual([0, 2, 2]);
    expect(metrics[0].values).toMatchObject({ 'eval/accuracy': 0.5, 'eval/pass@2': 0.5, 'eval/n': 4 });
    const labels = events.filter((e) => e.data?.eval).map((e) => (e.data!.eval as { label: string }).label);
    expect(labels).toEqual(['before', 'step 2', 'after']);
    expect(events.at(-1)!.message).toMatch(/before\t0\t0\.500/);
  });

  it('a resumed run keeps the first segment\'s "before" from summary.json instead of evaluating the checkpoint again', async () => {
    const dir = mkdtempSync(path.join(out, 'resumed-'));
    const first = { step: 0, n: 4, accuracy: 0.25, 'pass@1': 0.25, 'rewards/correctness/mean': 0.1 };
    writeFileSync(path.join(dir, 'summary.json'), JSON.stringify({ eval: { before: first }, wall_s: 12 }));
    const policy = new Subject<PolicySnapshot>();
    const recorded = recordingContext(evalAccuracy.config.parse({ n: 1, max_new_tokens: 2 }), {
      id: 'eval',
      services: { seed: 1, resume: { checkpoint: { dir: '/ckpt/checkpoint-6', step: 6 } } },
    });
    const result = await evalAccuracy.run({ ...recorded.ctx, outDir: dir }, { model, tokenizer, template, prompts: from(prompts), rewards: [format, correctness], policy });
    policy.next({ version: 7, weights: {} });
    policy.complete();
    await result.done;
    const summary = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(summary.eval.before).toEqual(first);
    expect(summary.eval.after).toMatchObject({ step: 7, accuracy: 0.5 });
    expect(recorded.metrics.map((m) => m.step)).toEqual([7]); // only the "after" was evaluated
    expect(recorded.events.at(-1)!.message).toMatch(/before\t0\t0\.250/);
  });

  it('samples every evaluation with one seed, adds a greedy pass and standard errors', async () => {
    // A reward that depends on the sampled text: equal means before and after say the draws were equal.
    const textSum = (text: string) => [...text].reduce((a, ch) => a + ch.codePointAt(0)!, 0);
    const length: RewardFunction = { name: 'length', weight: 1, onError: 'fail', score: ({ completions }) => completions.map(textSum) };
    const policy = new Subject<PolicySnapshot>();
    const dir = mkdtempSync(path.join(out, 'seed-'));
    const recorded = recordingContext(evalAccuracy.config.parse({ n: 3, k: [1, 3], temperature: 1, max_new_tokens: 6, greedy: true }), { id: 'eval', services: { seed: 7 } });
    const result = await evalAccuracy.run({ ...recorded.ctx, outDir: dir }, { model, tokenizer, template, prompts: from(prompts), rewards: [length, correctness], policy });
    policy.next({ version: 5, weights: {} }); // no weight change: only the step differs
    policy.complete();
    await result.done;
    const { before, after } = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8')).eval;
    expect([before.step, after.step]).toEqual([0, 5]);
    expect(after['rewards/length/mean']).toBe(before['rewards/length/mean']);
    expect(before.seed).toBe(7);
    // Correct on the even prompts (2 of 4) whatever is sampled: per-problem estimates 1, 0, 1, 0.
    expect(before).toMatchObject({ n: 4, accuracy: 0.5, greedy_accuracy: 0.5, 'pass@1': 0.5, 'pass@3': 0.5 });
    const se = Math.sqrt(1 / 3 / 4); // sample s.d. of (1, 0, 1, 0) is √(1/3); over √4 problems
    for (const name of ['accuracy', 'greedy_accuracy', 'pass@1', 'pass@3']) expect(before.stderr[name]).toBeCloseTo(se, 12);
    expect(standardError([0.25, 0.75])).toBeCloseTo(0.25, 12);
    expect(standardError([1])).toBe(0);
  });

  it('says what is wrong with its wiring', async () => {
    await expect(async () => start({ correct_reward: 'accuracy', after: false }).run()).rejects.toThrow(
      /correct_reward "accuracy" is not among the rewards connected \(format, correctness\)/,
    );
    await expect(async () => start({}).run()).rejects.toThrow(/after: true needs the policy input/);
  });

  it('with before: false, still takes the held-out prompts at once (a shared source would otherwise stall the training prompts)', async () => {
    let subscribed = false;
    const heldOut = new Observable<PromptRecord>((subscriber) => {
      subscribed = true;
      prompts.forEach((p) => subscriber.next(p));
      subscriber.complete();
    });
    const policy = new Subject<PolicySnapshot>();
    const dir = mkdtempSync(path.join(out, 'no-before-'));
    const recorded = recordingContext(evalAccuracy.config.parse({ before: false, max_new_tokens: 2 }), { id: 'eval', services: { seed: 1 } });
    const result = await evalAccuracy.run({ ...recorded.ctx, outDir: dir }, { model, tokenizer, template, prompts: heldOut, rewards: [format, correctness], policy });
    expect(subscribed).toBe(true); // before any policy version arrived
    policy.next({ version: 1, weights: {} });
    policy.complete();
    await result.done;
    const summary = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(summary.eval.before).toBeUndefined();
    expect(summary.eval.after).toMatchObject({ step: 1, n: 4, accuracy: 0.5 });
  });

  it('without a trainer, evaluates once (before) and finishes', async () => {
    const dir = mkdtempSync(path.join(out, 'once-'));
    const { run } = start({ after: false, max_new_tokens: 2, limit: 2 }, undefined, dir);
    await lastValueFrom(from((await run()).done as Promise<void>), { defaultValue: undefined });
    const summary = JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8'));
    expect(summary.eval.before).toMatchObject({ n: 2, accuracy: 0.5 });
    expect(summary.eval.after).toBeUndefined();
  });

  it('reports its progress for the terminal UI: samples done of all, from 0 to the end', async () => {
    const dir = mkdtempSync(path.join(out, 'progress-'));
    const { run, events } = start({ after: false, n: 2, max_new_tokens: 2 }, undefined, dir);
    await (await run()).done;
    const progress = events.filter((e) => e.data?.evalProgress).map((e) => e.data!.evalProgress as { label: string; done: number; total: number });
    expect(progress[0]).toEqual({ label: 'before', done: 0, total: 8 }); // 4 prompts × 2 samples
    expect(progress.at(-1)).toEqual({ label: 'before', done: 8, total: 8 });
    expect(progress.map((p) => p.done)).toEqual([...progress.map((p) => p.done)].sort((a, b) => a - b));
    const result = events.findIndex((e) => e.data?.eval);
    const lastProgress = events.map((e) => Boolean(e.data?.evalProgress)).lastIndexOf(true);
    expect(lastProgress).toBeLessThan(result); // progress ends before the result
  });
});

