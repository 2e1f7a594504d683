// Dynamic sampling (DAPO; verl's `algorithm.filter_groups`, docs/algo/dapo.md): a group whose rewards are
// all equal has zero advantage and teaches nothing, so it is dropped, and generation batches are drawn
// until a training batch is full of groups that do teach. As in verl: the groups kept beyond a full batch
// are dropped too (so a checkpoint after a step never holds half-used batches, and resuming is exact),
// and the number of generation batches drawn per step is capped. Unlike verl, which raises an error at the
// cap, a batch still short there is filled with dropped groups (zero advantage: they add nothing to the
// gradient) and the shortfall is reported, so a run whose policy has solved its prompts keeps going.
//
// The trainer announces how many batches it drew beyond one per step (`extraBatches`) on its policy
// stream, so that the generator's staleness bound counts training steps, not generation batches
// (core/scheduler/policy-follower.ts): without it a strict on-policy generator would wait for a step that
// waits for its next batch.
import type { RewardScores, RolloutGroup, TrainingBatch } from '../ports.js';
import { isZeroStd, rewardFunctionMetrics, rewardMetrics, unbiasedStd } from './advantages.js';

export interface GroupFilterOptions {
  /** Prompts (groups) in one training batch. */
  promptsPerStep: number;
  /** Most generation batches drawn for one training batch; 0: no limit (verl's max_num_gen_batches). */
  maxGenBatches: number;
}

/** One group with what the training batch needs of it. */
interface Drawn {
  group: RolloutGroup;
  totals: number[];
  advantages: number[];
  rewards: number[][]; // per reward function
}

export interface FilledBatch {
  batch: TrainingBatch;
  /** Generation batches and prompts this training batch consumed (what a checkpoint's position counts). */
  drawnBatches: number;
  drawnPrompts: number;
}

export class GroupFilter {
  private kept: Drawn[] = [];
  private dropped: Drawn[] = [];
  private drawn: TrainingBatch[] = [];
  /** Generation batches taken and training batches filled in this run. */
  private taken = 0;
  private filled = 0;

  constructor(private readonly options: GroupFilterOptions) {
    if (!(Number.isInteger(options.promptsPerStep) && options.promptsPerStep >= 1)) throw new Error(`filter_groups: promptsPerStep must be a whole number ≥ 1`);
    if (!(Number.isInteger(options.maxGenBatches) && options.maxGenBatches >= 0)) throw new Error(`filter_groups: max_num_gen_batches must be a whole number ≥ 0`);
  }

  /** Generation batches this run drew beyond one per training batch filled so far: the next generation batch
   *  belongs to training batch (its index − extraBatches). */
  get extraBatches(): number {
    return this.taken - this.filled;
  }

  /** Takes one generation batch; returns a full training batch once there are enough groups, else undefined. */
  add(batch: TrainingBatch): FilledBatch | undefined {
    this.taken++;
    this.drawn.push(batch);
    batch.groups.forEach((group, g) => {
      const drawn: Drawn = { group, totals: batch.totals[g], advantages: batch.advantages[g], rewards: batch.rewards.map((r) => r.values[g]) };
      // A group of one has no spread to lose (verl keeps it too).
      (group.completions.length > 1 && isZeroStd(unbiasedStd(drawn.totals)) ? this.dropped : this.kept).push(drawn);
    });
    const { promptsPerStep, maxGenBatches } = this.options;
    if (this.kept.length < promptsPerStep && (maxGenBatches === 0 || this.drawn.length < maxGenBatches)) return undefined;
    return this.fill();
  }

  private fill(): FilledBatch {
    const P = this.options.promptsPerStep;
    const padding = Math.max(0, P - this.kept.length);
    const parts = [...this.kept.slice(0, P), ...this.dropped.slice(0, padding)];
    const drawn = this.drawn;
    const drawnGroups = drawn.reduce((n, b) => n + b.groups.length, 0);
    const first = drawn[0];
    const rewards: RewardScores[] = first.rewards.map((r, i) => ({ name: r.name, weight: r.weight, values: parts.map((p) => p.rewards[i]) }));
    // The reward metrics describe what was sampled (every group drawn), as without filtering; the
    // filter's own say what it dropped.
    const allTotals = drawn.flatMap((b) => b.totals);
    const allRewards: RewardScores[] = first.rewards.map((r, i) => ({ ...r, values: drawn.flatMap((b) => b.rewards[i].values) }));
    const metrics = {
      ...rewardMetrics(allTotals),
      ...rewardFunctionMetrics({ rewards: allRewards }),
      'filter_groups/num_gen_batches': drawn.length,
      'filter_groups/dropped_groups': this.dropped.length,
      'filter_groups/dropped_fraction': this.dropped.length / drawnGroups,
      'filter_groups/surplus_groups': Math.max(0, this.kept.length - P),
      'filter_groups/padded_groups': padding,
    };
    const batch: TrainingBatch = {
      index: drawn[drawn.length - 1].index,
      // The oldest policy among them (what the staleness a trainer reports must not understate).
      policyVersion: Math.min(...drawn.map((b) => b.policyVersion)),
      groups: parts.map((p) => p.group),
      rewards,
      totals: parts.map((p) => p.totals),
      advantages: parts.map((p) => p.advantages),
      rewardMetrics: metrics,
    };
    this.kept = [];
    this.dropped = [];
    this.drawn = [];
    this.filled++;
    return { batch, drawnBatches: drawn.length, drawnPrompts: drawnGroups };
  }
}

