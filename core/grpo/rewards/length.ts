// Length penalty: −scale per unit (character or whitespace-separated word) beyond `target`, optionally capped.
import type { RewardFunction } from '../../ports.js';

export interface LengthPenaltyOptions {
  /** Length allowed without penalty. */
  target: number;
  /** Penalty per unit beyond target (a positive number; the reward is its negative). */
  scale: number;
  /** What to count. Characters need no tokenizer, so the reward stays a pure function of the text. */
  unit?: 'chars' | 'words';
  /** The most negative reward this function gives (a positive number); unlimited if omitted. */
  maxPenalty?: number;
  name?: string;
  weight?: number;
  onError?: RewardFunction['onError'];
}

export function lengthOf(text: string, unit: 'chars' | 'words'): number {
  if (unit === 'chars') return [...text].length; // code points, so an emoji counts once
  const words = text.trim().split(/\s+/);
  return words[0] === '' ? 0 : words.length;
}

export function lengthPenalty(options: LengthPenaltyOptions): RewardFunction {
  const { target, scale } = options;
  if (!(target >= 0) || !(scale >= 0)) {
    throw new Error(`lengthPenalty: target and scale must be non-negative numbers (got target=${target}, scale=${scale})`);
  }
  const unit = options.unit ?? 'chars';
  const cap = options.maxPenalty ?? Infinity;
  return {
    name: options.name ?? 'length_penalty',
    weight: options.weight ?? 1,
    onError: options.onError ?? 'fail',
    score: ({ completions }) =>
      completions.map((text) => {
        const excess = Math.max(0, lengthOf(text, unit) - target);
        const penalty = Math.min(excess * scale, cap);
        return penalty === 0 ? 0 : -penalty; // avoid −0 in logs
      }),
  };
}
