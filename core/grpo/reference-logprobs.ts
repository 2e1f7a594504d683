// Log-probs of sampled completions under the frozen base model (LoRA adapters off): the reference of
// train.grpo's KL term. The trainer computes them itself unless the completions already carry them;
// the rollout engine can compute them where it samples (`reference_logprobs`), which with overlap puts
// this pass in the generator thread, beside the trainer, instead of in the trainer's step.
import type { TrainingBatch } from '../ports.js';
import { computeRowLogprobs, type PolicyModel } from './train-step.js';

export interface ReferenceOptions {
  /** The sampling temperature: log-probs are of logits / T, as the trainer computes them. */
  temperature: number;
  /** Completions per forward pass. Default 16. */
  microBatchSize?: number;
  padTokenId?: number;
}

/** `[request][member][token]` log-probs of `completions[request][member]` after `prompts[request]`. */
export async function referenceLogprobs(
  model: PolicyModel,
  prompts: number[][],
  completions: number[][][],
  options: ReferenceOptions,
): Promise<number[][][]> {
  const batch: TrainingBatch = {
    index: 0,
    policyVersion: 0,
    groups: prompts.map((promptIds, g) => ({
      prompt: { id: `reference-${g}`, messages: [], fields: {} },
      promptText: '',
      promptIds,
      completions: completions[g].map((ids) => ({ text: '', ids, logprobs: [], finishReason: 'eos' as const })),
    })),
    rewards: [],
    totals: completions.map((group) => group.map(() => 0)),
    advantages: completions.map((group) => group.map(() => 0)),
  };
  const config = { learningRate: 0, temperature: options.temperature, microBatchSize: options.microBatchSize ?? 16, padTokenId: options.padTokenId };
  // Every device operation is queued before computeRowLogprobs first awaits, so the adapters are back on
  // before anything else can run on this model.
  const rows = await model.withAdaptersDisabled(() => computeRowLogprobs(model, batch, config));
  let next = 0;
  return completions.map((group) => group.map(() => Array.from(rows[next++])));
}
