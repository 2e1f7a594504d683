// One GRPO optimiser step over a training batch: micro-batched forward/backward with gradient
// accumulation over the policy's trainable (LoRA) variables only, global-norm clipping, AdamW.
import { tf } from '../llm/tf.js';
import type { TrainingBatch } from '../ports.js';
import { batchRewardMetrics, mean } from './advantages.js';
import { grpoLoss, resolveLossConfig, type GrpoLossConfig } from './loss.js';
import { readFloat32 } from '../llm/read-back.js';
import { AdamW, clipGradNorm, type AdamWState } from './optimizer.js';
import { flattenBatch, packRows, packSharedPrompts, padRows, type PackedRows, type SharedPromptRows, type TrainingRow } from './pack.js';

/** What the train step needs from a model (core/llm/model.ts's CausalLM provides it). */
export interface PolicyModel {
  hidden(
    ids: tf.Tensor2D,
    attentionMask?: tf.Tensor2D,
    positions?: tf.Tensor2D,
    options?: { training?: boolean; checkpointLayers?: boolean },
  ): tf.Tensor3D;
  tokenLogprobs(
    hidden: tf.Tensor3D,
    targets: tf.Tensor2D,
    options?: { chunkSize?: number; withEntropy?: boolean; temperature?: number },
  ): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D };
  trainableVariables(): tf.Variable[];
  withAdaptersDisabled<T>(fn: () => T): T;
  /** Computes each prompt once for its G completions (see CausalLM); undefined where the model cannot. */
  sharedPrefixHidden?(
    prompts: tf.Tensor2D,
    promptMask: tf.Tensor2D,
    ids: tf.Tensor2D,
    mask: tf.Tensor2D,
    group: number[],
    options?: { training?: boolean },
  ): tf.Tensor3D | undefined;
}

export interface TrainStepConfig extends Omit<GrpoLossConfig, 'numItemsInBatch' | 'gradientAccumulationSteps'> {
  /** A fixed LR, or a schedule of the number of completed optimiser steps (see schedule.ts). */
  learningRate: number | ((step: number) => number);
  /** Global-norm clip (HF's default 1.0); 0 disables clipping (grad_norm is still reported). */
  maxGradNorm?: number;
  /** Completions per forward/backward pass (per_device_train_batch_size); the batch is split into
   *  ceil(B / microBatchSize) micro-batches whose gradients accumulate into one step. Default: all at once. */
  microBatchSize?: number;
  /** Drop truncated completions (finish reason 'length') from the loss entirely. */
  maskTruncatedCompletions?: boolean;
  /** Weight each token by min(exp(old − behaviour), cap) using the sampler's log-probs (Completion.logprobs). */
  importanceSamplingCorrection?: boolean;
  padTokenId?: number;
  /** Sampling temperature: log-probs are of logits / temperature, as TRL computes them. */
  temperature?: number;
  logprobChunkSize?: number;
  gradientCheckpointing?: boolean;
  /** Compute each prompt once for all its completions instead of once per row (default true; off with
   *  gradient checkpointing, and where the model cannot). The log-probs are the same either way. */
  sharePromptPass?: boolean;
}

/** Per-row log-probs from a no-grad pass, reusable across the num_iterations passes over one batch. */
export type RowLogprobs = Float32Array[];

export interface TrainStepOptions {
  /** Old-policy log-probs (first pass over this generation batch). Omitted: the current log-probs, detached. */
  oldLogprobs?: RowLogprobs;
}

export interface TrainStepResult {
  /** TRL-named metrics of this step. `num_tokens` here counts this batch only (GrpoTrainer makes it cumulative). */
  metrics: Record<string, number>;
}

function splitRows(rows: TrainingRow[], size: number): TrainingRow[][] {
  const parts: TrainingRow[][] = [];
  for (let i = 0; i < rows.length; i += size) parts.push(rows.slice(i, i + size));
  return parts;
}

/** One micro-batch packed for its passes (the reference pass and the policy pass share it): the padded
 *  [prompt | completion] rows, and the rows regrouped by prompt when the model can compute each prompt once. */
interface PackedPart {
  packed: PackedRows;
  shared?: SharedPromptRows;
  dispose(): void;
}

function packPart(model: PolicyModel, part: TrainingRow[], config: TrainStepConfig): PackedPart {
  const packed = packRows(part, packOptions(config));
  const shared =
    model.sharedPrefixHidden && config.sharePromptPass !== false && packed.completionLength > 1
      ? packSharedPrompts(part, packed.completionLength, config.padTokenId ?? 0)
      : undefined;
  return { packed, shared, dispose: () => (packed.dispose(), shared?.dispose()) };
}

/** The hidden states that predict each completion token, [b, C, H]: from a pass that computes each
 *  prompt once (when the model offers one), else from the packed [prompt | completion] rows. */
function predictingHidden(model: PolicyModel, { packed, shared }: PackedPart, config: TrainStepConfig, training: boolean): tf.Tensor3D {
  const checkpointLayers = training && (config.gradientCheckpointing ?? false);
  if (shared && !checkpointLayers) {
    const hidden = model.sharedPrefixHidden!(shared.prompts, shared.promptMask, shared.ids, shared.mask, shared.group, { training });
    if (hidden) return hidden;
  }
  const hidden = model.hidden(packed.ids, packed.attentionMask, packed.positions, { training, checkpointLayers });
  const [b, , h] = hidden.shape;
  return tf.slice(hidden, [0, packed.promptLength - 1, 0], [b, packed.completionLength, h]) as tf.Tensor3D;
}

function completionLogprobs(
  model: PolicyModel,
  part: PackedPart,
  config: TrainStepConfig,
  training: boolean,
  withEntropy: boolean,
): { logprobs: tf.Tensor2D; entropy?: tf.Tensor2D } {
  const predicting = predictingHidden(model, part, config, training);
  return model.tokenLogprobs(predicting, part.packed.targets, {
    chunkSize: config.logprobChunkSize,
    withEntropy,
    temperature: config.temperature ?? 1,
  });
}

function packOptions(config: TrainStepConfig) {
  return { padTokenId: config.padTokenId ?? 0, maskTruncatedCompletions: config.maskTruncatedCompletions ?? false };
}

/**
 * Log-probs of every completion under the current policy, without gradients (old log-probs for
 * num_iterations > 1). The micro-batches are all computed first and read back together, once; every
 * device operation is queued before the first await, so a caller may wrap the call in
 * `withAdaptersDisabled` (which restores the adapters when the synchronous part returns).
 */
export async function computeRowLogprobs(model: PolicyModel, batch: TrainingBatch, config: TrainStepConfig): Promise<RowLogprobs> {
  const rows = flattenBatch(batch);
  const parts = splitRows(rows, config.microBatchSize ?? rows.length);
  const perPart: tf.Tensor2D[] = [];
  try {
    for (const part of parts) {
      const packedPart = packPart(model, part, config);
      try {
        perPart.push(tf.tidy(() => completionLogprobs(model, packedPart, config, false, false).logprobs));
      } finally {
        packedPart.dispose();
      }
    }
    const values = await readFloat32(perPart, 'computeRowLogprobs');
    return parts.flatMap((part, p) => {
      const width = perPart[p].shape[1];
      return part.map((row, i) => values[p].slice(i * width, i * width + row.completionIds.length));
    });
  } finally {
    tf.dispose(perPart);
  }
}

/**
 * Runs one optimiser step on `batch` and returns its metrics. The whole step is queued on the device
 * before its one read-back (loss, loss metrics and grad norm together), so it never blocks on a
 * synchronous read (which WebGPU in Node does not have).
 */
export async function grpoTrainStep(
  model: PolicyModel,
  batch: TrainingBatch,
  optimizer: AdamW,
  config: TrainStepConfig,
  options: TrainStepOptions = {},
): Promise<TrainStepResult> {
  const started = performance.now();
  const lossConfig = resolveLossConfig({ ...config, gradientAccumulationSteps: 1 });
  const rows = flattenBatch(batch);
  if (rows.length === 0) throw new Error(`training batch ${batch.index} has no completions`);
  const microBatchSize = config.microBatchSize ?? rows.length;
  if (!(Number.isInteger(microBatchSize) && microBatchSize >= 1)) throw new Error(`microBatchSize must be a positive integer (got ${microBatchSize})`);
  if (options.oldLogprobs && options.oldLogprobs.length !== rows.length) {
    throw new Error(`oldLogprobs has ${options.oldLogprobs.length} rows, the batch has ${rows.length} completions`);
  }
  if (config.importanceSamplingCorrection) {
    rows.forEach((row, i) => {
      if (row.behaviourLogprobs.length !== row.completionIds.length) {
        throw new Error(
          `importance-sampling correction needs the sampler's log-probs: group ${row.group}, completion ${row.completion} (row ${i}) has ` +
            `${row.behaviourLogprobs.length} log-probs for ${row.completionIds.length} tokens`,
        );
      }
    });
  }
  const variables = model.trainableVariables();
  if (variables.length === 0) throw new Error('grpoTrainStep: the model has no trainable variables (attach a LoRA adapter first)');

  // The reference log-probs come with the batch when the rollout computed them; otherwise a pass here.
  const givenReference = lossConfig.beta !== 0 && rows.every((row) => row.refLogprobs !== undefined);
  if (givenReference) {
    rows.forEach((row, i) => {
      if (row.refLogprobs!.length !== row.completionIds.length) {
        throw new Error(`group ${row.group}, completion ${row.completion} (row ${i}) has ${row.refLogprobs!.length} reference log-probs for ${row.completionIds.length} tokens`);
      }
    });
  }
  const rowIndex = new Map(rows.map((row, i) => [row, i]));
  const parts = splitRows(rows, microBatchSize);
  const accumulationSteps = parts.length;
  const counts = (row: TrainingRow) => (config.maskTruncatedCompletions && row.finishReason === 'length' ? 0 : row.completionIds.length);
  const numItemsInBatch = rows.reduce((sum, row) => sum + counts(row), 0);

  const accumulated: (tf.Tensor | undefined)[] = variables.map(() => undefined);
  const lossValues: tf.Scalar[] = [];
  let gradNorm: tf.Scalar | undefined;
  const metricTensors: Record<string, tf.Scalar[]> = {};
  const keepMetric = (name: string, value: tf.Scalar) => (metricTensors[name] ??= []).push(tf.keep(value));

  try {
    for (const part of parts) {
      // Each micro-batch computes synchronously; between them, let the rest of this thread run (a worker
      // generator's next request is posted from here: blocked, generation and training would take turns).
      await new Promise<void>((resolve) => setImmediate(resolve));
      const packedPart = packPart(model, part, config);
      const { packed } = packedPart;
      const [b, C] = packed.targets.shape;
      const rowTensor = (perRow: (row: TrainingRow) => ArrayLike<number>) => tf.tensor2d(padRows(part.map(perRow), C), [b, C]);
      const old = options.oldLogprobs ? rowTensor((row) => options.oldLogprobs![rowIndex.get(row)!]) : undefined;
      const behaviour = config.importanceSamplingCorrection ? rowTensor((row) => row.behaviourLogprobs) : undefined;
      const ref =
        lossConfig.beta === 0
          ? undefined
          : givenReference
            ? rowTensor((row) => row.refLogprobs!)
            : tf.tidy(() => model.withAdaptersDisabled(() => completionLogprobs(model, packedPart, config, false, false).logprobs));
      try {
        const { value, grads } = tf.variableGrads(() => {
          const { logprobs, entropy } = completionLogprobs(model, packedPart, config, true, true);
          const { loss, metrics } = grpoLoss(
            { logprobs, oldLogprobs: old, refLogprobs: ref, behaviourLogprobs: behaviour, mask: packed.completionMask, advantages: packed.advantages },
            { ...lossConfig, gradientAccumulationSteps: accumulationSteps, numItemsInBatch },
          );
          for (const [name, metric] of Object.entries(metrics)) keepMetric(name, metric);
          if (entropy) {
            keepMetric('entropy', tf.div(tf.sum(tf.mul(entropy, packed.completionMask)), tf.maximum(tf.sum(packed.completionMask), 1)) as tf.Scalar);
          }
          return loss;
        }, variables);
        lossValues.push(value);
        variables.forEach((variable, i) => {
          const grad = grads[variable.name];
          if (!grad) return;
          const previous = accumulated[i];
          accumulated[i] = previous ? tf.add(previous, grad) : grad;
          if (previous) {
            previous.dispose();
            grad.dispose();
          }
        });
      } finally {
        tf.dispose([old, behaviour, ref].filter((t): t is tf.Tensor2D => t !== undefined));
        packedPart.dispose();
      }
    }

    const present = accumulated.filter((g): g is tf.Tensor => g !== undefined);
    const { norm, grads: clipped } = clipGradNorm(present, config.maxGradNorm ?? 1.0);
    gradNorm = norm;
    const learningRate = typeof config.learningRate === 'function' ? config.learningRate(optimizer.stepCount) : config.learningRate;
    let next = 0;
    optimizer.step(accumulated.map((g) => (g === undefined ? undefined : clipped[next++])), learningRate);
    if (clipped !== present) tf.dispose(clipped);

    // One read-back for every scalar.
    const names = Object.keys(metricTensors);
    // (tf.sum of a stack, not addN: see clipGradNorm.)
    const stacked = tf.tidy(() => tf.stack([tf.sum(tf.stack(lossValues)), norm, ...names.map((n) => tf.mean(tf.stack(metricTensors[n])))]));
    const [scalars] = await readFloat32([stacked], 'grpoTrainStep metrics').finally(() => stacked.dispose());
    const metrics: Record<string, number> = { loss: scalars[0] };
    names.forEach((name, i) => (metrics[name] = scalars[i + 2]));

    const lengths = rows.map((r) => r.completionIds.length);
    const terminated = rows.filter((r) => r.finishReason !== 'length').map((r) => r.completionIds.length);
    Object.assign(metrics, batchRewardMetrics(batch), {
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': rows.filter((r) => r.finishReason === 'length').length / rows.length,
      // TRL reports 0 for these when every completion was truncated.
      'completions/mean_terminated_length': terminated.length ? mean(terminated) : 0,
      'completions/min_terminated_length': terminated.length ? Math.min(...terminated) : 0,
      'completions/max_terminated_length': terminated.length ? Math.max(...terminated) : 0,
      num_tokens: rows.reduce((sum, r) => sum + r.promptIds.length + r.completionIds.length, 0),
      learning_rate: learningRate,
      grad_norm: scalars[1],
    });
    if (lossConfig.beta === 0) delete metrics.kl; // TRL logs kl only when a reference is in use
    metrics.step_time = (performance.now() - started) / 1000;
    return { metrics };
  } finally {
    tf.dispose(accumulated.filter((g): g is tf.Tensor => g !== undefined));
    tf.dispose(lossValues);
    tf.dispose(Object.values(metricTensors).flat());
    gradNorm?.dispose();
  }
}

export interface GrpoTrainerConfig extends TrainStepConfig {
  /** Optimiser steps per generation batch (TRL num_iterations, μ); old log-probs come from before the first. */
  numIterations?: number;
  betas?: [number, number];
  adamEps?: number;
  weightDecay?: number;
}

/** Owns the optimiser and the running counters; trains μ steps per generation batch. */
export class GrpoTrainer {
  readonly optimizer: AdamW;
  /** Prompt + completion tokens seen so far (TRL's cumulative `num_tokens`). */
  numTokensSeen = 0;

  constructor(
    readonly model: PolicyModel,
    readonly config: GrpoTrainerConfig,
  ) {
    this.optimizer = new AdamW(model.trainableVariables(), { betas: config.betas, eps: config.adamEps, weightDecay: config.weightDecay });
  }

  /** Completed optimiser steps. */
  get step(): number {
    return this.optimizer.stepCount;
  }

  /** Trains on one generation batch: numIterations optimiser steps; resolves to each step's metrics. */
  async trainOnBatch(batch: TrainingBatch): Promise<Record<string, number>[]> {
    const metrics: Record<string, number>[] = [];
    for await (const step of this.stepsOnBatch(batch)) metrics.push(step);
    return metrics;
  }

  /**
   * The numIterations optimiser steps on one generation batch, one per `next()` (so a caller can run
   * each under a lock, publish between steps, or stop early); yields each step's metrics. `overrides`
   * adjust the step config for this batch.
   */
  async *stepsOnBatch(batch: TrainingBatch, overrides: Partial<TrainStepConfig> = {}): AsyncGenerator<Record<string, number>, void, void> {
    const config = { ...this.config, ...overrides };
    const iterations = config.numIterations ?? 1;
    if (!(Number.isInteger(iterations) && iterations >= 1)) throw new Error(`numIterations must be a positive integer (got ${iterations})`);
    const oldLogprobs = iterations > 1 ? await computeRowLogprobs(this.model, batch, config) : undefined;
    for (let i = 0; i < iterations; i++) {
      const { metrics } = await grpoTrainStep(this.model, batch, this.optimizer, config, { oldLogprobs });
      // Counted once per generation batch, however many times it is reused (TRL counts at generation).
      if (i === 0) this.numTokensSeen += metrics.num_tokens;
      yield { ...metrics, num_tokens: this.numTokensSeen };
    }
  }

  /** What a checkpoint must hold to resume this trainer (the adapter weights are saved separately). */
  async exportState(): Promise<GrpoTrainerState> {
    const numTokensSeen = this.numTokensSeen;
    return { optimizer: await this.optimizer.exportState(), numTokensSeen };
  }

  importState(state: GrpoTrainerState): void {
    this.optimizer.importState(state.optimizer);
    this.numTokensSeen = state.numTokensSeen;
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

export interface GrpoTrainerState {
  optimizer: AdamWState;
  numTokensSeen: number;
}
