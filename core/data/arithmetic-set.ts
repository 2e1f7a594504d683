// Seeded train and held-out sets of arithmetic problems. The held-out problems never appear in the
// training stream (matched by question text), so evaluation measures generalisation, not recall.
import { Rng } from '../rng.js';
import { type ArithmeticLevel, type ArithmeticProblem, generateArithmeticProblem } from './arithmetic.js';

const MAX_REPEATS = 2000;

export interface ArithmeticSetOptions {
  seed: number;
  levels: readonly ArithmeticLevel[];
  /** Number of held-out problems. */
  testSize: number;
}

/** An endless stream of problems, each level drawn uniformly from `levels`, skipping `exclude`d questions. */
export function* arithmeticProblems(rng: Rng, levels: readonly ArithmeticLevel[], exclude: ReadonlySet<string> = new Set()): Generator<ArithmeticProblem> {
  if (levels.length === 0) throw new Error('arithmetic problems: "levels" is empty');
  for (;;) {
    const problem = generateArithmeticProblem(rng, levels[rng.int(levels.length)]);
    if (!exclude.has(problem.question)) yield problem;
  }
}

/** The held-out set (distinct questions) and the training stream that avoids it. */
export function arithmeticSplit(options: ArithmeticSetOptions): { test: ArithmeticProblem[]; train: Generator<ArithmeticProblem> } {
  const root = new Rng(options.seed);
  const testRng = root.fork();
  const trainRng = root.fork();
  const test: ArithmeticProblem[] = [];
  const seen = new Set<string>();
  const source = arithmeticProblems(testRng, options.levels);
  // Small level sets have a few thousand distinct questions: give up after many repeats in a row, so a
  // testSize larger than the level set can supply fails instead of looping forever.
  for (let repeats = 0; test.length < options.testSize; ) {
    const problem = source.next().value as ArithmeticProblem;
    if (seen.has(problem.question)) {
      if (++repeats > MAX_REPEATS) throw new Error(`arithmetic problems: cannot draw ${options.testSize} distinct held-out problems from levels ${options.levels.join(', ')} (got ${test.length})`);
      continue;
    }
    repeats = 0;
    seen.add(problem.question);
    test.push(problem);
  }
  return { test, train: arithmeticProblems(trainRng, options.levels, seen) };
}
