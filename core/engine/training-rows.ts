// A training batch (the graph's nested value) as the flat rows the policy trainer steps on: converted
// once, where the batch meets the trainer.
import type { TrainingBatch } from '../ports.js';
import { concatAligned, rowsOf, type TrainingRows } from './rows.js';

export interface TrainingRowsOptions {
  /** The sampler's log-probs are needed (importance-sampling correction): a row without them is an error. */
  requireBehaviour?: boolean;
  /** Take the reference log-probs the rollout computed (when every row has them). */
  reference?: boolean;
}

/** A training batch (the graph's nested value) as training rows: group after group, completion after completion. */
export function trainingRowsOf(batch: TrainingBatch, options: TrainingRowsOptions = {}): TrainingRows {
  if (batch.advantages.length !== batch.groups.length) {
    throw new Error(`training batch ${batch.index}: ${batch.advantages.length} advantage groups for ${batch.groups.length} prompt groups`);
  }
  const entries = batch.groups.flatMap((group, g) => {
    if (group.promptIds.length === 0) throw new Error(`training batch ${batch.index}, group ${g} ("${group.prompt.id}"): empty prompt (no token to predict the first completion token from)`);
    if (batch.advantages[g].length !== group.completions.length) {
      throw new Error(`training batch ${batch.index}, group ${g}: ${batch.advantages[g].length} advantages for ${group.completions.length} completions`);
    }
    return group.completions.map((completion, c) => ({ promptIds: group.promptIds, completion, g, c, advantage: batch.advantages[g][c] }));
  });
  const rows = rowsOf(
    entries.map((e) => e.promptIds),
    entries.map((e) => e.completion.ids),
    entries.map((e) => e.g),
  );
  const where = (i: number) => `group ${entries[i].g}, completion ${entries[i].c} (row ${i})`;
  const hasBehaviour = entries.every(({ completion }) => completion.logprobs.length === completion.ids.length);
  if (options.requireBehaviour && !hasBehaviour) {
    const i = entries.findIndex(({ completion }) => completion.logprobs.length !== completion.ids.length);
    const { completion } = entries[i];
    throw new Error(`importance-sampling correction needs the sampler's log-probs: ${where(i)} has ${completion.logprobs.length} log-probs for ${completion.ids.length} tokens`);
  }
  const hasReference = options.reference && entries.length > 0 && entries.every(({ completion }) => completion.refLogprobs !== undefined);
  return {
    ...rows,
    advantages: Float32Array.from(entries, (e) => e.advantage),
    truncated: Uint8Array.from(entries, (e) => (e.completion.finishReason === 'length' ? 1 : 0)),
    behaviourLogprobs: hasBehaviour ? concatAligned(entries.map((e) => e.completion.logprobs), rows.completionOffsets, () => '') : undefined,
    refLogprobs: hasReference
      ? concatAligned(entries.map((e) => e.completion.refLogprobs!), rows.completionOffsets, (i, got, want) => `${where(i)} has ${got} reference log-probs for ${want} tokens`)
      : undefined,
  };
}
