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

/**
 * Log-probs of each `completions[i]` after `prompts[i]`. Rows with the same prompt (GRPO's G completions)
 * form one group, so the trainer's shared prompt pass computes each prompt once.
 */
export async function referenceLogprobs(
  model: PolicyModel,
  prompts: number[][],
  completions: number[][],
  options: ReferenceOptions,
): Promise<number[][]> {
  const groupOf = new Map<string, number>();
  const groups: { promptIds: number[]; rows: number[] }[] = [];
  prompts.forEach((promptIds, i) => {
    const key = promptIds.join(',');
    let g = groupOf.get(key);
    if (g === undefined) groupOf.set(key, (g = groups.push({ promptIds, rows: [] }) - 1));
    groups[g].rows.push(i);
  });
  const batch: TrainingBatch = {
    index: 0,
    policyVersion: 0,
    groups: groups.map(({ promptIds, rows }, g) => ({
      prompt: { id: `reference-${g}`, messages: [], fields: {} },
      promptText: '',
      promptIds,
      completions: rows.map((i) => ({ text: '', ids: completions[i], logprobs: [], finishReason: 'eos' as const })),
    })),
    rewards: [],
    totals: groups.map(({ rows }) => rows.map(() => 0)),
    advantages: groups.map(({ rows }) => rows.map(() => 0)),
  };
  const config = { learningRate: 0, temperature: options.temperature, microBatchSize: options.microBatchSize ?? 16, padTokenId: options.padTokenId };
  // Every device operation is queued before computeRowLogprobs first awaits, so the adapters are back on
  // before anything else can run on this model.
  const values = await model.withAdaptersDisabled(() => computeRowLogprobs(model, batch, config));
  const out: number[][] = new Array(prompts.length);
  let next = 0; // computeRowLogprobs returns rows group after group
  for (const { rows } of groups) for (const i of rows) out[i] = Array.from(values[next++]);
  return out;
}
