import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lastValueFrom, of, ReplaySubject, toArray, type Observable } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachLora } from '../engines/tfjs/lora.js';
import { type CausalLM } from '../engines/tfjs/model.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { tf } from '../engines/tfjs/tf.js';
import { computeAdvantages, unbiasedStd } from '../core/grpo/advantages.js';
import type { MetricRecord, PolicySnapshot, ScoredBatch, TrainingBatch } from '../core/ports.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { trainGrpo } from './train-grpo.js';

const out = mkdtempSync(path.join(os.tmpdir(), 'train-grpo-'));
let model: CausalLM;
beforeAll(async () => {
  await tf.setBackend('cpu');
  model = await loadModel('test/fixtures/llama-tiny');
  attachLora(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false, seed: 1 });
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** One prompt, two completions with different rewards (non-zero advantages). */
function batch(index: number, completions = 2): TrainingBatch {
  const totals = [Array.from({ length: completions }, (_, c) => c)];
  return {
    index,
    policyVersion: index,
    groups: [
      {
        prompt: { id: `p${index}`, messages: [{ role: 'user', content: 'q' }], fields: {} },
        promptText: 'q',
        promptIds: [1000, 5 + index, 6, 7],
        completions: totals[0].map((_, c) => ({ text: 't', ids: [10 + c, 20, 30 + index], logprobs: [-1, -1, -1], finishReason: 'eos' as const })),
      },
    ],
    rewards: [{ name: 'r', weight: 1, values: totals }],
    totals,
    advantages: [totals[0].map((r) => r - (completions - 1) / 2)],
  };
}

function start(config: Record<string, unknown>, batches: Observable<TrainingBatch>, dir: string) {
  const recorded = recordingContext(trainGrpo.config.parse(config), { id: 'train', services: { seed: 3 } });
  const ctx = { ...recorded.ctx, outDir: dir };
  const result = trainGrpo.run(ctx, { model, batches }) as Awaited<ReturnType<typeof trainGrpo.run>>;
  // Subscribe as the runtime does: every output, then `done`.
  const policies = lastValueFrom(result.policy!.pipe(toArray()));
  const metricStream = lastValueFrom((result.metrics as Observable<MetricRecord>).pipe(toArray()));
  const trained = lastValueFrom(result.trained!.pipe(toArray()));
  const done = lastValueFrom(result.done as Observable<unknown>, { defaultValue: undefined });
  return { ...recorded, policies, metricStream, trained, done };
}

describe('train.grpo', () => {
  it('checks the batch arithmetic when the graph is validated', () => {
    expect(() => trainGrpo.config.parse({ max_steps: 1, num_generations: 6, per_device_train_batch_size: 4, batch_mismatch: 'fail' })).toThrow(
      /set per_device_train_batch_size to 6/,
    );
    expect(trainGrpo.config.parse({ max_steps: 1, num_generations: 8, per_device_train_batch_size: 1, gradient_accumulation_steps: 4 })).toMatchObject({
      batch_mismatch: 'unsloth',
      loss_type: 'dapo',
    });
    expect(() => trainGrpo.config.parse({ max_steps: 1, loss_type: 'ppo' })).toThrow();
  });

  it('trains max_steps steps, publishes TRL metrics, announces each version, checkpoints and ends', async () => {
    const dir = path.join(out, 'run');
    const run = start(
      { max_steps: 2, num_generations: 2, per_device_train_batch_size: 2, learning_rate: 0.01, beta: 0.1, save_steps: 1, output_dir: 'ckpt' },
      of(batch(0), batch(1), batch(2)),
      dir,
    );
    await run.done;
    const policies = (await run.policies) as PolicySnapshot[];
    expect(policies.map((p) => p.version)).toEqual([0, 1, 2]);
    expect(Object.keys(policies[1].weights)).toHaveLength(2 * 2 * 2); // the adapter weights travel with every version
    const metrics = await run.metricStream;
    expect(metrics.map((m) => m.step)).toEqual([1, 2]);
    expect(run.metrics.map((m) => m.step)).toEqual([1, 2]); // the same on the metrics bus
    for (const name of ['loss', 'kl', 'entropy', 'grad_norm', 'learning_rate', 'reward', 'reward_std', 'rewards/r/mean', 'num_tokens', 'policy/staleness', 'step_time']) {
      expect(Number.isFinite(metrics[1].values[name]), name).toBe(true);
    }
    expect(metrics[1].values.grad_norm).toBeGreaterThan(0);
    expect(metrics[1].values['policy/staleness']).toBe(0);
    expect(await run.trained).toEqual([model]);
    for (const step of [1, 2]) expect(existsSync(path.join(dir, `ckpt/checkpoint-${step}/adapter_model.safetensors`))).toBe(true);
    const state = JSON.parse(readFileSync(path.join(dir, 'ckpt/checkpoint-2/trainer_state.json'), 'utf8'));
    expect(state).toMatchObject({ step: 2, datasetPosition: { prompts: 2, batches: 2 } });
    expect(state.rngStates.dropout).toHaveLength(4);
    expect(JSON.parse(readFileSync(path.join(dir, 'summary.json'), 'utf8')).steps).toBe(2);
    expect(run.events.some((e) => e.level === 'warn')).toBe(false);
    await run.runTeardown();
  });

  it('each policy message carries the adapter weights of its version', async () => {
    const run = start({ max_steps: 1, num_generations: 2, per_device_train_batch_size: 2, learning_rate: 0.01, save_steps: 0 }, of(batch(0)), path.join(out, 'copy'));
    await run.done;
    const [initial, after] = (await run.policies) as PolicySnapshot[];
    expect(Object.keys(after.weights)).toHaveLength(2 * 2 * 2); // 2 layers × (q, v) × (A, B)
    const name = Object.keys(after.weights).find((n) => n.endsWith('q_proj.lora_B.weight'))!;
    expect(after.weights[name].data).not.toEqual(initial.weights[name].data);
    await run.runTeardown();
  });

  it('logs the reward metrics advantage.group computed, whatever its scale_rewards (batch, none, group)', async () => {
    // Two prompts whose reward spreads differ, so the batch std and the mean group std differ.
    const two = (index: number): ScoredBatch => {
      const one = batch(index);
      const other = { ...one.groups[0], prompt: { ...one.groups[0].prompt, id: `q${index}` } };
      const totals = [[0, 1], [0, 5]];
      return { ...one, groups: [one.groups[0], other], totals, rewards: [{ name: 'r', weight: 1, values: totals }] };
    };
    const logged: Record<string, number>[] = [];
    for (const scale of ['batch', 'none', 'group'] as const) {
      const { batch: scaled, metrics: published } = computeAdvantages(two(0), scale);
      const run = start({ max_steps: 1, num_generations: 2, per_device_train_batch_size: 4, save_steps: 0 }, of(scaled), path.join(out, `scale-${scale}`));
      await run.done;
      const values = run.metrics[0].values;
      for (const name of Object.keys(published)) expect(values[name], `${scale} ${name}`).toBe(published[name]);
      logged.push(values);
      await run.runTeardown();
    }
    // TRL 1.10 logs reward_std over the whole batch whatever the scaling; the mean group std is reward_group_std.
    for (const values of logged) {
      expect(values.reward_std).toBeCloseTo(unbiasedStd([0, 1, 0, 5]), 12);
      expect(values.reward_group_std).toBeCloseTo((unbiasedStd([0, 1]) + unbiasedStd([0, 5])) / 2, 12);
    }
    expect(logged[0].reward_std).not.toBeCloseTo(logged[0].reward_group_std, 3);
  });

  it('filter_groups: drops equal-reward groups, draws on, announces the extra draw and counts it in the checkpoint position', async () => {
    const flat = (index: number): TrainingBatch => {
      const b = batch(index);
      const totals = [[1, 1]];
      return { ...b, policyVersion: 0, rewards: [{ name: 'r', weight: 1, values: totals }], totals, advantages: [[0, 0]] };
    };
    const dir = path.join(out, 'filter');
    const run = start(
      { max_steps: 2, num_generations: 2, per_device_train_batch_size: 2, save_steps: 1, output_dir: 'ckpt', filter_groups: true },
      of({ ...batch(0), policyVersion: 0 }, flat(1), { ...batch(2), policyVersion: 1 }),
      dir,
    );
    await run.done;
    const policies = (await run.policies) as PolicySnapshot[];
    // Start, step 1, then step 1 again with one extra draw (batch 1 was dropped), then step 2.
    expect(policies.map((p) => [p.version, p.extraBatches])).toEqual([[0, 0], [1, 0], [1, 1], [2, 1]]);
    const metrics = (await run.metricStream).map((m) => m.values);
    expect(metrics.map((m) => m['filter_groups/num_gen_batches'])).toEqual([1, 2]);
    expect(metrics[1]['filter_groups/dropped_groups']).toBe(1);
    expect(metrics[1].reward).toBe((0 + 1 + 1 + 1) / 4); // over both groups drawn for step 2
    const state = (step: number) => JSON.parse(readFileSync(path.join(dir, `ckpt/checkpoint-${step}/trainer_state.json`), 'utf8'));
    expect(state(1).datasetPosition).toEqual({ prompts: 1, batches: 1 });
    expect(state(2).datasetPosition).toEqual({ prompts: 3, batches: 3 }); // the dropped batch is consumed too
    await run.runTeardown();
  });

  it('warns once when completions are longer than max_completion_length', async () => {
    const run = start({ max_steps: 2, num_generations: 2, per_device_train_batch_size: 2, max_completion_length: 2, save_steps: 0 }, of(batch(0), batch(1)), path.join(out, 'long'));
    await run.done;
    const warnings = run.events.filter((e) => e.level === 'warn').map((e) => e.message);
    expect(warnings).toEqual(["train.grpo train: rollout batch 0 has a 3-token completion, longer than max_completion_length 2: set it to the generator's max_new_tokens"]);
    await run.runTeardown();
  });

  it('says what to change when a batch does not match num_generations or the plan', async () => {
    const wrongG = start({ max_steps: 1, num_generations: 4, per_device_train_batch_size: 4 }, of(batch(0, 2)), path.join(out, 'g'));
    await expect(wrongG.done).rejects.toThrow(/group 0 \("p0"\) has 2 completions but num_generations is 4/);
    await wrongG.runTeardown();
    const wrongPlan = start({ max_steps: 1, num_generations: 2, per_device_train_batch_size: 2, gradient_accumulation_steps: 2 }, of(batch(0)), path.join(out, 'p'));
    await expect(wrongPlan.done).rejects.toThrow(/set the generator's prompts_per_batch to 2/);
    await wrongPlan.runTeardown();
  });

  it('writes a checkpoint when interrupted (teardown before the end)', async () => {
    const dir = path.join(out, 'interrupted');
    const batches = new ReplaySubject<TrainingBatch>();
    const run = start({ max_steps: 5, num_generations: 2, per_device_train_batch_size: 2, save_steps: 0, output_dir: 'ckpt' }, batches, dir);
    batches.next(batch(0));
    // The first step is published; no second batch comes, as if the generator were still sampling.
    for (let i = 0; i < 300 && run.metrics.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(run.metrics.map((m) => m.step)).toEqual([1]);
    expect(existsSync(path.join(dir, 'ckpt'))).toBe(false);
    run.abort.abort();
    await run.runTeardown();
    expect(existsSync(path.join(dir, 'ckpt/checkpoint-1/optimizer.bin'))).toBe(true);
  });
});
