import { describe, expect, it } from 'vitest';
import { ARITHMETIC_LEVELS, digitwiseSum, formatGoldCompletion, generateArithmeticProblem } from '../../core/data/arithmetic.js';
import { arithmeticSplit, problemFacts } from '../../core/data/arithmetic-set.js';
import { Rng } from '../../core/rng.js';

/** Independent check: recompute the answer from the numbers in the question text. */
function solveFromText(question: string): number {
  const n = (question.match(/\d+/g) ?? []).map(Number);
  if (/^What is \d+ \+ \d+\?$/.test(question)) return n[0] + n[1];
  if (/with \d+ \w+ in each/.test(question)) {
    const product = n[0] * n[1];
    if (/and \d+ more/.test(question)) return product + n[2];
    if (/gives \d+ away/.test(question)) return product - n[2];
    return product;
  }
  if (/and then \d+ more/.test(question)) return n[0] + n[1] + n[2];
  if (/buys \d+ more and gives \d+ away/.test(question)) return n[0] + n[1] - n[2];
  if (/gives \d+ away/.test(question)) return n[0] - n[1];
  if (/buys \d+ more/.test(question)) return n[0] + n[1];
  throw new Error(`unrecognised question: ${question}`);
}

describe('arithmetic word problems', () => {
  it('answers agree with the question text at every level, and are non-negative integers', () => {
    const rng = new Rng(7);
    for (const level of ARITHMETIC_LEVELS) {
      for (let i = 0; i < 300; i++) {
        const p = generateArithmeticProblem(rng, level);
        expect(p.level).toBe(level);
        expect(p.answer).toBe(solveFromText(p.question));
        expect(Number.isInteger(p.answer) && p.answer >= 0).toBe(true);
        expect(p.steps.at(-1)).toMatch(new RegExp(`= ${p.answer}$`));
      }
    }
  });

  it('levels differ in steps and size', () => {
    const rng = new Rng(1);
    const sample = (level: 1 | 2 | 3 | 4) => Array.from({ length: 200 }, () => generateArithmeticProblem(rng, level));
    expect(sample(1).every((p) => p.steps.length === 1 && Math.max(...p.question.match(/\d+/g)!.map(Number)) <= 9)).toBe(true);
    expect(sample(2).every((p) => p.steps.length === 2)).toBe(true);
    expect(sample(3).some((p) => p.steps[0].includes('*'))).toBe(true);
    expect(sample(4).every((p) => p.steps.length === 2 && p.steps[0].includes('*'))).toBe(true);
  });

  it('works level-5 sums digit by digit: units, then tens with the carry; the answer is read off the steps', () => {
    expect(digitwiseSum(34, 57)).toBe('4+7=11, 3+5+1=9');
    expect(digitwiseSum(32, 45)).toBe('2+5=7, 3+4=7');
    expect(digitwiseSum(86, 57)).toBe('6+7=13, 8+5+1=14');
    const rng = new Rng(11);
    for (let i = 0; i < 500; i++) {
      const p = generateArithmeticProblem(rng, 5);
      const [a, b] = p.question.match(/\d+/g)!.map(Number);
      expect(a >= 10 && a <= 99 && b >= 10 && b <= 99).toBe(true);
      // Each step is a true one-digit fact (plus the carry), and the answer is the tens result then the units digit.
      const [units, tens] = p.reasoning!.split(', ').map((s) => /^(\d)\+(\d)(\+1)?=(\d+)$/.exec(s)!);
      expect(Number(units[1]) + Number(units[2])).toBe(Number(units[4]));
      expect(Number(tens[1]) + Number(tens[2]) + (tens[3] ? 1 : 0)).toBe(Number(tens[4]));
      expect(Boolean(tens[3])).toBe(Number(units[4]) >= 10);
      expect(`${tens[4]}${Number(units[4]) % 10}`).toBe(String(p.answer));
      expect(p.steps).toEqual([`${a} + ${b} = ${a + b}`]);
      expect(formatGoldCompletion(p)).toBe(`<reasoning>${p.reasoning}</reasoning><answer>${a + b}</answer>`);
    }
  });

  it('reads as a short English word problem and formats a gold completion', () => {
    const p = generateArithmeticProblem(new Rng(3), 1);
    expect(p.question).toMatch(/^[A-Z][a-z]+ has \d+ \w+ and (buys \d+ more|gives \d+ away)\. How many \w+ does (he|she) have\?$/);
    expect(formatGoldCompletion({ steps: ['3 + 5 = 8'], answer: 8 })).toBe('<reasoning>3 + 5 = 8</reasoning><answer>8</answer>');
    expect(formatGoldCompletion({ steps: ['7 + 5 = 12', '12 - 4 = 8'], answer: 8 })).toBe('<reasoning>7 + 5 = 12, 12 - 4 = 8</reasoning><answer>8</answer>');
  });

  it('is reproducible from the seed, and the held-out problems never appear in training', () => {
    const a = arithmeticSplit({ seed: 5, levels: [1], testSize: 50 });
    const b = arithmeticSplit({ seed: 5, levels: [1], testSize: 50 });
    expect(a.test).toEqual(b.test);
    expect(new Set(a.test.map((p) => p.question)).size).toBe(50);
    const held = new Set(a.test.map((p) => p.question));
    for (let i = 0; i < 2000; i++) {
      const p = a.train.next().value!;
      expect(held.has(p.question)).toBe(false);
      if (i < 20) expect(p).toEqual(b.train.next().value);
    }
    expect(() => arithmeticSplit({ seed: 1, levels: [1], testSize: 100_000 })).toThrow('cannot draw 100000 distinct');
  });

  it('names the arithmetic facts of a problem: operands of + and × in order, the second step from the first result', () => {
    expect(problemFacts({ steps: ['7 + 5 = 12', '12 - 4 = 8'] })).toEqual(['5 + 7', '12 - 4']);
    expect(problemFacts({ steps: ['3 * 4 = 12', '12 + 20 = 32'] })).toEqual(['3 * 4', '12 + 20']);
    expect(problemFacts({ steps: ['9 - 2 = 7'] })).toEqual(['9 - 2']);
    expect(() => problemFacts({ steps: ['three plus four'] })).toThrow('is not "a op b = c"');
  });
});
