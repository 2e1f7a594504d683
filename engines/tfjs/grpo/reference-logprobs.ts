// Log-probs of sampled completions under the frozen base model (LoRA adapters off): the reference of
// train.grpo's KL term. The trainer computes them itself unless the completions already carry them;
// the rollout engine can compute them where it samples (`reference_logprobs`), which with overlap puts
// this pass in the generator thread, beside the trainer, instead of in the trainer's step.
import { rowsOf, rowCount, tokenValuesOf } from '../../../core/engine/rows.js';
import { scoreRowsWith, type PolicyModel } from './train-step.js';

export interface ReferenceOptions {
  /** The sampling temperature: log-probs are of logits / T, as the trainer computes them. */
  temperature: number;
  /** Completions per forward pass. Default 16. */
  microBatchSize?: number;
  padTokenId?: number;
}

/**
 * Log-probs of each `completions[i]` after `prompts[i]`, adapters off. Rows with the same prompt (GRPO's
 * G completions) form one group, so the shared prompt pass computes each prompt once.
 */
export async function referenceLogprobs(
  model: PolicyModel,
  prompts: ArrayLike<number>[],
  completions: ArrayLike<number>[],
  options: ReferenceOptions,
): Promise<number[][]> {
  const rows = rowsOf(prompts, completions);
  const values = await scoreRowsWith(model, rows, { adapters: 'off', temperature: options.temperature, microBatchSize: options.microBatchSize ?? 16, padTokenId: options.padTokenId });
  return Array.from({ length: rowCount(rows) }, (_, i) => Array.from(tokenValuesOf(rows, values, i)));
}
