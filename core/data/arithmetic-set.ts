// Seeded train, validation and test sets of arithmetic problems. The held-out problems (test and
// validation) never appear in the training stream. By default they are matched by question text only;
// with `heldoutFacts` they are also matched by arithmetic fact (each step's operands and operator), and
// a stream the model was already trained on (its SFT data, `seen`) is kept out of them too, so an
// evaluation on them measures generalisation to sums never seen, not recall of seen ones.
import { Rng } from '../rng.js';
import { type ArithmeticLevel, type ArithmeticProblem, generateArithmeticProblem } from './arithmetic.js';

const MAX_REPEATS = 2000;

/** Questions and arithmetic facts that a set of problems holds (see `problemFacts`). */
export interface ProblemFootprint {
  questions: ReadonlySet<string>;
  facts: ReadonlySet<string>;
}

export interface ArithmeticSetOptions {
  seed: number;
  levels: readonly ArithmeticLevel[];
  /** Number of test problems (reported only). */
  testSize: number;
  /** Number of validation problems (for tuning), disjoint from the test ones; default 0. */
  validationSize?: number;
  /**
   * Hold arithmetic facts out too: a held-out problem shares no fact with the other held-out split,
   * nor with `seen`, and the training stream skips every problem that uses a held-out fact.
   */
  heldoutFacts?: boolean;
  /** The levels held-out problems are drawn from; default `levels`. */
  heldoutLevels?: readonly ArithmeticLevel[];
  /** Problems the model was trained on elsewhere (its SFT data): no held-out problem uses their questions or facts. */
  seen?: ProblemFootprint;
}

export interface ArithmeticSplit {
  test: ArithmeticProblem[];
  validation: ArithmeticProblem[];
  train: Generator<ArithmeticProblem>;
}

/**
 * The arithmetic facts a problem uses, one per step: `3 + 5`, `12 - 4`, `3 * 4`. The left operand of a
 * second step is the first step's result. Operands of + and × are ordered (`5 + 3` is the fact `3 + 5`),
 * so a held-out fact is not seen with its operands swapped either.
 */
export function problemFacts(problem: Pick<ArithmeticProblem, 'steps'>): string[] {
  return problem.steps.map((step) => {
    const match = /^(\d+) ([-+*]) (\d+) = -?\d+$/.exec(step);
    if (!match) throw new Error(`arithmetic step "${step}" is not "a op b = c"`);
    const [, a, op, b] = match;
    const [x, y] = op !== '-' && Number(b) < Number(a) ? [b, a] : [a, b];
    return `${x} ${op} ${y}`;
  });
}

/** The questions and facts of `problems`. */
export function problemFootprint(problems: Iterable<Pick<ArithmeticProblem, 'question' | 'steps'>>): { questions: Set<string>; facts: Set<string> } {
  const questions = new Set<string>();
  const facts = new Set<string>();
  for (const p of problems) {
    questions.add(p.question);
    for (const f of problemFacts(p)) facts.add(f);
  }
  return { questions, facts };
}

/** How far held-out problems overlap a training footprint: shared questions, and held-out facts it uses. */
export function heldoutOverlap(heldout: readonly Pick<ArithmeticProblem, 'question' | 'steps'>[], training: ProblemFootprint): { questions: number; facts: number } {
  const held = problemFootprint(heldout);
  return { questions: count(held.questions, (q) => training.questions.has(q)), facts: count(held.facts, (f) => training.facts.has(f)) };
}

/** An endless stream of problems, each level drawn uniformly from `levels`, skipping the `exclude`d ones. */
export function* arithmeticProblems(rng: Rng, levels: readonly ArithmeticLevel[], exclude: (problem: ArithmeticProblem) => boolean = () => false): Generator<ArithmeticProblem> {
  if (levels.length === 0) throw new Error('arithmetic problems: "levels" is empty');
  for (;;) {
    const problem = generateArithmeticProblem(rng, levels[rng.int(levels.length)]);
    if (!exclude(problem)) yield problem;
  }
}

/**
 * The held-out sets and the training stream that avoids them. Without `heldoutFacts`, `validationSize`
 * and `seen` the test set and training stream are those of earlier versions (the committed model's SFT
 * data is replayed through this path: test/data/arithmetic-heldout.test.ts pins it).
 */
export function arithmeticSplit(options: ArithmeticSetOptions): ArithmeticSplit {
  const root = new Rng(options.seed);
  const testRng = root.fork();
  const trainRng = root.fork();
  const validationRng = root.fork();
  const byFacts = options.heldoutFacts ?? false;
  const heldoutLevels = options.heldoutLevels ?? options.levels;
  const seen = options.seen ?? { questions: new Set<string>(), facts: new Set<string>() };
  const taken = { questions: new Set<string>(), facts: new Set<string>() };
  const usable = (p: ArithmeticProblem) => !seen.questions.has(p.question) && (!byFacts || problemFacts(p).every((f) => !seen.facts.has(f)));
  const draw = (rng: Rng, size: number, what: string): ArithmeticProblem[] => {
    // The test split's facts are off-limits to validation (and the other way round, by construction).
    const blocked = byFacts ? new Set(taken.facts) : new Set<string>();
    const drawn: ArithmeticProblem[] = [];
    const source = arithmeticProblems(rng, heldoutLevels);
    // Small level sets have a few thousand distinct questions (and ~100 facts at level 1): give up after
    // many unusable draws in a row, so a size the levels cannot supply fails instead of looping forever.
    for (let repeats = 0; drawn.length < size; ) {
      const problem = source.next().value as ArithmeticProblem;
      if (taken.questions.has(problem.question) || !usable(problem) || (byFacts && problemFacts(problem).some((f) => blocked.has(f)))) {
        if (++repeats > MAX_REPEATS) {
          const unseen = byFacts ? ' whose facts the training data never uses' : '';
          throw new Error(`arithmetic problems: cannot draw ${size} distinct ${what} problems${unseen} from levels ${heldoutLevels.join(', ')} (got ${drawn.length})`);
        }
        continue;
      }
      repeats = 0;
      taken.questions.add(problem.question);
      for (const f of problemFacts(problem)) taken.facts.add(f);
      drawn.push(problem);
    }
    return drawn;
  };
  const test = draw(testRng, options.testSize, 'held-out');
  const validation = draw(validationRng, options.validationSize ?? 0, 'validation');
  const excluded = byFacts
    ? (p: ArithmeticProblem) => taken.questions.has(p.question) || problemFacts(p).some((f) => taken.facts.has(f))
    : (p: ArithmeticProblem) => taken.questions.has(p.question);
  return { test, validation, train: arithmeticProblems(trainRng, options.levels, excluded) };
}

/** A synthetic training stream as a graph configured it: its held-out splits and first `count` training problems. */
export interface ArithmeticStreamSpec {
  seed: number;
  levels: readonly ArithmeticLevel[];
  testSize: number;
  validationSize?: number;
  heldoutFacts?: boolean;
  count: number;
}

/**
 * The footprint of a stream that trained a model (its SFT data, replayed from its `dataset.synthetic`
 * settings): the first `count` training problems. Its held-out splits are not in it: they were only
 * evaluated (the SFT run's probe), never trained on; with the same seed and settings they are the
 * held-out splits of the run that replays the stream.
 */
export function streamFootprint(spec: ArithmeticStreamSpec): { questions: Set<string>; facts: Set<string> } {
  const { train } = arithmeticSplit({ seed: spec.seed, levels: spec.levels, testSize: spec.testSize, validationSize: spec.validationSize, heldoutFacts: spec.heldoutFacts });
  const problems: ArithmeticProblem[] = [];
  for (let i = 0; i < spec.count; i++) problems.push(train.next().value as ArithmeticProblem);
  return problemFootprint(problems);
}

function count<T>(items: Iterable<T>, predicate: (item: T) => boolean): number {
  let n = 0;
  for (const item of items) if (predicate(item)) n++;
  return n;
}
