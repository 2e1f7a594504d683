// Small hand-made rollout batches for node tests.
import type { RolloutBatch } from '../../core/ports.js';

/** `texts[group][completion]`; each group's prompt asks for `answers[group]`. */
export function rolloutBatch(texts: string[][], answers: string[], index = 0): RolloutBatch {
  return {
    index,
    policyVersion: 0,
    groups: texts.map((completions, g) => ({
      prompt: { id: `p${g}`, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: `question ${g}` }], fields: { answer: answers[g] } },
      promptText: `question ${g}`,
      promptIds: [1, 2, 3],
      completions: completions.map((text) => ({ text, ids: [4, 5], logprobs: [-1, -2], finishReason: 'eos' as const })),
    })),
  };
}
