// rollout.generate: the generator. Collects `prompts_per_batch` prompts, renders each through the chat
// template (with the generation prompt), tokenizes it (no extra specials: the template writes bos), samples
// G completions per prompt with continuous batching, and emits one RolloutBatch. Where and when it samples
// is the scheduler's (core/scheduler): a rollout engine with its own copy of the policy weights, on the
// main thread or, with `overlap`, in a worker thread that samples batch k+1 while
// the trainer works on batch k; batch k starts only within `max_staleness` optimiser steps of the
// trainer's policy (0 without overlap: strictly on-policy). The bounded edge downstream also keeps it at
// most `buffer` batches ahead of training. Prompts over max_prompt_length are
// truncated or skipped before batching, so every batch is whole; an incomplete last batch is dropped.
import { join } from 'node:path';
import { bufferCount, filter, map, skip, takeWhile } from 'rxjs';
import { z } from 'zod';
import { resumeCheckpoint, resumePosition } from '../core/grpo/resume.js';
import type { ChatTemplate } from '../core/llm/chat-template.js';
import { rolloutEngineNamed, type ModelHandle } from '../core/engine/model-engine.js';
import { positionsOverflow } from '../core/llm/prompt-fits.js';
import type { Tokenizer } from '../core/llm/tokenizer.js';
import { defineNode } from '../core/plugin.js';
import { ports, type PromptRecord, type RolloutBatch, type RolloutGroup } from '../core/ports.js';
import { Rng } from '../core/rng.js';
import { mapAsync } from '../core/runtime/operators/map-async.js';
import { RolloutScheduler, schedulerConfigShape } from '../core/scheduler/rollout-scheduler.js';
import type { RolloutEngineDefinition, SamplingOptions } from '../core/engine/interfaces.js';

const THREADS = ['auto', 'main', 'worker'] as const;
import { sampledGroup } from '../core/engine/sampled.js';
import { sampledCompletionEvent } from './sampled-completion.js';

export const rolloutGenerateConfig = z.strictObject({
  num_generations: z.number().int().min(1).default(8).describe('G: completions sampled per prompt.'),
  prompts_per_batch: z.number().int().min(1).default(1).describe('Prompts per generation batch (each batch holds prompts_per_batch × G completions).'),
  max_prompt_length: z
    .number()
    .int()
    .positive()
    .optional()
    .describe('Longest prompt in tokens; longer ones are handled as `long_prompts` says. Unlimited when absent.'),
  long_prompts: z
    .enum(['truncate', 'skip'])
    .default('truncate')
    .describe("Prompts over max_prompt_length: keep their last max_prompt_length tokens (TRL's left truncation; drops bos) or skip them; a warning event either way."),
  max_new_tokens: z.number().int().min(1).default(256).describe('Most tokens per completion (max_completion_length).'),
  temperature: z.number().min(0).default(1).describe('Sampling temperature; 0 is greedy.'),
  top_p: z.number().gt(0).max(1).default(1).describe('Nucleus sampling mass; 1 is off.'),
  top_k: z.number().int().min(0).default(0).describe('Keep the k most likely tokens; 0 is off.'),
  min_p: z.number().min(0).max(1).default(0).describe('Keep tokens at least min_p × as likely as the best; 0 is off.'),
  repetition_penalty: z.number().positive().default(1).describe("transformers' repetition penalty; 1 is off."),
  max_batch: z.number().int().positive().optional().describe('Sequences decoded together (continuous-batching slots); default G × prompts_per_batch.'),
  stop: z.array(z.string().min(1)).default([]).describe('Stop strings; the completion text is cut before them.'),
  template_variables: z.record(z.string(), z.unknown()).default({}).describe('Extra chat-template variables for rendering prompts (e.g. date_string).'),
  seed: z.number().int().optional().describe("Sampling seed; default the graph's seed."),
  merged_sampling: z
    .boolean()
    .default(false)
    .describe(
      'Sample with the LoRA adapter folded into a copy of the adapted weights: no adapter products per token (faster on small models), the same policy up to float rounding, one extra copy of the adapted projections in memory while sampling.',
    ),
  reference_logprobs: z
    .boolean()
    .default(false)
    .describe(
      "Also compute each completion's log-probs under the frozen base model (adapters off) where it is sampled, so train.grpo (beta > 0) skips its reference pass; with overlap this pass runs in the generator thread beside the trainer.",
    ),
  ...schedulerConfigShape,
  drop_last: z.boolean().default(true).describe('Drop an incomplete last batch when the prompts run out (as TRL does; the trainer needs whole batches).'),
});

export type RolloutGenerateConfig = z.output<typeof rolloutGenerateConfig>;

/** A prompt ready to sample from: rendered, tokenized and within max_prompt_length. */
export interface ReadyPrompt {
  record: PromptRecord;
  promptText: string;
  promptIds: number[];
  /** The token count before left truncation, when it was truncated. */
  truncatedFrom?: number;
}

export type PreparedPrompt = ReadyPrompt | { record: PromptRecord; skippedLength: number };

/** Render with the generation prompt, tokenize without extra specials, and apply max_prompt_length. */
export function preparePrompt(
  record: PromptRecord,
  template: ChatTemplate,
  tokenizer: Tokenizer,
  c: Pick<RolloutGenerateConfig, 'max_prompt_length' | 'long_prompts' | 'template_variables'>,
): PreparedPrompt {
  let promptText: string;
  try {
    promptText = template.render(record.messages, { addGenerationPrompt: true, variables: c.template_variables });
  } catch (error) {
    throw new Error(`prompt "${record.id}": ${(error as Error).message}`);
  }
  const ids = tokenizer.encode(promptText, { addSpecialTokens: false });
  if (ids.length === 0) throw new Error(`prompt "${record.id}" renders to no tokens`);
  const max = c.max_prompt_length;
  if (max === undefined || ids.length <= max) return { record, promptText, promptIds: ids };
  if (c.long_prompts === 'skip') return { record, skippedLength: ids.length };
  // As TRL: keep the last max tokens, and the text they decode to (special tokens kept).
  const promptIds = ids.slice(-max);
  return { record, promptText: tokenizer.decode(promptIds), promptIds, truncatedFrom: ids.length };
}

/** Ids that end a completion: the model's and tokenizer's eos ids, plus the template's end-of-turn token. */
export function stopTokenIds(model: ModelHandle, tokenizer: Tokenizer, template: ChatTemplate): number[] {
  const ids = new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds]);
  const endOfTurn = template.info.endOfTurn !== undefined ? tokenizer.tokenToId(template.info.endOfTurn) : undefined;
  if (endOfTurn !== undefined) ids.add(endOfTurn);
  return [...ids];
}

/** The engine a rollout node samples with: the one it names (the older thread spellings mean tfjs), else
 *  the backend's: `backend: webgpu` samples with our own WebGPU decode loop where it is installed. */
export function rolloutEngineName(engine: string | undefined, backend: string | undefined, installed: (name: string) => boolean): string {
  if (engine !== undefined) return (THREADS as readonly string[]).includes(engine) ? 'tfjs' : engine;
  return backend === 'webgpu' && installed('webgpu') ? 'webgpu' : 'tfjs';
}

export const rolloutGenerate = defineNode({
  type: 'rollout.generate',
  version: 1,
  description: 'Samples G completions per prompt (continuous batching) into rollout batches with behaviour log-probs.',
  inputs: {
    model: { type: ports.model },
    tokenizer: { type: ports.tokenizer },
    template: { type: ports.chatTemplate },
    prompts: { type: ports.prompts },
    policy: {
      type: ports.policy,
      optional: true,
      feedback: true,
      description:
        "The trainer's latest policy: its version gates each batch (max_staleness) and is stamped on it; a worker-thread generator also loads its adapter weights.",
    },
  },
  outputs: { rollouts: { type: ports.rollouts } },
  config: rolloutGenerateConfig,
  async run(ctx, inputs) {
    const c = ctx.config;
    const { model, tokenizer, template } = inputs;
    const G = c.num_generations;
    const maxBatch = c.max_batch ?? G * c.prompts_per_batch;
    const eosTokenIds = stopTokenIds(model, tokenizer, template);
    const batchSeeds = new Rng(c.seed ?? (typeof ctx.services.seed === 'number' ? ctx.services.seed : 0));

    // Resuming (`--resume`): skip the prompts the trainer already consumed, continue the batch numbering,
    // and re-derive the batch seeds, so the batches after a resume are the ones an uninterrupted run makes.
    const position = resumePosition(ctx.services);
    const resumedStep = resumeCheckpoint(ctx.services)?.step ?? 0;
    let nextIndex = position?.batches ?? 0;
    const firstIndex = nextIndex;
    for (let i = 0; i < nextIndex; i++) batchSeeds.nextUint32();

    const backend = ctx.services.backend as { name?: string } | undefined;
    // `engine: auto | main | worker` is the older spelling of the thread, with the tfjs engine.
    const legacyThread = c.engine !== undefined && (THREADS as readonly string[]).includes(c.engine);
    const installed = ctx.services.rolloutEngines as ((name: string) => RolloutEngineDefinition | undefined) | undefined;
    const engineName = rolloutEngineName(c.engine, backend?.name, (name) => installed?.(name) !== undefined);
    const engine = rolloutEngineNamed(ctx.services, engineName, `rollout.generate ${ctx.id}`);
    const scheduler = await RolloutScheduler.start({
      engine,
      model,
      tokenizer,
      policy: inputs.policy,
      workDir: join(ctx.outDir, ctx.id),
      where: `rollout.generate ${ctx.id}`,
      options: {
        overlap: c.overlap,
        maxStaleness: c.max_staleness,
        thread: legacyThread ? (c.engine as 'auto' | 'main' | 'worker') : c.thread,
        threadKey: legacyThread ? 'engine' : 'thread',
        workerBackend: c.worker_backend,
        runBackend: backend?.name,
        engineOptions: c.engine_options,
        warn: (message) => ctx.metrics.event('warn', message),
        initialVersion: resumedStep,
      },
    });
    ctx.onTeardown(() => scheduler.close());
    if (ctx.signal.aborted) await scheduler.close();
    if (scheduler.engineKind === 'worker') ctx.metrics.event('info', `sampling in a worker thread (${scheduler.workerBackend}); max_staleness ${scheduler.maxStaleness}`);

    const prepare = (record: PromptRecord): ReadyPrompt | undefined => {
      const p = preparePrompt(record, template, tokenizer, c);
      if ('skippedLength' in p) {
        ctx.metrics.event('warn', `prompt "${record.id}" has ${p.skippedLength} tokens, over max_prompt_length ${c.max_prompt_length}: skipped`);
        return undefined;
      }
      if (p.truncatedFrom !== undefined) {
        ctx.metrics.event('warn', `prompt "${record.id}" has ${p.truncatedFrom} tokens, over max_prompt_length ${c.max_prompt_length}: kept its last ${p.promptIds.length}`);
      }
      const overflow = positionsOverflow(p.promptIds.length, c.max_new_tokens, model.config.maxPositionEmbeddings);
      if (overflow) {
        throw new Error(
          `prompt "${record.id}" does not fit the model: ${overflow}; ` +
            `set max_prompt_length (at most ${Math.max(1, model.config.maxPositionEmbeddings - c.max_new_tokens)}) with long_prompts: truncate or skip, or lower max_new_tokens`,
        );
      }
      return p;
    };

    /** undefined: the trainer has finished, so no more batches are wanted. */
    const generateBatch = async (kept: ReadyPrompt[]): Promise<RolloutBatch | undefined> => {
      const options: SamplingOptions = {
        maxNewTokens: c.max_new_tokens,
        temperature: c.temperature,
        // Behaviour log-probs of the distribution actually sampled (after top-k/top-p/min-p/penalty), the
        // denominator of train.grpo's sampler/trainer correction (its `temperature` must equal this one's).
        logprobMode: 'sampled',
        topK: c.top_k,
        topP: c.top_p,
        minP: c.min_p,
        repetitionPenalty: c.repetition_penalty,
        maxBatch,
        seed: batchSeeds.nextUint32(),
        eosTokenIds,
        stop: c.stop,
        merged: c.merged_sampling,
        reference: c.reference_logprobs ? { temperature: c.temperature > 0 ? c.temperature : 1, padTokenId: tokenizer.padTokenId } : undefined,
      };
      const sampled = await scheduler.sample(nextIndex - firstIndex, kept.map((p) => p.promptIds), G, options, ctx.signal);
      if (!sampled) return undefined;
      const { policyVersion: version, seconds } = sampled;
      const groups: RolloutGroup[] = kept.map((p, i) => ({
        prompt: p.record,
        promptText: p.promptText,
        promptIds: p.promptIds,
        completions: sampledGroup(sampled, i, G),
      }));
      const batch: RolloutBatch = { index: nextIndex++, policyVersion: version, groups };

      const tokens = sampled.completionIds.length;
      ctx.metrics.publish(batch.index, {
        'rollout/tokens_per_s': seconds > 0 ? tokens / seconds : 0,
        'rollout/batch_time': seconds,
        'rollout/tokens': tokens,
        ...scheduler.metrics(), // busy (generator utilisation), scheduler/policy_lag, ...
      });
      const sample = sampledCompletionEvent(batch);
      if (sample) ctx.metrics.event('info', `sampled completion (batch ${batch.index}, policy ${version})`, sample);
      return batch;
    };

    const perBatch = c.prompts_per_batch;
    return {
      rollouts: inputs.prompts.pipe(
        map(prepare),
        filter((p): p is ReadyPrompt => p !== undefined),
        skip(position?.prompts ?? 0),
        bufferCount(perBatch),
        filter((prompts) => {
          // As TRL's RepeatSampler: an incomplete last batch is dropped (the trainer needs whole batches).
          if (prompts.length === perBatch || !c.drop_last) return true;
          ctx.metrics.event('info', `dropped the last ${prompts.length} prompt(s): fewer than prompts_per_batch ${perBatch}`);
          return false;
        }),
        mapAsync((prompts) => generateBatch(prompts)),
        takeWhile((batch): batch is RolloutBatch => batch !== undefined),
      ),
    };
  },
});
