// The default job's held-out problems, checked on the real generators with the real graph settings: no
// test or validation question, and none of their arithmetic facts, occurs in the SFT data that trained
// models/arith-tiny (graphs/sft-warmup.yaml's dataset.synthetic, run again) or in what GRPO's dataset
// emits for training (graphs/arith-grpo.yaml).
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

async function replaySft() {
  const config = await graphConfigs('graphs/sft-warmup.yaml');
  const problems = datasetSynthetic.config.parse(config('problems'));
  const sft = config('sft') as { max_steps: number; batch_size: number };
  const count = sft.max_steps * sft.batch_size; // the committed model ran all its steps (models/arith-tiny/README.md)
  const { train, test } = await emitted(problems, count);
  return { problems, count, records: [...test, ...train], train };
}

describe('held-out problems of the default job (graphs/arith-grpo.yaml)', () => {
  it("replays the SFT data that trained models/arith-tiny, as graphs/sft-warmup.yaml made it", async () => {
    const { problems, count, records } = await sftData();
    expect(count).toBe(12_800);
    // Pinned when the model was trained (commit 06b432a and before): a change to the generator that
    // alters this stream would make the replay, and so the held-out check, about other data.
    const text = records.map((r, i) => (i < problems.test_size ? r.messages.at(-1)!.content : `${r.messages.at(-1)!.content} ${(r.fields.steps as string[]).join(', ')}`)).join('\n');
    expect(createHash('sha256').update(text).digest('hex')).toBe('8fad54748a80b9d68a8f97330ef49be1232a79a7ead68a314312403fe49305b3');
    // The default graph names the same stream.
    const grpo = datasetSynthetic.config.parse((await graphConfigs('graphs/arith-grpo.yaml'))('problems'));
    expect(grpo.sft_data).toEqual({ seed: problems.seed, levels: problems.levels, test_size: problems.test_size, count });
  });

  it('shares no question and no arithmetic fact with the SFT data or the GRPO training stream', async () => {
    const config = await graphConfigs('graphs/arith-grpo.yaml');
    const problems = datasetSynthetic.config.parse(config('problems'));
    const steps = (config('train') as { max_steps: number }).max_steps;
    const perStep = (config('rollout') as { prompts_per_batch: number }).prompts_per_batch;
    // Everything the trainer can see, with room for the batches the generator draws ahead.
    const trainCount = 2 * steps * perStep;
    const run = await emitted(problems, trainCount);
    const sft = problemFootprint((await sftData()).records.map(asProblem));
    const training = problemFootprint(run.train.map(asProblem));
    const test = run.test.map(asProblem);
    const validation = run.validation.map(asProblem);
    expect(heldoutReport(test as ArithmeticProblem[], training, trainCount, sft)).toMatchObject({ n: 200, overlap_sft: 0, overlap_train: 0, shared_facts: 0 });
    expect(heldoutReport(validation as ArithmeticProblem[], training, trainCount, sft)).toMatchObject({ n: 200, overlap_sft: 0, overlap_train: 0, shared_facts: 0 });
    // Validation (tuned on) and test (reported) are disjoint too, by question and by fact.
    const testFacts = new Set(test.flatMap(problemFacts));
    expect(validation.filter((p) => test.some((t) => t.question === p.question))).toEqual([]);
    expect(validation.flatMap(problemFacts).filter((f) => testFacts.has(f))).toEqual([]);
    // Enough facts to say something: each held-out problem brings its own.
    expect(testFacts.size).toBeGreaterThan(150);
  });

  it('counts the overlap of a split by question only (the earlier default: 143 of 200 questions in the SFT data)', async () => {
    const byQuestion = datasetSynthetic.config.parse({ seed: 5, levels: [1], test_size: 200, system: null });
    const run = await emitted(byQuestion, 1600);
    // As the issue counted: against the SFT training problems (its probe set aside).
    const sft = problemFootprint((await sftData()).train.map(asProblem));
    const report = heldoutReport(run.test.map(asProblem) as ArithmeticProblem[], problemFootprint(run.train.map(asProblem)), 1600, sft);
    expect(report).toMatchObject({ n: 200, overlap_sft: 143, overlap_train: 0 });
    expect(report.shared_facts).toBe(report.facts); // every level-1 fact was trained on
  });
});
