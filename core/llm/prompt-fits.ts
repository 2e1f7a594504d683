// A prompt and its completion must fit the model's positions (max_position_embeddings): past them the
// rotary positions are ones the model never saw, and the output is garbage without any error.

/** Undefined when `promptTokens + maxNewTokens` fits `maxPositions`; else the problem, for a message. */
export function positionsOverflow(promptTokens: number, maxNewTokens: number, maxPositions: number): string | undefined {
  if (promptTokens + maxNewTokens <= maxPositions) return undefined;
  return `${promptTokens} prompt tokens + ${maxNewTokens} new tokens = ${promptTokens + maxNewTokens}, over the model's max_position_embeddings ${maxPositions}`;
}
