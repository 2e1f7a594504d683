// The num_iterations optimiser steps a policy trainer takes on one generation batch (TRL's μ): old
// log-probs from before the first, the batch's reward metrics beside each step's. Plain code over the
// PolicyTrainer interface, so every trainer engine iterates the same way.
import { batchRewardMetrics } from '../grpo/advantages.js';
import type { TrainStepConfig } from '../grpo/loss-spec.js';
import type { TrainingBatch } from '../ports.js';
import type { PolicyTrainer } from './interfaces.js';
import { rowCount } from './rows.js';
import { trainingRowsOf } from './training-rows.js';

export interface IterationSpec extends TrainStepConfig {
  /** Optimiser steps per generation batch (TRL num_iterations, μ); old log-probs come from before the first. */
  numIterations?: number;
}

/** Yields each optimiser step's metrics, one per `next()` (so a caller can publish between steps or stop early). */
export async function* stepsOnBatch(
  trainer: Pick<PolicyTrainer, 'step' | 'score'>,
  batch: TrainingBatch,
  spec: IterationSpec,
): AsyncGenerator<Record<string, number>, void, void> {
  const iterations = spec.numIterations ?? 1;
  if (!(Number.isInteger(iterations) && iterations >= 1)) throw new Error(`numIterations must be a positive integer (got ${iterations})`);
  const rows = trainingRowsOf(batch, { requireBehaviour: spec.importanceSamplingCorrection, reference: (spec.beta ?? 0) !== 0 });
  if (rowCount(rows) === 0) throw new Error(`training batch ${batch.index} has no completions`);
  const rewards = batchRewardMetrics(batch);
  const oldLogprobs =
    iterations > 1
      ? await trainer.score(rows, { adapters: 'on', temperature: spec.temperature ?? 1, microBatchSize: spec.microBatchSize, padTokenId: spec.padTokenId })
      : undefined;
  const stepRows = { ...rows, oldLogprobs };
  for (let i = 0; i < iterations; i++) yield { ...(await trainer.step(stepRows, spec)), ...rewards };
}
