// Arithmetic word problems: the embedded default task. Phrasing is templated and the vocabulary small
// (a few names, items and verbs) so a tiny model trained from scratch can learn the easy levels; the
// levels add steps and larger numbers so GRPO still has room to improve.
//   1: one step, + or -, numbers below 10        "Tom has 3 apples and buys 5 more. ..."
//   2: two steps, + and -, numbers up to 20       "Ann has 7 pens. She buys 5 more and gives 4 away. ..."
//   3: one multiplication (2..9 × 2..9), or + / - with two-digit numbers
//   4: a multiplication then + or -               "Sam has 3 boxes with 4 eggs in each box and 5 more eggs. ..."
//   5: a two-digit sum, worked digit by digit     "What is 34 + 57?"  → "4+7=11, 3+5+1=9" → 91
// Level 5 is the default job's: its gold reasoning adds the units first and carries into the tens, so a
// sum is a short procedure over one-digit facts, and a model that learned it can answer operand pairs it
// never saw (held out by fact: see arithmetic-set.ts). Its prompt is short because every byte costs.
import type { PromptRecord } from '../ports.js';
import type { Rng } from '../rng.js';

export const ARITHMETIC_LEVELS = [1, 2, 3, 4, 5] as const;
export type ArithmeticLevel = (typeof ARITHMETIC_LEVELS)[number];

export interface ArithmeticProblem {
  level: ArithmeticLevel;
  question: string;
  /** The reference answer (always a non-negative integer). */
  answer: number;
  /** The problem's arithmetic, each step `a op b = c` (its facts; see problemFacts). */
  steps: string[];
  /** The gold reasoning when it is not the steps themselves (level 5: the digit-by-digit sum). */
  reasoning?: string;
}

/** The default system prompt of the task: short, since every prompt token costs a tiny model time. */
export const ARITHMETIC_SYSTEM_PROMPT =
  'Solve the problem. Put your reasoning between <reasoning> and </reasoning>, then the number between <answer> and </answer>.';

const PEOPLE: ReadonlyArray<readonly [name: string, pronoun: string]> = [
  ['Tom', 'he'],
  ['Sam', 'he'],
  ['Ben', 'he'],
  ['Ann', 'she'],
  ['Mia', 'she'],
  ['Lily', 'she'],
];
const ITEMS = ['apples', 'pens', 'cards', 'eggs', 'books', 'coins'] as const;
const CONTAINERS: ReadonlyArray<readonly [plural: string, singular: string]> = [
  ['bags', 'bag'],
  ['boxes', 'box'],
];

/** Draw one problem of the given level. */
export function generateArithmeticProblem(rng: Rng, level: ArithmeticLevel): ArithmeticProblem {
  const [name, he] = pick(rng, PEOPLE);
  const item = pick(rng, ITEMS);
  const He = he[0].toUpperCase() + he.slice(1);
  const does = `How many ${item} does ${he} have?`;
  switch (level) {
    case 1:
    case 3: {
      if (level === 3 && rng.next() < 0.5) {
        const [bags, bag] = pick(rng, CONTAINERS);
        const a = between(rng, 2, 9);
        const b = between(rng, 2, 9);
        return problem(level, `${name} has ${a} ${bags} with ${b} ${item} in each ${bag}. ${does}`, [[a, '*', b]]);
      }
      const [lo, hi] = level === 1 ? [2, 9] : [10, 99];
      if (rng.next() < 0.5) {
        const a = between(rng, lo, hi);
        const b = between(rng, lo, hi);
        return problem(level, `${name} has ${a} ${item} and buys ${b} more. ${does}`, [[a, '+', b]]);
      }
      const a = between(rng, lo + 1, hi);
      const b = between(rng, 1, a - 1);
      return problem(level, `${name} has ${a} ${item} and gives ${b} away. ${does}`, [[a, '-', b]]);
    }
    case 2: {
      const a = between(rng, 2, 20);
      const b = between(rng, 2, 20);
      if (rng.next() < 0.5) {
        const c = between(rng, 2, 20);
        return problem(level, `${name} has ${a} ${item}. ${He} buys ${b} more and then ${c} more. ${does}`, [[a, '+', b], ['_', '+', c]]);
      }
      const c = between(rng, 1, a + b - 1);
      return problem(level, `${name} has ${a} ${item}. ${He} buys ${b} more and gives ${c} away. ${does}`, [[a, '+', b], ['_', '-', c]]);
    }
    case 4: {
      const [bags, bag] = pick(rng, CONTAINERS);
      const a = between(rng, 2, 9);
      const b = between(rng, 2, 9);
      const start = `${name} has ${a} ${bags} with ${b} ${item} in each ${bag}`;
      if (rng.next() < 0.5) {
        const c = between(rng, 2, 20);
        return problem(level, `${start} and ${c} more ${item}. ${does}`, [[a, '*', b], ['_', '+', c]]);
      }
      const c = between(rng, 1, a * b - 1);
      return problem(level, `${start}. ${He} gives ${c} away. ${does}`, [[a, '*', b], ['_', '-', c]]);
    }
    case 5: {
      const a = between(rng, 10, 99);
      const b = between(rng, 10, 99);
      return { ...problem(level, `What is ${a} + ${b}?`, [[a, '+', b]]), reasoning: digitwiseSum(a, b) };
    }
    default:
      throw new Error(`unknown arithmetic level ${String(level)} (levels: ${ARITHMETIC_LEVELS.join(', ')})`);
  }
}

/** `_` as the left operand stands for the previous step's result. */
type Step = [left: number | '_', op: '+' | '-' | '*', right: number];

function problem(level: ArithmeticLevel, question: string, ops: Step[]): ArithmeticProblem {
  let value = 0;
  const steps: string[] = [];
  for (const [l, op, r] of ops) {
    const left = l === '_' ? value : l;
    value = op === '+' ? left + r : op === '-' ? left - r : left * r;
    steps.push(`${left} ${op} ${r} = ${value}`);
  }
  return { level, question, answer: value, steps };
}

/**
 * A two-digit sum worked least-significant digit first, as one writes it on paper: the units, then the
 * tens plus the carry (`34 + 57` → `4+7=11, 3+5+1=9`; the answer is the last result followed by the units
 * digit of the first, 91). Every step is a one-digit fact, so unseen operand pairs are made of seen steps.
 */
export function digitwiseSum(a: number, b: number): string {
  const units = (a % 10) + (b % 10);
  const carry = units >= 10 ? '+1' : '';
  const tens = Math.floor(a / 10) + Math.floor(b / 10) + (units >= 10 ? 1 : 0);
  return `${a % 10}+${b % 10}=${units}, ${Math.floor(a / 10)}+${Math.floor(b / 10)}${carry}=${tens}`;
}

/**
 * The gold completion of a problem in the task's output format, for SFT data:
 * `<reasoning>3 + 5 = 8</reasoning><answer>8</answer>`; steps are joined with `, `.
 */
export function formatGoldCompletion(problem: Pick<ArithmeticProblem, 'steps' | 'answer' | 'reasoning'>): string {
  return `<reasoning>${problem.reasoning ?? problem.steps.join(', ')}</reasoning><answer>${problem.answer}</answer>`;
}

/**
 * A problem as a prompt record. `fields.answer` is the answer as a string, like mapped GSM8K rows;
 * `fields.gold` is the gold completion (for SFT warm-up); `fields.level` and `fields.steps` as drawn.
 */
export function arithmeticPromptRecord(problem: ArithmeticProblem, id: string, system: string | null = ARITHMETIC_SYSTEM_PROMPT): PromptRecord {
  const messages = system === null ? [] : [{ role: 'system', content: system }];
  messages.push({ role: 'user', content: problem.question });
  return { id, messages, fields: { answer: String(problem.answer), gold: formatGoldCompletion(problem), level: problem.level, steps: problem.steps } };
}

function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.int(hi - lo + 1);
}

function pick<T>(rng: Rng, items: ReadonlyArray<T>): T {
  return items[rng.int(items.length)];
}
