// Regex format reward: `score` when the completion matches `pattern`, else 0.
import type { RewardFunction } from '../../ports.js';

/** The reference workflow's pattern: reasoning block, then answer block, nothing else around them. */
export const REFERENCE_FORMAT_PATTERN = String.raw`^[\s]*<reasoning>.+?</reasoning>.*?<answer>.+?</answer>[\s]*$`;

export interface FormatRewardOptions {
  pattern?: string;
  /** RegExp flags; the default `s` (dot-all) lets `.` span the newlines of a multi-line reasoning block. */
  flags?: string;
  score?: number;
  name?: string;
  weight?: number;
  onError?: RewardFunction['onError'];
}

export function formatReward(options: FormatRewardOptions = {}): RewardFunction {
  const pattern = options.pattern ?? REFERENCE_FORMAT_PATTERN;
  const flags = options.flags ?? 's';
  let regex: RegExp;
  try {
    regex = new RegExp(pattern, flags);
  } catch (error) {
    throw new Error(`formatReward: invalid pattern ${JSON.stringify(pattern)} with flags "${flags}": ${(error as Error).message}`);
  }
  // A global/sticky regex keeps lastIndex between calls, which would make matches depend on history.
  if (regex.global || regex.sticky) regex = new RegExp(pattern, flags.replace(/[gy]/g, ''));
  const score = options.score ?? 3.0;
  return {
    name: options.name ?? 'format',
    weight: options.weight ?? 1,
    onError: options.onError ?? 'fail',
    score: ({ completions }) => completions.map((text) => (regex.test(text) ? score : 0)),
  };
}
