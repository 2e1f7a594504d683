// The default job's held-out problems, checked on the real generators with the real graph settings: no
// test or validation question, and none of their arithmetic facts (operand pairs), occurs in the SFT data
// that trained models/arith-tiny (graphs/sft-warmup.yaml's dataset.synthetic, run again) or in what GRPO's
// dataset emits for training (graphs/arith-grpo.yaml).
import { createHash } from 'node:crypto';
import { lastValueFrom, take, toArray, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ArithmeticProblem } from '../../core/data/arithmetic.js';
import { problemFacts, problemFootprint } from '../../core/data/arithmetic-set.js';
import { loadGraphFile } from '../../core/graph/load.js';
import type { PromptRecord } from '../../core/ports.js';
import { datasetSynthetic, heldoutReport, type DatasetSyntheticConfig } from '../../nodes/dataset-synthetic.js';
import { fakeContext } from './fake-context.js';

async function graphConfigs(file: string) {
  const { graph, diagnostics } = await loadGraphFile(file);
  if (!graph) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return (id: string) => graph.nodes.find((n) => n.id === id)!.config as Record<string, unknown>;
}

/** Runs dataset.synthetic with `config`: its held-out splits and its first `count` training problems, as records. */
async function emitted(config: DatasetSyntheticConfig, count: number) {
  const out = await datasetSynthetic.run(fakeContext(config).ctx, {});
  const all = (stream: Observable<PromptRecord>) => lastValueFrom(stream.pipe(toArray()));
  return { train: await all(out.prompts!.pipe(take(count))), test: await all(out.test!), validation: await all(out.validation!) };
}

/** The problem a record was made from, as far as overlap goes: its question and worked steps. */
const asProblem = (r: PromptRecord): Pick<ArithmeticProblem, 'question' | 'steps'> => ({ question: r.messages.at(-1)!.content, steps: r.fields.steps as string[] });

let sftReplay: ReturnType<typeof replaySft> | undefined;
const sftData = () => (sftReplay ??= replaySft());

/**
 * The SFT data that trained models/arith-tiny, as graphs/sft-warmup.yaml's dataset.synthetic makes it:
 * every problem its schedule could have reached (max_steps × batch_size; the run stopped early, at
 * `sft_data.count` of graphs/arith-grpo.yaml), so the check covers more than the model saw, never less.
 */
async function replaySft() {
  const config = await graphConfigs('graphs/sft-warmup.yaml');
  const problems = datasetSynthetic.config.parse(config('problems'));
  const sft = config('sft') as { max_steps: number; batch_size: number };
  const count = sft.max_steps * sft.batch_size;
  const { train, test, validation } = await emitted(problems, count);
  return { problems, batchSize: sft.batch_size, count, train, test, validation };
}

describe('held-out problems of the default job (graphs/arith-grpo.yaml)', () => {
  it('replays the SFT data that trained models/arith-tiny, as graphs/sft-warmup.yaml made it', async () => {
    const { problems, batchSize, count, train } = await sftData();
    // Pinned when the model was trained: a change to the generator that alters this stream would make
    // the replay, and so the held-out check, about other data.
    const text = train.map((r) => `${r.messages.at(-1)!.content} ${r.fields.completion as string}`).join('\n');
    expect(createHash('sha256').update(text).digest('hex')).toBe('d991b279ba03bf3ac9fb58c0f5e3a0f6ff67bedcb8899271edbbbce4e4e0b33c');
    // The default graph holds out the same splits (same seed and sizes) and replays the SFT problems the
    // model was trained on: a whole number of batches, no more than the schedule allowed.
    const grpo = datasetSynthetic.config.parse((await graphConfigs('graphs/arith-grpo.yaml'))('problems'));
    expect(grpo).toMatchObject({ seed: problems.seed, levels: problems.levels, test_size: problems.test_size, validation_size: problems.validation_size, heldout_facts: true });
    expect(grpo.sft_data).toMatchObject({ seed: problems.seed, levels: problems.levels, test_size: problems.test_size, validation_size: problems.validation_size, heldout_facts: true });
    expect(grpo.sft_data!.count % batchSize).toBe(0);
    expect(grpo.sft_data!.count).toBeLessThanOrEqual(count);
  });

  it('shares no question and no arithmetic fact with the SFT data or the GRPO training stream', async () => {
    const config = await graphConfigs('graphs/arith-grpo.yaml');
    const problems = datasetSynthetic.config.parse(config('problems'));
    const steps = (config('train') as { max_steps: number }).max_steps;
    const perStep = (config('rollout') as { prompts_per_batch: number }).prompts_per_batch;
    // Everything the trainer can see, with room for the batches the generator draws ahead.
    const trainCount = 2 * steps * perStep;
    const run = await emitted(problems, trainCount);
    const replay = await sftData();
    const sft = problemFootprint(replay.train.map(asProblem));
    const training = problemFootprint(run.train.map(asProblem));
    const test = run.test.map(asProblem);
    const validation = run.validation.map(asProblem);
    expect(heldoutReport(test as ArithmeticProblem[], training, trainCount, sft)).toMatchObject({ n: problems.test_size, overlap_sft: 0, overlap_train: 0, shared_facts: 0 });
    expect(heldoutReport(validation as ArithmeticProblem[], training, trainCount, sft)).toMatchObject({ n: problems.validation_size, overlap_sft: 0, overlap_train: 0, shared_facts: 0 });
    // The SFT run probed (and stopped early) on the same validation split, and the test split is the same too.
    expect(replay.test.map((r) => r.messages.at(-1)!.content)).toEqual(test.map((p) => p.question));
    expect(replay.validation.map((r) => r.messages.at(-1)!.content)).toEqual(validation.map((p) => p.question));
    // Validation (tuned on) and test (reported) are disjoint too, by question and by fact.
    const testFacts = new Set(test.flatMap(problemFacts));
    expect(validation.filter((p) => test.some((t) => t.question === p.question))).toEqual([]);
    expect(validation.flatMap(problemFacts).filter((f) => testFacts.has(f))).toEqual([]);
    // Nearly every held-out problem brings its own fact (34 + 57 and 57 + 34 are one), and the training streams still cover most of the others.
    expect(testFacts.size).toBeGreaterThan(0.9 * problems.test_size);
    expect(sft.facts.size).toBeGreaterThan(3000);
  });

  it('counts the overlap of a split by question only (the earlier default: 143 of 200 questions in its SFT data)', async () => {
    // The earlier embedded model's SFT stream (seed 1, levels [1, 1, 2, 3, 4], 800 steps × 16) against
    // the earlier default's held-out set (seed 5, level 1, by question only), as the issue counted them.
    const earlierSft = await emitted(datasetSynthetic.config.parse({ seed: 1, levels: [1, 1, 2, 3, 4], test_size: 200, system: null, gold: true }), 12_800);
    const byQuestion = datasetSynthetic.config.parse({ seed: 5, levels: [1], test_size: 200, system: null });
    const run = await emitted(byQuestion, 1600);
    const sft = problemFootprint(earlierSft.train.map(asProblem));
    const report = heldoutReport(run.test.map(asProblem) as ArithmeticProblem[], problemFootprint(run.train.map(asProblem)), 1600, sft);
    expect(report).toMatchObject({ n: 200, overlap_sft: 143, overlap_train: 0 });
    expect(report.shared_facts).toBe(report.facts); // every level-1 fact was trained on
  });
});
