// train.grpo: the GRPO trainer. Consumes training batches (G scored completions per prompt with
// advantages), runs TRL's GRPO optimiser steps on the model's LoRA weights (the trainer owns them: they leave as
// versioned values on `policy`), publishes TRL-named metrics, feeds the policy version back to the generator, writes atomic
// checkpoints every `save_steps`, at the end and on Ctrl-C, and resumes from one (`--resume`). When
// training ends it emits the trained model on `trained`, which export nodes wait for.
import { isAbsolute, join } from 'node:path';
import { concat, concatMap, defer, EMPTY, from, ignoreElements, Subject, takeWhile } from 'rxjs';
import { z } from 'zod';
import { planBatches, type BatchPlan } from '../core/grpo/batch-plan.js';
import { saveCheckpoint, type AdamWState } from '../core/grpo/checkpoint.js';
import { GroupFilter } from '../core/grpo/dynamic-sampling.js';
import {
  IMPORTANCE_SAMPLING_LEVELS,
  IMPORTANCE_SAMPLING_MODES,
  LOSS_TYPES,
  type ImportanceSamplingLevel,
  type ImportanceSamplingMode,
  type LossType,
} from '../core/grpo/loss-spec.js';
import { resumeCheckpoint, resumePosition, type TrainingPosition } from '../core/grpo/resume.js';
import { learningRateSchedule, SCHEDULE_TYPES, type ScheduleType } from '../core/grpo/schedule.js';
import { stepsOnBatch } from '../core/engine/policy-steps.js';
import { peftBaseModelName, writePeftAdapter } from '../core/llm/peft-adapter.js';
import { modelEngineOf, type ModelHandle } from '../core/engine/model-engine.js';
import { readSafetensors } from '../core/llm/safetensors.js';
import { defineNode } from '../core/plugin.js';
import { ports, type MetricRecord, type PolicySnapshot, type TrainingBatch } from '../core/ports.js';
import { Rng } from '../core/rng.js';
import { mergeSummary } from '../core/report/summary.js';
import { fileError } from '../core/runtime/file-error.js';
import { mapAsync } from '../core/runtime/operators/map-async.js';
import { BusyMeter } from '../core/scheduler/busy-meter.js';

const positiveInt = () => z.number().int().positive();

export const trainGrpoConfig = z
  .strictObject({
    learning_rate: z.number().min(0).default(1e-6).describe('Peak learning rate (TRL GRPOConfig default 1e-6).'),
    weight_decay: z.number().min(0).default(0).describe('AdamW decoupled weight decay.'),
    adam_beta1: z.number().min(0).lt(1).default(0.9),
    adam_beta2: z.number().min(0).lt(1).default(0.999),
    adam_epsilon: z.number().positive().default(1e-8),
    lr_scheduler_type: z.enum(SCHEDULE_TYPES as [string, ...string[]]).default('linear').describe('constant | linear | cosine, after warmup (as Hugging Face).'),
    warmup_ratio: z.number().min(0).max(1).default(0).describe('Fraction of max_steps spent warming the learning rate up from 0.'),
    max_grad_norm: z.number().min(0).default(1).describe('Global gradient-norm clip; 0 disables clipping.'),
    per_device_train_batch_size: positiveInt().default(8).describe('Completions per forward/backward pass (micro-batch).'),
    gradient_accumulation_steps: positiveInt().default(1).describe('Micro-batches accumulated into one optimiser step.'),
    batch_mismatch: z
      .enum(['unsloth', 'round-up', 'fail'])
      .default('unsloth')
      .describe(
        "When per_device_train_batch_size × gradient_accumulation_steps does not hold whole groups of num_generations: 'unsloth' sets " +
          "per_device_train_batch_size to num_generations (Unsloth's rule), 'round-up' raises it to the next size that fits, 'fail' refuses.",
      ),
    num_generations: positiveInt().default(8).describe("G, completions per prompt: must equal the generator's num_generations."),
    allow_single_generation: z
      .boolean()
      .default(false)
      .describe('Allow num_generations 1 (every group-relative advantage is then 0 and the loss is 0: only for tests of the plumbing).'),
    max_steps: positiveInt().describe('Optimiser steps to train; the trainer then ends its outputs.'),
    beta: z.number().min(0).default(0).describe('KL coefficient against the base model (adapters disabled); 0 skips the reference pass.'),
    epsilon: z.number().min(0).default(0.2).describe('Lower clip range of the probability ratio.'),
    epsilon_high: z.number().min(0).optional().describe('Upper clip range (DAPO clip-higher); default epsilon.'),
    loss_type: z
      .enum(LOSS_TYPES as [string, ...string[]])
      .default('dapo')
      .describe("grpo | bnpo | dr_grpo | dapo | cispo | sapo, TRL's losses and normalisations (TRL's default dapo; docs/grpo-loss.md)."),
    importance_sampling_level: z
      .enum(IMPORTANCE_SAMPLING_LEVELS as [string, ...string[]])
      .default('token')
      .describe("The policy ratio per token, or one per completion from its mean log-ratio ('sequence': GSPO, with loss_type grpo)."),
    delta: z.number().positive().optional().describe('Two-sided clipping (INTELLECT-2): the unclipped ratio is capped at delta too; > 1 + epsilon. Off when absent.'),
    sapo_temperature_pos: z.number().positive().default(1).describe("sapo's gate temperature for positive advantages."),
    sapo_temperature_neg: z.number().positive().default(1.05).describe("sapo's gate temperature for the other advantages."),
    top_entropy_quantile: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe('Train on the top ρ of tokens by entropy only (Beyond the 80/20 Rule recommends 0.2); 1 keeps all.'),
    off_policy_mask_threshold: z
      .number()
      .positive()
      .optional()
      .describe("Leave out completions with negative advantage whose mean (sampler − current) log-prob exceeds this (DeepSeek-V3.2's δ, e.g. 0.5). Off when absent."),
    num_iterations: positiveInt().default(1).describe('Optimiser steps per generation batch (μ); old log-probs come from before the first.'),
    mask_truncated_completions: z.boolean().default(false).describe('Leave completions cut at max length out of the loss.'),
    importance_sampling_correction: z
      .boolean()
      .default(true)
      .describe("Correct for the sampler/trainer mismatch (a stale policy, another engine, truncated sampling) with the behaviour log-probs, as importance_sampling_mode says (TRL's default on)."),
    importance_sampling_mode: z
      .enum(IMPORTANCE_SAMPLING_MODES as [string, ...string[]])
      .default('sequence_mask')
      .describe('token_truncate | token_mask | sequence_truncate | sequence_mask: the ratio π_train/π_sampler per token or per completion, clipped to or zeroed outside [clip_min, clip_max].'),
    importance_sampling_clip_max: z.number().positive().nullable().default(3).describe("The correction's upper bound C_max; null: none."),
    importance_sampling_clip_min: z.number().min(0).optional().describe("The correction's lower bound C_min; none when absent."),
    temperature: z.number().positive().default(1).describe("The generator's sampling temperature: log-probs are of logits / temperature, as TRL."),
    max_completion_length: positiveInt().default(256).describe("The generator's max_new_tokens; dr_grpo's constant normaliser."),
    filter_groups: z
      .boolean()
      .default(false)
      .describe(
        "DAPO's dynamic sampling (verl filter_groups): drop groups whose rewards are all equal (zero advantage) and draw more generation batches until a step's batch is full; surplus groups are dropped.",
      ),
    max_num_gen_batches: z
      .number()
      .int()
      .min(0)
      .default(10)
      .describe('With filter_groups: most generation batches drawn for one step (0: no limit); a batch still short then is filled with dropped groups, with a warning.'),
    gradient_checkpointing: z.boolean().default(false).describe('Recompute each decoder layer in the backward pass (less memory, more time).'),
    save_steps: z.number().int().min(0).default(500).describe('Write a checkpoint every N optimiser steps (0: only at the end and on Ctrl-C).'),
    save_total_limit: positiveInt().optional().describe('Keep only the newest N checkpoints.'),
    output_dir: z.string().min(1).default('trainer_output').describe("Checkpoint folder, relative to the run's --out folder unless absolute."),
    seed: z.number().int().optional().describe("Seeds the LoRA-dropout draws; default the graph's seed."),
    logging_steps: positiveInt().default(1).describe('Publish metrics every N optimiser steps (and at the last).'),
  })
  .superRefine((c, issues) => {
    if (c.num_generations < 2 && !c.allow_single_generation) {
      issues.addIssue({
        code: 'custom',
        path: ['num_generations'],
        message: 'num_generations 1 makes every group-relative advantage 0, so GRPO learns nothing: use 2 or more (or set allow_single_generation: true)',
      });
    }
    const problem = batchPlanProblem(c);
    if (problem) issues.addIssue({ code: 'custom', path: ['per_device_train_batch_size'], message: problem });
    if (c.importance_sampling_clip_min !== undefined && c.importance_sampling_clip_max !== null && c.importance_sampling_clip_min >= c.importance_sampling_clip_max) {
      issues.addIssue({ code: 'custom', path: ['importance_sampling_clip_min'], message: `must be less than importance_sampling_clip_max (${c.importance_sampling_clip_max})` });
    }
    if (c.importance_sampling_clip_min === undefined && c.importance_sampling_clip_max === null && c.importance_sampling_mode.endsWith('_truncate')) {
      issues.addIssue({ code: 'custom', path: ['importance_sampling_clip_max'], message: `${c.importance_sampling_mode} needs importance_sampling_clip_max or importance_sampling_clip_min` });
    }
    if (c.loss_type === 'dr_grpo' && !(c.max_completion_length > 0)) {
      issues.addIssue({ code: 'custom', path: ['max_completion_length'], message: 'dr_grpo needs max_completion_length' });
    }
  });

export type TrainGrpoConfig = z.output<typeof trainGrpoConfig>;

function batchPlanFor(c: Pick<TrainGrpoConfig, 'num_generations' | 'per_device_train_batch_size' | 'gradient_accumulation_steps' | 'batch_mismatch'>): BatchPlan {
  return planBatches({
    numGenerations: c.num_generations,
    perDeviceBatchSize: c.per_device_train_batch_size,
    gradientAccumulationSteps: c.gradient_accumulation_steps,
    onMismatch: c.batch_mismatch as 'unsloth' | 'round-up' | 'fail',
  });
}

/** The batch-plan error (shown when the graph is validated), or undefined when the batch fits. */
function batchPlanProblem(c: Parameters<typeof batchPlanFor>[0]): string | undefined {
  try {
    batchPlanFor(c);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/** Checks a batch against the plan; the message says which setting to change. */
export function checkBatch(batch: TrainingBatch, plan: BatchPlan, where: string): void {
  const G = plan.numGenerations;
  batch.groups.forEach((group, g) => {
    if (group.completions.length !== G) {
      throw new Error(
        `${where}: rollout batch ${batch.index}, group ${g} ("${group.prompt.id}") has ${group.completions.length} completions but num_generations is ${G}: ` +
          `give the generator and the trainer the same num_generations`,
      );
    }
  });
  if (batch.groups.length !== plan.promptsPerStep) {
    throw new Error(
      `${where}: rollout batch ${batch.index} holds ${batch.groups.length} prompts × ${G} = ${batch.groups.length * G} completions, but one optimiser step ` +
        `takes per_device_train_batch_size × gradient_accumulation_steps = ${plan.perDeviceBatchSize} × ${plan.gradientAccumulationSteps} = ` +
        `${plan.generationBatchSize} = ${plan.promptsPerStep} prompts × ${G}: set the generator's prompts_per_batch to ${plan.promptsPerStep}`,
    );
  }
}

export const trainGrpo = defineNode({
  type: 'train.grpo',
  version: 1,
  description:
    "GRPO on the model's LoRA weights (TRL's GRPOTrainer): clipped surrogate, optional KL, loss types, AdamW with schedules, gradient accumulation; checkpoints and resume.",
  inputs: {
    model: { type: ports.model, description: 'The policy, with a LoRA adapter attached (lora.apply).' },
    batches: { type: ports.batches, description: 'Scored generation batches with advantages (advantage.group).' },
  },
  outputs: {
    policy: { type: ports.policy, description: 'The policy version after every optimiser step (feed it back to rollout.generate.policy).' },
    metrics: { type: ports.metrics, description: 'The metrics of each logged step, as a stream (they also go to the metrics bus).' },
    trained: { type: ports.model, description: 'The trained model, emitted once when training has ended and the last checkpoint is written.' },
  },
  config: trainGrpoConfig,
  run(ctx, inputs) {
    const c = ctx.config;
    const model: ModelHandle = inputs.model;
    const where = `train.grpo ${ctx.id}`;
    if (!model.lora) throw new Error(`${where}: the model has no LoRA adapter; connect its model input through lora.apply`);
    const lora = model.lora.config;
    const plan = batchPlanFor(c);
    for (const message of plan.messages) ctx.metrics.event('warn', message);
    if (c.importance_sampling_level === 'sequence' && c.loss_type !== 'grpo' && c.loss_type !== 'sapo') {
      // TRL warns the same (GRPOTrainer.__init__): these losses sum per-token terms, weighting each sequence by its length.
      ctx.metrics.event('warn', `${where}: importance_sampling_level sequence with loss_type ${c.loss_type} weights each completion by its length; GSPO as published is loss_type grpo`);
    }
    const outputDir = isAbsolute(c.output_dir) ? c.output_dir : join(ctx.outDir, c.output_dir);
    const seed = c.seed ?? (typeof ctx.services.seed === 'number' ? ctx.services.seed : undefined);

    const spec = {
      learningRate: learningRateSchedule({
        type: c.lr_scheduler_type as ScheduleType,
        learningRate: c.learning_rate,
        totalSteps: c.max_steps,
        warmupRatio: c.warmup_ratio,
      }),
      betas: [c.adam_beta1, c.adam_beta2] as [number, number],
      adamEps: c.adam_epsilon,
      weightDecay: c.weight_decay,
      maxGradNorm: c.max_grad_norm,
      microBatchSize: plan.perDeviceBatchSize,
      numIterations: c.num_iterations,
      beta: c.beta,
      epsilon: c.epsilon,
      epsilonHigh: c.epsilon_high,
      lossType: c.loss_type as LossType,
      importanceSamplingLevel: c.importance_sampling_level as ImportanceSamplingLevel,
      delta: c.delta,
      sapoTemperaturePos: c.sapo_temperature_pos,
      sapoTemperatureNeg: c.sapo_temperature_neg,
      topEntropyQuantile: c.top_entropy_quantile,
      offPolicyMaskThreshold: c.off_policy_mask_threshold,
      maxCompletionLength: c.max_completion_length,
      maskTruncatedCompletions: c.mask_truncated_completions,
      importanceSamplingCorrection: c.importance_sampling_correction,
      importanceSamplingMode: c.importance_sampling_mode as ImportanceSamplingMode,
      importanceSamplingClipMax: c.importance_sampling_clip_max,
      importanceSamplingClipMin: c.importance_sampling_clip_min,
      temperature: c.temperature,
      gradientCheckpointing: c.gradient_checkpointing,
    };
    // The trainer owns the model's adapter weights from here on: they leave only as versioned values on
    // the policy output (a rollout engine or evaluation holds its own copy), so nothing needs a lock.
    const trainer = modelEngineOf(ctx.services, model, where).policyTrainer(model, spec, { dropoutSeed: seed !== undefined ? new Rng(seed).state() : undefined, warn: (message) => ctx.metrics.event('warn', message) });

    const policy$ = new Subject<PolicySnapshot>();
    const metrics$ = new Subject<MetricRecord>();
    const trained$ = new Subject<ModelHandle>();
    let position: TrainingPosition = { prompts: 0, batches: 0 };
    let lastSaved = -1;
    let finished = false;
    let lastStepEnd: number | undefined;

    // stepsPerBatch lets the generator count its staleness bound in optimiser steps (core/scheduler).
    // Afterwards one macrotask passes before the caller goes on, so a generator that was waiting for this
    // version has handed its work on (to a worker thread) before the next step occupies this thread.
    // Dynamic sampling: the trainer draws generation batches until a step's batch is full, and says how many
    // it drew beyond one per step on the policy stream (the generator's staleness bound counts steps).
    const groupFilter = c.filter_groups ? new GroupFilter({ promptsPerStep: plan.promptsPerStep, maxGenBatches: c.max_num_gen_batches }) : undefined;
    let lastPolicy: PolicySnapshot | undefined;
    const emitPolicy = async () => {
      lastPolicy = { ...(await trainer.weights()), stepsPerBatch: c.num_iterations, ...(groupFilter ? { extraBatches: groupFilter.extraBatches } : {}) };
      policy$.next(lastPolicy);
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    /** Utilisation over the whole run (`busy` is per step), next to the generator's scheduler/generator_busy. */
    const trainerBusy = new BusyMeter();
    let warnedStale = false;

    const writeCheckpoint = async () => {
      const step = trainer.version;
      const state = await trainer.save();
      const dir = await saveCheckpoint(
        outputDir,
        {
          step,
          optimizer: state.optimizer as AdamWState,
          rngStates: state.rngStates,
          datasetPosition: { ...position },
          extra: { numTokensSeen: state.numTokensSeen, maxSteps: c.max_steps, node: ctx.id, fingerprint: ctx.services.fingerprint },
        },
        { writeAdapter: async (temp) => writePeftAdapter(temp, state.weights.weights, lora, peftBaseModelName(model.dir)), totalLimit: c.save_total_limit },
      ).catch((error) => {
        throw fileError(error, outputDir, `${where} output_dir`);
      });
      lastSaved = step;
      ctx.metrics.event('info', `checkpoint ${dir} (step ${step})`, { checkpoint: dir, step });
      return dir;
    };

    const restore = () => {
      const checkpoint = resumeCheckpoint(ctx.services);
      if (!checkpoint) return;
      const weightsPath = join(checkpoint.dir, 'adapter_model.safetensors');
      if (!checkpoint.optimizer) throw new Error(`${where}: checkpoint ${checkpoint.dir} has no optimiser state`);
      const tokens = checkpoint.extra?.numTokensSeen;
      trainer.restore(
        {
          weights: { version: checkpoint.step, weights: Object.fromEntries(readSafetensors(weightsPath)) },
          optimizer: checkpoint.optimizer,
          rngStates: checkpoint.rngStates ?? {},
          numTokensSeen: typeof tokens === 'number' ? tokens : 0,
        },
        weightsPath,
      );
      position = resumePosition(ctx.services)!;
      lastSaved = trainer.version;
      ctx.metrics.event('info', `resumed from ${checkpoint.dir} at step ${trainer.version} (${position.prompts} prompts, ${position.batches} batches trained on)`);
    };

    // dr_grpo normalises by max_completion_length; a generator allowed longer completions is a wiring slip.
    let warnedLength = false;
    const warnIfLonger = (batch: TrainingBatch) => {
      if (warnedLength) return;
      const longest = Math.max(...batch.groups.flatMap((g) => g.completions.map((c) => c.ids.length)));
      if (longest <= c.max_completion_length) return;
      warnedLength = true;
      ctx.metrics.event(
        'warn',
        `${where}: rollout batch ${batch.index} has a ${longest}-token completion, longer than max_completion_length ${c.max_completion_length}: ` +
          `set it to the generator's max_new_tokens`,
      );
    };

    /** Takes one generation batch (with filter_groups, possibly only into the next step's batch); resolves true once max_steps is reached. */
    const takeBatch = async (incoming: TrainingBatch): Promise<boolean> => {
      checkBatch(incoming, plan, where);
      warnIfLonger(incoming);
      if (!groupFilter) return trainBatch(incoming, { batches: 1, prompts: incoming.groups.length });
      const filled = groupFilter.add(incoming);
      if (!filled) {
        // Not full yet: the same policy, one more batch drawn for this step (the generator may sample it now).
        policy$.next({ ...lastPolicy!, extraBatches: groupFilter.extraBatches });
        return false;
      }
      const padded = filled.batch.rewardMetrics!['filter_groups/padded_groups'];
      if (padded > 0) {
        ctx.metrics.event(
          'warn',
          `${where}: filter_groups drew max_num_gen_batches ${c.max_num_gen_batches} batches and still had ${padded} group(s) too few with unequal rewards: ` +
            `filled with zero-advantage groups (the prompts may be too easy or too hard for the policy)`,
        );
      }
      return trainBatch(filled.batch, { batches: filled.drawnBatches, prompts: filled.drawnPrompts });
    };

    /** Trains on one training batch that consumed `drawn` generation batches and prompts; resolves true once max_steps is reached. */
    const trainBatch = async (batch: TrainingBatch, drawn: TrainingPosition): Promise<boolean> => {
      const staleness = trainer.version - batch.policyVersion;
      if (staleness > 0 && !c.importance_sampling_correction && !warnedStale) {
        warnedStale = true;
        ctx.metrics.event('warn', `batch ${batch.index} was sampled ${staleness} step(s) behind (overlap); set importance_sampling_correction: true to reweight stale batches`);
      }
      const steps = stepsOnBatch(trainer, batch, spec);
      let iterations = 0;
      try {
        while (trainer.version < c.max_steps) {
          const more = await (async () => {
            if (ctx.signal.aborted) return false;
            const started = performance.now();
            const next = await steps.next();
            if (next.done) return false;
            iterations++;
            const step = trainer.version;
            if (iterations === c.num_iterations || step >= c.max_steps) position = { prompts: position.prompts + drawn.prompts, batches: position.batches + drawn.batches };
            const now = performance.now();
            const wall = lastStepEnd === undefined ? now - started : now - lastStepEnd;
            lastStepEnd = now;
            trainerBusy.add(now - started);
            const values = {
              ...next.value,
              'policy/staleness': staleness,
              busy: wall > 0 ? Math.min(1, (now - started) / wall) : 1,
              'scheduler/trainer_busy': trainerBusy.fraction(),
            };
            await emitPolicy();
            // The checkpoint before the step's record: a step on record is a step a SIGKILL cannot lose
            // once its checkpoint is due (at most save_steps - 1 recorded steps are ever redone).
            if (c.save_steps > 0 && step % c.save_steps === 0) await writeCheckpoint();
            if (step % c.logging_steps === 0 || step === c.max_steps) {
              ctx.metrics.publish(step, values);
              metrics$.next({ step, node: ctx.id, values });
            }
            return iterations < c.num_iterations;
          })();
          if (!more) break;
        }
      } finally {
        await steps.return();
      }
      return trainer.version >= c.max_steps;
    };

    const finish = async () => {
      if (trainer.version < c.max_steps) {
        ctx.metrics.event('warn', `the training batches ended after ${trainer.version} of max_steps ${c.max_steps} steps`);
      }
      if (trainer.version > lastSaved) await writeCheckpoint();
      finished = true;
      await mergeSummary(ctx.outDir, { steps: trainer.version });
      ctx.metrics.event('info', `training done after ${trainer.version} steps`, { step: trainer.version });
      trained$.next(model);
      for (const subject of [trained$, policy$, metrics$] as Subject<unknown>[]) subject.complete();
    };

    ctx.onTeardown(async () => {
      // Interrupted (Ctrl-C, or another node failed): keep what was learnt since the last checkpoint.
      if (!finished && trainer.version > lastSaved && trainer.version > 0) {
        await writeCheckpoint();
      }
      trainer.dispose();
    });

    const training$ = defer(async () => {
      restore();
      await emitPolicy();
    }).pipe(
      concatMap(() => {
        if (trainer.version >= c.max_steps) return EMPTY;
        return inputs.batches.pipe(
          mapAsync((batch) => from(takeBatch(batch))),
          takeWhile((reachedEnd) => !reachedEnd),
        );
      }),
      ignoreElements(),
    );
    const done = concat(training$, defer(() => from(finish())));
    return { policy: policy$, metrics: metrics$, trained: trained$, done };
  },
});
