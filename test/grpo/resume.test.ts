// Resume equality: with a fixed seed, the steps after resuming from a checkpoint give the same
// metrics as an uninterrupted run (adapter, optimiser moments, step, RNG and dataset position restored).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tf } from '../../engines/tfjs/tf.js';
import { Rng } from '../../core/rng.js';
import { computeAdvantages } from '../../core/grpo/advantages.js';
import { scoreBatch } from '../../core/grpo/rewards/score.js';
import { learningRateSchedule } from '../../core/grpo/schedule.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, writeFileAtomic } from '../../core/grpo/checkpoint.js';
import { GrpoTrainer, type GrpoTrainerConfig } from '../../engines/tfjs/grpo/train-step.js';
import type { RewardFunction, TrainingBatch } from '../../core/ports.js';
import { FakePolicy, sampleBigram } from './fake-policy.js';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'grpo-resume-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const TOTAL_STEPS = 6;
const config: GrpoTrainerConfig = {
  learningRate: learningRateSchedule({ type: 'cosine', learningRate: 0.05, totalSteps: TOTAL_STEPS, warmupRatio: 0.2 }),
  beta: 0.05,
  weightDecay: 0.01,
  microBatchSize: 8,
};
const reward: RewardFunction = {
  name: 'ones',
  weight: 1,
  onError: 'fail',
  score: ({ completions }) => completions.map((text) => text.split(' ').filter((t) => t === '1').length),
};
// A "dataset" of prompts walked in order; the position is part of the checkpoint.
const dataset = Array.from({ length: 40 }, (_, i) => [i % 8, (i * 3) % 8]);

async function nextBatch(model: FakePolicy, rng: Rng, position: number): Promise<TrainingBatch> {
  const table = model.bigramLogprobs();
  const groups = [0, 1].map((k) => {
    const promptIds = dataset[position + k];
    return {
      prompt: { id: `row${position + k}`, messages: [], fields: {} },
      promptText: '',
      promptIds,
      completions: Array.from({ length: 4 }, () => {
        const { ids, logprobs } = sampleBigram(table, promptIds, 5, rng);
        return { text: ids.join(' '), ids, logprobs, finishReason: 'eos' as const };
      }),
    };
  });
  const scored = await scoreBatch({ index: position, policyVersion: 0, groups }, [reward]);
  return computeAdvantages(scored, 'group').batch;
}

async function run(steps: number, from?: string): Promise<{ metrics: Record<string, number>[]; model: FakePolicy; trainer: GrpoTrainer; rng: Rng; position: number }> {
  const model = new FakePolicy(8, 4, 21);
  const trainer = new GrpoTrainer(model, config);
  let rng = new Rng(99);
  let position = 0;
  if (from) {
    const checkpoint = await loadCheckpoint(from);
    const weights = JSON.parse(await readFile(join(checkpoint.dir, 'adapter.json'), 'utf8')) as number[][];
    model.trainableVariables().forEach((v, i) => v.assign(tf.tensor(weights[i], v.shape)));
    trainer.importState({ optimizer: checkpoint.optimizer!, numTokensSeen: checkpoint.extra!.numTokensSeen as number });
    rng = new Rng(checkpoint.rngStates!.sampler);
    position = checkpoint.datasetPosition as number;
    expect(trainer.step).toBe(checkpoint.step);
  }
  const metrics: Record<string, number>[] = [];
  while (trainer.step < steps) {
    const batch = await nextBatch(model, rng, position);
    position += 2;
    metrics.push(...(await trainer.trainOnBatch(batch)));
  }
  return { metrics, model, trainer, rng, position };
}

describe('resume from a checkpoint', () => {
  it('continues with exactly the metrics of an uninterrupted run', async () => {
    const whole = await run(TOTAL_STEPS);

    const first = await run(3);
    await saveCheckpoint(
      root,
      {
        step: first.trainer.step,
        optimizer: await first.trainer.optimizer.exportState(),
        rngStates: { sampler: first.rng.state() },
        datasetPosition: first.position,
        extra: { numTokensSeen: first.trainer.numTokensSeen },
      },
      {
        writeAdapter: (dir) =>
          writeFileAtomic(join(dir, 'adapter.json'), JSON.stringify(first.model.trainableVariables().map((v) => Array.from(v.dataSync())))),
      },
    );
    const resumed = await run(TOTAL_STEPS, (await latestCheckpoint(root))!);

    const strip = ({ step_time: _t, ...rest }: Record<string, number>) => rest;
    expect(first.metrics.map(strip)).toEqual(whole.metrics.slice(0, 3).map(strip));
    expect(resumed.metrics.map(strip)).toEqual(whole.metrics.slice(3).map(strip));
    expect(resumed.metrics[0].learning_rate).toBe(whole.metrics[3].learning_rate);
    expect(Array.from(resumed.model.deltaOutput.dataSync())).toEqual(Array.from(whole.model.deltaOutput.dataSync()));
    for (const r of [whole, first, resumed]) {
      r.trainer.dispose();
      r.model.dispose();
    }
  });
});
