// Training throughput from the trainer's step records, shared by the report and the terminal UI.
// `num_tokens` is cumulative (prompt + completion tokens seen so far, as TRL logs it, counted once per
// batch even when num_iterations trains on it several times) and `step_time` is the seconds of the step
// just taken; records may be every `logging_steps` steps.

export interface TokenCount {
  step: number;
  numTokens: number;
}

/**
 * Tokens per second over the steps since `previous` (from 0 at step 0 when there is none), or
 * undefined when no new tokens arrived (a repeated iteration on the same batch) or the time is unknown.
 */
export function trainingTokensPerSecond(previous: TokenCount | undefined, current: TokenCount, stepTime: number): number | undefined {
  const steps = current.step - (previous?.step ?? 0);
  const tokens = current.numTokens - (previous?.numTokens ?? 0);
  if (!(stepTime > 0) || !(steps > 0) || !(tokens > 0)) return undefined;
  return tokens / steps / stepTime;
}
