// Sampled rows back into the graph's values (Completion), for the nodes that sample through an engine.
import type { Completion } from '../ports.js';
import type { SampledRows } from './interfaces.js';
import { completionOf, tokenValuesOf } from './rows.js';

/** Row i of a sampled batch as the graph's Completion. */
export function sampledCompletion(sampled: SampledRows, i: number): Completion {
  return {
    text: sampled.texts[i],
    ids: Array.from(completionOf(sampled, i)),
    logprobs: Array.from(tokenValuesOf(sampled, sampled.logprobs, i)),
    ...(sampled.refLogprobs ? { refLogprobs: Array.from(tokenValuesOf(sampled, sampled.refLogprobs, i)) } : {}),
    finishReason: sampled.finishReasons[i],
  };
}

/** The completions of prompt i when each prompt got n (prompt after prompt, as sample() returns them). */
export function sampledGroup(sampled: SampledRows, i: number, n: number): Completion[] {
  return Array.from({ length: n }, (_, j) => sampledCompletion(sampled, i * n + j));
}
