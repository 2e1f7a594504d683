// train.sft: supervised fine-tuning (the SFT warm-up of hybrid training) — cross-entropy on the gold
// completion tokens only, all base weights trained by default (a model trained from scratch), AdamW with a
// warmup + decay schedule and global-norm clipping. A greedy accuracy probe on held-out problems runs every
// `eval_every` steps (per difficulty level), training stops early once `stop_accuracy` is reached, and the
// result is saved in the Hugging Face layout.
import { resolve } from 'node:path';
import { bufferCount, defaultIfEmpty, lastValueFrom, take, takeWhile, toArray, type Observable } from 'rxjs';
import { z } from 'zod';
import type { ChatTemplate } from '../core/llm/chat-template.js';
import { modelEngineOf, type ModelHandle, type ProbeResult, type SftStepResult } from '../core/engine/model-engine.js';
import type { Tokenizer } from '../core/llm/tokenizer.js';
import { learningRateSchedule, SCHEDULE_TYPES } from '../core/grpo/schedule.js';
import { mapAsync } from '../core/runtime/operators/map-async.js';
import { encodeSftExample } from '../core/sft/examples.js';
import { defineNode, type NodeContext } from '../core/plugin.js';
import { ports, type PromptRecord } from '../core/ports.js';

export const trainSftConfig = z.strictObject({
  completion_field: z.string().default('completion').describe('Field of each prompt record holding its gold completion.'),
  answer_field: z.string().default('answer').describe('Field holding the reference answer, for the accuracy probe.'),
  batch_size: z.number().int().positive().default(32).describe('Examples per optimiser step.'),
  learning_rate: z.number().positive().default(2e-3).describe('Peak learning rate.'),
  schedule: z.enum(SCHEDULE_TYPES as [string, ...string[]]).default('cosine').describe('Learning-rate decay after warmup: constant, linear or cosine (over max_steps).'),
  warmup_steps: z.number().int().min(0).default(20).describe('Linear warmup steps.'),
  weight_decay: z.number().min(0).default(0.1).describe('AdamW decoupled weight decay.'),
  max_grad_norm: z.number().positive().default(1.0).describe('Clip the global gradient norm to this.'),
  max_steps: z.number().int().positive().default(400).describe('Optimiser steps (the schedule spans them); fewer if the prompts run out or stop_accuracy is reached.'),
  max_length: z.number().int().positive().default(256).describe('Longest prompt + completion in tokens; a longer example is an error.'),
  prompt_loss_weight: z.number().min(0).max(1).default(0).describe('Weight of next-token loss on prompt tokens (0: completion tokens only, the usual SFT); >0 helps a from-scratch model learn to attend.'),
  full_training: z.boolean().default(true).describe('Train every base weight (from-scratch models); false trains only the attached LoRA matrices.'),
  eval_every: z.number().int().min(0).default(50).describe('Run the greedy accuracy probe on the held-out input every N steps (0: only at the end).'),
  eval_size: z.number().int().positive().optional().describe('Use at most this many held-out problems in the probe (default all).'),
  eval_max_new_tokens: z.number().int().positive().default(96).describe('Longest probe completion.'),
  stop_accuracy: z
    .record(z.string(), z.number().min(0).max(1))
    .optional()
    .describe('Stop early once the probe reaches these accuracies, by level ("1": 0.6) or "all" for the overall accuracy; keeps an easy model from being over-trained.'),
  save_to: z.string().optional().describe('Save the trained model here (Hugging Face layout, relative to the graph file).'),
  save_dtype: z.enum(['bfloat16', 'float16', 'float32']).default('bfloat16').describe('Storage dtype of the saved weights.'),
});

type TrainSftConfig = z.output<typeof trainSftConfig>;

export const trainSft = defineNode({
  type: 'train.sft',
  version: 1,
  description: 'Supervised fine-tuning on gold completions (loss on completion tokens only), with a held-out accuracy probe and HF-layout save.',
  inputs: {
    model: { type: ports.model, description: 'The model to train (its weights change in place).' },
    tokenizer: { type: ports.tokenizer },
    template: { type: ports.chatTemplate, description: 'Renders each record\'s messages into the prompt.' },
    prompts: { type: ports.prompts, description: 'Training records with the gold completion in fields[completion_field].' },
    test: { type: ports.prompts, optional: true, description: 'Held-out records for the accuracy probe (fields[answer_field], fields.level).' },
  },
  outputs: {},
  config: trainSftConfig,
  run(ctx, inputs) {
    return { done: trainLoop(ctx, inputs.model, inputs.tokenizer, inputs.template, inputs.prompts, inputs.test) };
  },
});

async function trainLoop(
  ctx: NodeContext<TrainSftConfig>,
  model: ModelHandle,
  tokenizer: Tokenizer,
  template: ChatTemplate,
  prompts: Observable<PromptRecord>,
  test$: Observable<PromptRecord> | undefined,
): Promise<void> {
  const c = ctx.config;
  const padId = tokenizer.padTokenId ?? tokenizer.eosTokenId;
  if (padId === undefined) throw new Error(`train.sft ${ctx.id}: the tokenizer has neither a pad nor an eos token to pad batches with`);
  const heldOut = test$ ? (await lastValueFrom(test$.pipe(toArray(), defaultIfEmpty([])))).slice(0, c.eval_size) : [];
  if (c.stop_accuracy && heldOut.length === 0) throw new Error(`train.sft ${ctx.id}: stop_accuracy needs held-out records on the "test" input`);

  const engine = modelEngineOf(ctx.services, model, `train.sft ${ctx.id}`);
  const trainer = engine.sftTrainer(model, {
    fullTraining: c.full_training,
    learningRate: learningRateSchedule({ type: c.schedule as 'cosine', learningRate: c.learning_rate, totalSteps: c.max_steps, warmupSteps: c.warmup_steps }),
    weightDecay: c.weight_decay,
    maxGradNorm: c.max_grad_norm,
  });
  ctx.onTeardown(() => trainer.dispose());
  const started = performance.now();
  let stopped = false;

  const probe = async (step: number): Promise<ProbeResult | undefined> => {
    if (heldOut.length === 0) return undefined;
    const result = await trainer.probe(tokenizer, template, heldOut, { maxNewTokens: c.eval_max_new_tokens, answerField: c.answer_field, signal: ctx.signal });
    const values: Record<string, number> = { 'sft/accuracy': result.accuracy, 'sft/format_rate': result.formatRate };
    for (const [level, r] of Object.entries(result.byLevel)) if (level !== 'all') values[`sft/accuracy/level${level}`] = r.accuracy;
    ctx.metrics.publish(step, values);
    const perLevel = Object.entries(result.byLevel).map(([l, r]) => `L${l} ${(100 * r.accuracy).toFixed(0)}%`).join(' ');
    ctx.metrics.event('info', `sft probe @${step}: accuracy ${(100 * result.accuracy).toFixed(1)}% (${perLevel}), format ${(100 * result.formatRate).toFixed(0)}%`, {
      sample: result.samples[0],
    });
    return result;
  };

  // Saved after every probe too, so an interrupted run keeps its latest probed weights.
  const save = async (step: number) => {
    if (!c.save_to) return;
    const dir = resolve(ctx.baseDir, c.save_to);
    await engine.saveModel(model, dir, {
      dtype: c.save_dtype,
      tokenizerFiles: {
        'tokenizer.json': tokenizer.source.tokenizerJson,
        'tokenizer_config.json': tokenizer.source.tokenizerConfig,
        'chat_template.jinja': template.source,
      },
    });
    ctx.metrics.event('info', `sft: saved the step-${step} model to ${dir}`);
  };

  const reached = (result: ProbeResult | undefined) =>
    !!c.stop_accuracy &&
    !!result &&
    Object.entries(c.stop_accuracy).every(([level, min]) => (level === 'all' ? result.accuracy : (result.byLevel[level]?.accuracy ?? -1)) >= min);

  let tokens = 0;
  let lastProbeStep = -1;
  const steps$ = prompts.pipe(
    bufferCount(c.batch_size),
    take(c.max_steps),
    takeWhile(() => !stopped && !ctx.signal.aborted),
    mapAsync(async (records: PromptRecord[]) => {
      // A batch may already be queued here when an early stop is decided.
      if (stopped || ctx.signal.aborted) return [];
      const examples = records.map((r) => encodeSftExample(r, tokenizer, template, { completionField: c.completion_field, maxLength: c.max_length }));
      const result: SftStepResult = await trainer.step(examples, padId, c.prompt_loss_weight);
      tokens += result.batchTokens;
      const seconds = (performance.now() - started) / 1000;
      ctx.metrics.publish(result.step, {
        'sft/loss': result.loss,
        'sft/grad_norm': result.gradNorm,
        'sft/learning_rate': result.learningRate,
        'sft/tokens_per_s': tokens / seconds,
      });
      if (c.eval_every > 0 && result.step % c.eval_every === 0) {
        lastProbeStep = result.step;
        const probed = await probe(result.step);
        await save(result.step);
        if (reached(probed)) {
          stopped = true;
          ctx.metrics.event('info', `sft: stop_accuracy reached at step ${result.step}; stopping early`);
        }
      }
      return [result];
    }),
  );
  await lastValueFrom(steps$.pipe(toArray()));
  if (trainer.stepCount === 0) throw new Error(`train.sft ${ctx.id}: no training step ran (the prompts stream ended before ${c.batch_size} records arrived)`);
  ctx.metrics.event('info', `sft: ${trainer.stepCount} steps in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (lastProbeStep !== trainer.stepCount) {
    await probe(trainer.stepCount);
    await save(trainer.stepCount);
  }
}
