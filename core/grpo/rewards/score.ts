// Scores a rollout batch with every reward function: one value per completion per function, then the
// weighted total. Rewards see the batch flattened (prompt and fields repeated for each of its G completions).
import type { PromptRecord, RewardFunction, RewardScores, RolloutBatch, ScoredBatch } from '../../ports.js';
import { RewardTimeoutError } from './sandboxed.js';

export interface ScoreBatchOptions {
  /** Called for each problem of a reward whose `onError` is 'zero' (its values are then 0). */
  onWarning?: (message: string) => void;
}

/** Thrown (for `onError: 'fail'`) with the reward and sample named. */
export class RewardError extends Error {
  constructor(
    message: string,
    readonly reward: string,
    readonly sample?: { group: number; completion: number },
  ) {
    super(message);
    this.name = 'RewardError';
  }
}

export async function scoreBatch(batch: RolloutBatch, rewards: RewardFunction[], options: ScoreBatchOptions = {}): Promise<ScoredBatch> {
  const where: { group: number; completion: number }[] = [];
  const prompts: PromptRecord[] = [];
  const completions: string[] = [];
  const fields: Record<string, unknown>[] = [];
  batch.groups.forEach((group, g) =>
    group.completions.forEach((completion, c) => {
      where.push({ group: g, completion: c });
      prompts.push(group.prompt);
      completions.push(completion.text);
      fields.push(group.prompt.fields);
    }),
  );
  const describe = (i: number) =>
    `sample ${i} (group ${where[i].group} "${batch.groups[where[i].group].prompt.id}", completion ${where[i].completion})`;

  const scores: RewardScores[] = [];
  for (const reward of rewards) {
    const problem = (message: string, sample?: number): number[] | undefined => {
      const full = `reward "${reward.name}" in rollout batch ${batch.index}: ${sample === undefined ? '' : describe(sample) + ': '}${message}`;
      if (reward.onError === 'zero') {
        options.onWarning?.(`${full}; scoring 0`);
        return undefined;
      }
      throw new RewardError(full, reward.name, sample === undefined ? undefined : where[sample]);
    };
    let flat: number[] = [];
    let output: unknown;
    try {
      output = await reward.score({ prompts, completions, fields });
    } catch (error) {
      // Reward errors rarely know which sample they were on; say so rather than guess.
      if (error instanceof RewardTimeoutError) problem(error.message);
      else problem(`threw ${(error as Error)?.message ?? String(error)} (while scoring samples 0..${completions.length - 1})`);
      output = undefined;
    }
    if (output !== undefined) {
      if (!Array.isArray(output)) {
        problem(`returned ${typeof output}, expected an array of ${completions.length} numbers`);
      } else if (output.length !== completions.length) {
        problem(`returned ${output.length} values for ${completions.length} completions`);
      } else {
        flat = output.map((value, i) => {
          if (typeof value === 'number' && Number.isFinite(value)) return value;
          problem(`returned ${typeof value === 'number' ? String(value) : typeof value}, expected a finite number`, i);
          return 0;
        });
      }
    }
    if (flat.length !== completions.length) flat = completions.map(() => 0);
    scores.push({ name: reward.name, weight: reward.weight, values: regroup(flat, batch) });
  }
  const totals = batch.groups.map((group, g) =>
    group.completions.map((_, c) => scores.reduce((sum, s) => sum + s.weight * s.values[g][c], 0)),
  );
  return { ...batch, rewards: scores, totals };
}

function regroup(flat: number[], batch: RolloutBatch): number[][] {
  let i = 0;
  return batch.groups.map((group) => group.completions.map(() => flat[i++]));
}
