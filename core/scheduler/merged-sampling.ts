// Sampling with the LoRA adapter folded into the weights, for both rollout engines (main thread, worker).
import { withLoraMerged } from '../llm/lora.js';
import type { CausalLM } from '../llm/model.js';

/**
 * Runs `sample` with the LoRA adapter folded into copies of the adapted weights when `merged` is set: no
 * adapter products per token (on a small model a third of a decode step), the same policy up to float
 * rounding, one extra copy of the adapted projections while it runs. The caller holds the model's lock
 * (or owns the model, as the worker does).
 */
export function maybeMerged<T>(model: CausalLM, merged: boolean | undefined, sample: () => Promise<T>): Promise<T> {
  return merged && model.lora && !model.lora.merged ? withLoraMerged(model, sample) : sample();
}
