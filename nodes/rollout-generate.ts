// rollout.generate: the generator. Collects `prompts_per_batch` prompts, renders each through the chat
// template (with the generation prompt), tokenizes it (no extra specials: the template writes bos), samples
// G completions per prompt with continuous batching, and emits one RolloutBatch. Generation holds the
// model's lock, so it never samples from weights half-way through an optimiser step; the bounded edge
// downstream keeps it at most `buffer` batches ahead of training.
import { bufferCount, filter, from, type Subscription } from 'rxjs';
import { z } from 'zod';
import type { ChatTemplate } from '../core/llm/chat-template.js';
import { sampleGroups } from '../core/llm/generate.js';
import type { CausalLM } from '../core/llm/model.js';
import { modelLock } from '../core/llm/model-lock.js';
import type { Tokenizer } from '../core/llm/tokenizer.js';
import { defineNode } from '../core/plugin.js';
import { ports, type PolicySnapshot, type PromptRecord, type RolloutBatch, type RolloutGroup } from '../core/ports.js';
import { Rng } from '../core/rng.js';
import { mapAsync } from '../core/runtime/operators/map-async.js';
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
});

export type RolloutGenerateConfig = z.output<typeof rolloutGenerateConfig>;

export type PreparedPrompt =
  | { record: PromptRecord; promptText: string; promptIds: number[]; truncatedFrom?: number }
  | { record: PromptRecord; skippedLength: number };

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
export function stopTokenIds(model: CausalLM, tokenizer: Tokenizer, template: ChatTemplate): number[] {
  const ids = new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds]);
  const endOfTurn = template.info.endOfTurn !== undefined ? tokenizer.tokenToId(template.info.endOfTurn) : undefined;
  if (endOfTurn !== undefined) ids.add(endOfTurn);
  return [...ids];
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
      description: "The trainer's latest policy; here it only supplies the version stamped on each batch (the model object is shared).",
    },
  },
  outputs: { rollouts: { type: ports.rollouts } },
  config: rolloutGenerateConfig,
  run(ctx, inputs) {
    const c = ctx.config;
    const { model, tokenizer, template } = inputs;
    const G = c.num_generations;
    const maxBatch = c.max_batch ?? G * c.prompts_per_batch;
    const eosTokenIds = stopTokenIds(model, tokenizer, template);
    const batchSeeds = new Rng(c.seed ?? (typeof ctx.services.seed === 'number' ? ctx.services.seed : 0));

    // The model object is shared with the trainer: sampling holds its lock, and the policy snapshot only
    // names the version the weights are at. (A worker-thread engine, core/scheduler, can take this over.)
    // Utilisation: seconds spent generating (not waiting for the lock) over wall time since the first batch.
    let generatingSeconds = 0;
    let firstStart: number | undefined;
    let latestPolicy: PolicySnapshot | undefined;
    let policySub: Subscription | undefined;
    if (inputs.policy) policySub = inputs.policy.subscribe((p) => (latestPolicy = p));
    ctx.onTeardown(() => policySub?.unsubscribe());

    let nextIndex = 0;

    const generateBatch = async (records: PromptRecord[]): Promise<RolloutBatch | undefined> => {
      const prepared = records.map((r) => preparePrompt(r, template, tokenizer, c));
      const kept = prepared.filter((p) => 'promptIds' in p);
      for (const p of prepared) {
        if ('skippedLength' in p) {
          ctx.metrics.event('warn', `prompt "${p.record.id}" has ${p.skippedLength} tokens, over max_prompt_length ${c.max_prompt_length}: skipped`);
        } else if (p.truncatedFrom !== undefined) {
          ctx.metrics.event('warn', `prompt "${p.record.id}" has ${p.truncatedFrom} tokens, over max_prompt_length ${c.max_prompt_length}: kept its last ${p.promptIds.length}`);
        }
      }
      if (kept.length === 0) return undefined;
      const options = {
        temperature: c.temperature,
        topK: c.top_k,
        topP: c.top_p,
        minP: c.min_p,
        repetitionPenalty: c.repetition_penalty,
        maxBatch,
        seed: batchSeeds.nextUint32(),
        eosTokenIds,
        stop: c.stop,
      };
      const requests = kept.map((p) => ({ promptIds: p.promptIds, maxNewTokens: c.max_new_tokens }));
      firstStart ??= performance.now();
      const { results, version, seconds } = await modelLock(model).run(async () => {
        const version = latestPolicy?.version ?? 0;
        const started = performance.now();
        const results = await sampleGroups(model, requests, G, { ...options, tokenizer, signal: ctx.signal });
        return { results, version, seconds: (performance.now() - started) / 1000 };
      });
      generatingSeconds += seconds;
      const wall = (performance.now() - firstStart) / 1000;
      const groups: RolloutGroup[] = kept.map((p, i) => ({
        prompt: p.record,
        promptText: p.promptText,
        promptIds: p.promptIds,
        completions: results[i].map((r) => ({ text: r.text ?? '', ids: r.ids, logprobs: r.logprobs, finishReason: r.finishReason })),
      }));
      const batch: RolloutBatch = { index: nextIndex++, policyVersion: version, groups };

      const tokens = results.flat().reduce((sum, r) => sum + r.ids.length, 0);
      ctx.metrics.publish(batch.index, {
        'rollout/tokens_per_s': seconds > 0 ? tokens / seconds : 0,
        'rollout/batch_time': seconds,
        'rollout/tokens': tokens,
        busy: wall > 0 ? Math.min(1, generatingSeconds / wall) : 1,
      });
      const sample = sampledCompletionEvent(batch);
      if (sample) ctx.metrics.event('info', `sampled completion (batch ${batch.index}, policy ${version})`, sample);
      return batch;
    };

    return {
      rollouts: inputs.prompts.pipe(
        bufferCount(c.prompts_per_batch),
        mapAsync((records) => from(generateBatch(records)).pipe(filter((b): b is RolloutBatch => b !== undefined))),
      ),
    };
  },
});
