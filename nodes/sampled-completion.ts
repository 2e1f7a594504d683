// The "latest sampled completion" event the UI shows (core/ui/types.ts): data {step, prompt, completion,
// rewards?}. The generator sends it without rewards; reward.score sends the same completion with them.
import type { PromptRecord, RolloutBatch, ScoredBatch } from '../core/ports.js';

/** The prompt as a person reads it: the last user message (the rendered template adds headers and the system prompt). */
export function lastUserMessage(prompt: PromptRecord): string {
  const user = [...prompt.messages].reverse().find((m) => m.role === 'user');
  return (user ?? prompt.messages[prompt.messages.length - 1])?.content ?? '';
}

/** Event data for the first completion of the batch's first group; rewards by name plus `total` when scored. */
export function sampledCompletionEvent(batch: RolloutBatch | ScoredBatch): Record<string, unknown> | undefined {
  const group = batch.groups[0];
  const completion = group?.completions[0];
  if (!completion) return undefined;
  const data: Record<string, unknown> = { step: batch.index, prompt: lastUserMessage(group.prompt), completion: completion.text };
  if ('rewards' in batch) {
    data.rewards = Object.fromEntries([...batch.rewards.map((r) => [r.name, r.values[0][0]] as const), ['total', batch.totals[0][0]] as const]);
  }
  return data;
}
