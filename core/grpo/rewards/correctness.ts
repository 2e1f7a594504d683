// Answer-correctness reward with the reference workflow's rules:
//   the text inside the first <answer>…</answer> (no tag → 0); strip whitespace and remove `%`, `$`, `,`
//   from guess and reference alike; empty guess → 0; string-equal → 3.0; both numeric and
//   guess/true within [0.9, 1.1] → 1.0; anything else (including unparsable) → −1.5.
// When the reference answer is 0 the ratio is undefined (Python's reference would raise ZeroDivisionError
// and score −1.5). We treat a zero reference like any other: a guess equal by value but not by string
// ("0.0" vs "0") scores 1.0, exactly as "2.0" vs "2" does (ratio 1); any other guess scores −1.5.
import type { RewardFunction } from '../../ports.js';

const ANSWER_TAG = /<answer>(.*?)<\/answer>/s;

export interface CorrectnessRewardOptions {
  /** The row field holding the reference answer. */
  field?: string;
  name?: string;
  weight?: number;
  onError?: RewardFunction['onError'];
  exactScore?: number;
  closeScore?: number;
  wrongScore?: number;
}

/** Text of the first `<answer>` block, or undefined when there is none. */
export function extractAnswer(text: string): string | undefined {
  const match = ANSWER_TAG.exec(text);
  return match ? match[1] : undefined;
}

export function cleanAnswer(text: string): string {
  return text.trim().replace(/[%$,]/g, '');
}

/** A strict number parse: the whole string must be a finite decimal number (as Python's float() accepts). */
function parseNumber(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

export function scoreAnswer(
  completion: string,
  reference: string,
  scores: { exact: number; close: number; wrong: number } = { exact: 3.0, close: 1.0, wrong: -1.5 },
): number {
  const raw = extractAnswer(completion);
  if (raw === undefined) return 0;
  const guess = cleanAnswer(raw);
  if (guess === '') return 0;
  const truth = cleanAnswer(reference);
  if (guess === truth) return scores.exact;
  const guessValue = parseNumber(guess);
  const trueValue = parseNumber(truth);
  if (guessValue === undefined || trueValue === undefined) return scores.wrong;
  if (trueValue === 0) return guessValue === 0 ? scores.close : scores.wrong;
  const ratio = guessValue / trueValue;
  return ratio >= 0.9 && ratio <= 1.1 ? scores.close : scores.wrong;
}

export function correctnessReward(options: CorrectnessRewardOptions = {}): RewardFunction {
  const field = options.field ?? 'answer';
  const scores = { exact: options.exactScore ?? 3.0, close: options.closeScore ?? 1.0, wrong: options.wrongScore ?? -1.5 };
  return {
    name: options.name ?? 'correctness',
    weight: options.weight ?? 1,
    onError: options.onError ?? 'fail',
    score: ({ completions, fields }) =>
      completions.map((completion, i) => {
        const reference = fields[i]?.[field];
        if (reference === undefined || reference === null) {
          throw new Error(`row has no "${field}" field (fields: ${Object.keys(fields[i] ?? {}).join(', ') || 'none'})`);
        }
        return scoreAnswer(completion, String(reference), scores);
      }),
  };
}
