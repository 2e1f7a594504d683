import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { GroupFilter } from '../../core/grpo/dynamic-sampling.js';
import type { PolicySnapshot, TrainingBatch } from '../../core/ports.js';
import { PolicyFollower } from '../../core/scheduler/policy-follower.js';

/** A generation batch of groups with these rewards (two completions each); advantages tagged for tracing. */
function batch(index: number, policyVersion: number, totals: number[][]): TrainingBatch {
  return {
    index,
    policyVersion,
    groups: totals.map((t, g) => ({
      prompt: { id: `b${index}g${g}`, messages: [], fields: {} },
      promptText: '',
      promptIds: [1],
      completions: t.map(() => ({ text: '', ids: [2], logprobs: [-1], finishReason: 'eos' as const })),
    })),
    rewards: [{ name: 'r', weight: 1, values: totals }],
    totals,
    advantages: totals.map((t) => t.map((r) => r - (t[0] + t[1]) / 2)),
  };
}
const ids = (b: TrainingBatch) => b.groups.map((g) => g.prompt.id);

describe('GroupFilter (dynamic sampling)', () => {
  it('drops equal-reward groups and draws until the batch is full; metrics over every group drawn', () => {
    const filter = new GroupFilter({ promptsPerStep: 2, maxGenBatches: 0 });
    expect(filter.add(batch(0, 3, [[0, 1], [1, 1]]))).toBeUndefined(); // one group kept
    expect(filter.extraBatches).toBe(1);
    const filled = filter.add(batch(1, 4, [[2, 2], [0, 3]]))!;
    expect(ids(filled.batch)).toEqual(['b0g0', 'b1g1']);
    expect(filled.batch.advantages).toEqual([[-0.5, 0.5], [-1.5, 1.5]]);
    expect(filled.batch.rewards[0].values).toEqual([[0, 1], [0, 3]]);
    expect(filled).toMatchObject({ drawnBatches: 2, drawnPrompts: 4 });
    expect(filled.batch).toMatchObject({ index: 1, policyVersion: 3 }); // the oldest policy among the draws
    // Every drawn reward 0 1 1 1 2 2 0 3: mean 10/8; two of four groups had no spread.
    expect(filled.batch.rewardMetrics).toMatchObject({
      reward: 10 / 8,
      frac_reward_zero_std: 0.5,
      'filter_groups/num_gen_batches': 2,
      'filter_groups/dropped_groups': 2,
      'filter_groups/dropped_fraction': 0.5,
      'filter_groups/surplus_groups': 0,
      'filter_groups/padded_groups': 0,
    });
    expect(filter.extraBatches).toBe(1); // two batches for one step
  });

  it('drops the surplus of a batch with more teaching groups than a step takes (verl: batch[:train_batch_size])', () => {
    const filter = new GroupFilter({ promptsPerStep: 1, maxGenBatches: 0 });
    const filled = filter.add(batch(0, 0, [[0, 1], [1, 0]]))!;
    expect(ids(filled.batch)).toEqual(['b0g0']);
    expect(filled.batch.rewardMetrics!['filter_groups/surplus_groups']).toBe(1);
    expect(filled.drawnPrompts).toBe(2); // both prompts are consumed: a resume starts after them
    expect(filter.extraBatches).toBe(0);
  });

  it('at max_num_gen_batches fills the shortfall with dropped groups (zero advantage) and says so', () => {
    const filter = new GroupFilter({ promptsPerStep: 2, maxGenBatches: 2 });
    expect(filter.add(batch(0, 0, [[1, 1], [0, 0]]))).toBeUndefined();
    const filled = filter.add(batch(1, 0, [[0, 1], [5, 5]]))!;
    expect(ids(filled.batch)).toEqual(['b1g0', 'b0g0']);
    expect(filled.batch.advantages[1]).toEqual([0, 0]);
    expect(filled.batch.rewardMetrics!['filter_groups/padded_groups']).toBe(1);
    expect(() => new GroupFilter({ promptsPerStep: 1, maxGenBatches: -1 })).toThrow(/max_num_gen_batches/);
  });
});

describe('PolicyFollower with extra draws', () => {
  it('counts batch k as training batch k − extraBatches', async () => {
    const policy$ = new Subject<PolicySnapshot>();
    const follower = new PolicyFollower(policy$);
    policy$.next({ version: 0, weights: {}, extraBatches: 0 });
    let admitted = false;
    const admission = follower.admit(1, 0).then((a) => ((admitted = true), a));
    await new Promise((r) => setTimeout(r, 10));
    expect(admitted).toBe(false); // strictly on-policy: batch 1 waits for step 1 …
    policy$.next({ version: 0, weights: {}, extraBatches: 1 }); // … unless it is an extra draw for step 0
    expect(await admission).toEqual({ status: 'ready', version: 0 });
    follower.close();
  });
});
