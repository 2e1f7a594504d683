// One rollout batch as the tfjs rollout engine samples it (on any thread): generate() — with the LoRA adapter
// folded into the weights when `merged` is set — then, when `reference` is set, the base model's
// log-probs of every completion.
import { generate, type GenerateOptions, type GenerationRequest, type GenerationResult } from './generate.js';
import { withLoraMerged } from './lora.js';
import type { CausalLM } from './model.js';
import { referenceLogprobs } from './grpo/reference-logprobs.js';
import type { ReferenceOptions } from './grpo/reference-logprobs.js';

/** generate()'s options without the per-call hooks, plus the rollout engine's sampling extras. */
export type SampleBatchOptions = Omit<GenerateOptions, 'tokenizer' | 'signal' | 'onToken' | 'onFinish'> & {
  /** Also compute each completion's log-probs under the base model (adapters off). */
  reference?: ReferenceOptions;
  /** Sample with the LoRA adapter folded into a copy of the adapted weights (`withLoraMerged`). */
  merged?: boolean;
};

/**
 * Runs `sample` with the LoRA adapter folded into copies of the adapted weights when `merged` is set: no
 * adapter products per token (on a small model a third of a decode step), the same policy up to float
 * rounding, one extra copy of the adapted projections while it runs. The rollout engine owns the model.
 */
export function maybeMerged<T>(model: CausalLM, merged: boolean | undefined, sample: () => Promise<T>): Promise<T> {
  return merged && model.lora && !model.lora.merged ? withLoraMerged(model, sample) : sample();
}

/** Samples `requests` (one completion each); `refLogprobs[i]` are the base model's log-probs of `results[i].ids`. */
export async function sampleBatch(
  model: CausalLM,
  requests: GenerationRequest[],
  options: SampleBatchOptions,
  local: Pick<GenerateOptions, 'tokenizer' | 'signal' | 'onToken' | 'onFinish'>,
): Promise<{ results: GenerationResult[]; refLogprobs?: number[][] }> {
  const { reference, merged, ...sampling } = options;
  const results = await maybeMerged(model, merged, () => generate(model, requests, { ...sampling, ...local }));
  if (!reference) return { results };
  const refLogprobs = await referenceLogprobs(model, requests.map((r) => r.promptIds), results.map((r) => r.ids), reference);
  return { results, refLogprobs };
}
