// One GRPO optimiser step over a training batch: micro-batched forward/backward with gradient
// accumulation over the policy's trainable (LoRA) variables only, global-norm clipping, AdamW.
import { tf } from '../tf.js';
import type { TrainingBatch } from '../../../core/ports.js';
import { batchRewardMetrics, mean } from '../../../core/grpo/advantages.js';
import type { ScoreOptions, StepRows } from '../../../core/engine/interfaces.js';
import { stepsOnBatch } from '../../../core/engine/policy-steps.js';
import { grpoLoss } from './loss.js';
import { resolveLossConfig, type TrainStepConfig } from '../../../core/grpo/loss-spec.js';
import type { PolicyTrainerConfig } from '../../../core/engine/model-engine.js';

export type { TrainStepConfig } from '../../../core/grpo/loss-spec.js';
import { readFloat32 } from '../read-back.js';
import { AdamW, clipGradNorm, type AdamWState } from './optimizer.js';
import { packRows, packSharedPrompts, padRows, rowViews, type PackedRows, type SharedPromptRows, type TrainingRow } from './pack.js';
import { rowCount, tokenValuesOf, type Rows, type TokenLogprobs, type TrainingRows } from '../../../core/engine/rows.js';
import { trainingRowsOf } from '../../../core/engine/training-rows.js';

/** What the train step needs from a model (engines/tfjs/model.ts's CausalLM provides it). */
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

/** Per-row log-probs from a no-grad pass, reusable across the num_iterations passes over one batch. */
export type RowLogprobs = Float32Array[];

export interface TrainStepOptions {
  /** Old-policy log-probs (first pass over this generation batch), per row or aligned with the rows'
   *  completionIds. Omitted: the current log-probs, detached. */
  oldLogprobs?: RowLogprobs | TokenLogprobs;
}

/** Old log-probs aligned with the rows' completionIds. */
function oldAligned(old: RowLogprobs | TokenLogprobs, rows: Rows): TokenLogprobs {
  if (old instanceof Float32Array) {
    if (old.length !== rows.completionIds.length) throw new Error(`oldLogprobs has ${old.length} values, the rows have ${rows.completionIds.length} completion tokens`);
    return old;
  }
  if (old.length !== rowCount(rows)) throw new Error(`oldLogprobs has ${old.length} rows, the batch has ${rowCount(rows)} completions`);
  const out = new Float32Array(rows.completionIds.length);
  old.forEach((row, i) => out.set(row.subarray(0, rows.completionOffsets[i + 1] - rows.completionOffsets[i]), rows.completionOffsets[i]));
  return out;
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
 * Log-probs of every row's completion under the current policy, without gradients (old log-probs for
 * num_iterations > 1, the reference pass with adapters off), aligned with rows.completionIds. The
 * micro-batches are all computed first and read back together, once; every device operation is queued
 * before the first await, so a caller may wrap the call in `withAdaptersDisabled` (which restores the
 * adapters when the synchronous part returns).
 */
export async function scoreRows(model: PolicyModel, rows: Rows, config: TrainStepConfig): Promise<TokenLogprobs> {
  const views = rowViews(rows);
  const parts = splitRows(views, config.microBatchSize ?? views.length);
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
    const values = await readFloat32(perPart, 'scoreRows');
    const out = new Float32Array(rows.completionIds.length);
    parts.forEach((part, p) => {
      const width = perPart[p].shape[1];
      part.forEach((row, i) => out.set(values[p].subarray(i * width, i * width + row.completionIds.length), rows.completionOffsets[row.index]));
    });
    return out;
  } finally {
    tf.dispose(perPart);
  }
}

/** scoreRows with the adapters on or off (the KL reference pass), at the options' temperature. */
export function scoreRowsWith(model: PolicyModel, rows: Rows, options: ScoreOptions, base: TrainStepConfig = { learningRate: 0 }): Promise<TokenLogprobs> {
  const config: TrainStepConfig = {
    ...base,
    temperature: options.temperature,
    microBatchSize: options.microBatchSize ?? base.microBatchSize,
    padTokenId: options.padTokenId ?? base.padTokenId,
  };
  // Every device operation is queued before scoreRows first awaits, so the adapters are back on before
  // anything else can run on this model.
  return options.adapters === 'off' ? model.withAdaptersDisabled(() => scoreRows(model, rows, config)) : scoreRows(model, rows, config);
}

/** scoreRows of a training batch's rows, one array per row (views). */
export async function computeRowLogprobs(model: PolicyModel, batch: TrainingBatch, config: TrainStepConfig): Promise<RowLogprobs> {
  const rows = trainingRowsOf(batch);
  const values = await scoreRows(model, rows, config);
  return Array.from({ length: rowCount(rows) }, (_, i) => tokenValuesOf(rows, values, i));
}

/**
 * Runs one optimiser step on `batch` and returns its metrics, the batch's reward metrics included. The
 * whole step is queued on the device before its one read-back (loss, loss metrics and grad norm together),
 * so it never blocks on a synchronous read (which WebGPU in Node does not have).
 */
export async function grpoTrainStep(
  model: PolicyModel,
  batch: TrainingBatch,
  optimizer: AdamW,
  config: TrainStepConfig,
  options: TrainStepOptions = {},
): Promise<TrainStepResult> {
  const rows = trainingRowsOf(batch, { requireBehaviour: config.importanceSamplingCorrection, reference: (config.beta ?? 0) !== 0 });
  if (rowCount(rows) === 0) throw new Error(`training batch ${batch.index} has no completions`);
  const { metrics } = await trainStepOnRows(model, rows, optimizer, config, options);
  return { metrics: { ...metrics, ...batchRewardMetrics(batch) } };
}

/** One optimiser step on training rows (the policy trainer's step): the metrics of the step, no reward metrics. */
export async function trainStepOnRows(
  model: PolicyModel,
  trainingRows: TrainingRows,
  optimizer: AdamW,
  config: TrainStepConfig,
  options: TrainStepOptions = {},
): Promise<TrainStepResult> {
  const started = performance.now();
  const lossConfig = resolveLossConfig({ ...config, gradientAccumulationSteps: 1 });
  const rows = rowViews(trainingRows);
  if (rows.length === 0) throw new Error('trainStepOnRows: no rows');
  const microBatchSize = config.microBatchSize ?? rows.length;
  if (!(Number.isInteger(microBatchSize) && microBatchSize >= 1)) throw new Error(`microBatchSize must be a positive integer (got ${microBatchSize})`);
  const oldLogprobs = options.oldLogprobs && oldAligned(options.oldLogprobs, trainingRows);
  if (config.importanceSamplingCorrection && !trainingRows.behaviourLogprobs) {
    throw new Error("importance-sampling correction needs the sampler's log-probs (the rows carry none)");
  }
  const variables = model.trainableVariables();
  if (variables.length === 0) throw new Error('grpoTrainStep: the model has no trainable variables (attach a LoRA adapter first)');

  // The reference log-probs come with the rows when the rollout computed them; otherwise a pass here.
  const givenReference = lossConfig.beta !== 0 && trainingRows.refLogprobs !== undefined;
  const correction = config.importanceSamplingCorrection ?? false;
  const useBehaviour = correction || (lossConfig.offPolicyMaskThreshold !== undefined && trainingRows.behaviourLogprobs !== undefined);
  const parts = splitRows(rows, microBatchSize);
  const accumulationSteps = parts.length;
  const counts = (row: TrainingRow) => (config.maskTruncatedCompletions && row.truncated ? 0 : row.completionIds.length);
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
      const old = oldLogprobs ? rowTensor((row) => tokenValuesOf(trainingRows, oldLogprobs, row.index)) : undefined;
      // The sampler's log-probs: the correction's denominator, and the off-policy mask's reference when the rows have them.
      const behaviour = useBehaviour ? rowTensor((row) => row.behaviourLogprobs!) : undefined;
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
            { logprobs, oldLogprobs: old, refLogprobs: ref, behaviourLogprobs: behaviour, entropy, mask: packed.completionMask, advantages: packed.advantages },
            { ...lossConfig, importanceSamplingCorrection: correction, gradientAccumulationSteps: accumulationSteps, numItemsInBatch },
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
    // Micro-batches combine by the metric's kind: a max (`…/max`, `…_max`) is the max of theirs, a min the
    // min, the rest the mean. (tf.sum of a stack, not addN: see clipGradNorm.)
    const combine = (name: string, values: tf.Tensor) => (/[/_]max$/.test(name) ? tf.max(values) : /[/_]min$/.test(name) ? tf.min(values) : tf.mean(values));
    const stacked = tf.tidy(() => tf.stack([tf.sum(tf.stack(lossValues)), norm, ...names.map((n) => combine(n, tf.stack(metricTensors[n])))]));
    const [scalars] = await readFloat32([stacked], 'grpoTrainStep metrics').finally(() => stacked.dispose());
    const metrics: Record<string, number> = { loss: scalars[0] };
    names.forEach((name, i) => (metrics[name] = scalars[i + 2]));

    const lengths = rows.map((r) => r.completionIds.length);
    const terminated = rows.filter((r) => !r.truncated).map((r) => r.completionIds.length);
    Object.assign(metrics, {
      'completions/mean_length': mean(lengths),
      'completions/min_length': Math.min(...lengths),
      'completions/max_length': Math.max(...lengths),
      'completions/clipped_ratio': rows.filter((r) => r.truncated).length / rows.length,
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

/** The trainer's settings, as core/engine/model-engine.ts defines them for every engine. */
export type GrpoTrainerConfig = PolicyTrainerConfig;

/** Owns the optimiser and the running counters; trains μ steps per generation batch. */
export class GrpoTrainer {
  readonly optimizer: AdamW;
  /** Prompt + completion tokens seen so far (TRL's cumulative `num_tokens`). */
  numTokensSeen = 0;
  /** Rows already counted in numTokensSeen (TRL counts a generation batch once, however often it is reused),
   *  by their token array (a StepRows spread from TrainingRows keeps it). */
  private readonly counted = new WeakSet<object>();

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

  /** One optimiser step on `rows` (with their old log-probs, if any); `num_tokens` is cumulative. */
  async trainStep(rows: StepRows, spec: TrainStepConfig = this.config): Promise<Record<string, number>> {
    const { metrics } = await trainStepOnRows(this.model, rows, this.optimizer, spec, { oldLogprobs: rows.oldLogprobs });
    if (!this.counted.has(rows.completionIds)) {
      this.counted.add(rows.completionIds);
      this.numTokensSeen += metrics.num_tokens;
    }
    return { ...metrics, num_tokens: this.numTokensSeen };
  }

  /** Per-token log-probs under the current policy, or the base model with `adapters: 'off'`. */
  score(rows: Rows, options: ScoreOptions): Promise<TokenLogprobs> {
    return scoreRowsWith(this.model, rows, options, this.config);
  }

  /** Trains on one generation batch: numIterations optimiser steps; resolves to each step's metrics. */
  async trainOnBatch(batch: TrainingBatch): Promise<Record<string, number>[]> {
    const metrics: Record<string, number>[] = [];
    for await (const step of this.stepsOnBatch(batch)) metrics.push(step);
    return metrics;
  }

  /**
   * The numIterations optimiser steps on one generation batch, one per `next()`; yields each step's
   * metrics. `overrides` adjust the step config for this batch.
   */
  stepsOnBatch(batch: TrainingBatch, overrides: Partial<TrainStepConfig> = {}): AsyncGenerator<Record<string, number>, void, void> {
    return stepsOnBatch({ step: (rows, spec) => this.trainStep(rows, spec), score: (rows, options) => this.score(rows, options) }, batch, { ...this.config, ...overrides });
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
