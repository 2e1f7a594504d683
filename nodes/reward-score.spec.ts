import { lastValueFrom, of, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { correctnessReward, formatReward } from '../core/grpo/rewards/index.js';
import type { RewardFunction } from '../core/ports.js';
import { rolloutBatch } from '../test/nodes/batches.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { rewardScore } from './reward-score.js';

const texts = [
  ['<reasoning>r</reasoning><answer>4</answer>', '<answer>5</answer>'],
  ['<reasoning>r</reasoning><answer>9</answer>', 'nothing'],
];

async function score(rewards: RewardFunction[], config: Record<string, unknown> = {}) {
  const recorded = recordingContext(rewardScore.config.parse(config), { id: 'score' });
  const out = await rewardScore.run(recorded.ctx, { rollouts: of(rolloutBatch(texts, ['4', '9.5'])), rewards });
  return { ...recorded, batches: () => lastValueFrom(out.scored!.pipe(toArray())) };
}

const throwing: RewardFunction = { name: 'broken', weight: 1, onError: 'fail', score: () => { throw new Error('boom'); } };

describe('reward.score', () => {
  it('scores each completion with every reward and sums them by weight', async () => {
    const { batches, events } = await score([formatReward({ weight: 0.5 }), correctnessReward()]);
    const [batch] = await batches();
    expect(batch.rewards.map((r) => [r.name, r.weight])).toEqual([['format', 0.5], ['correctness', 1]]);
    expect(batch.rewards[0].values).toEqual([[3, 0], [3, 0]]);
    expect(batch.rewards[1].values).toEqual([[3, -1.5], [1, 0]]);
    expect(batch.totals).toEqual([[4.5, -1.5], [2.5, 0]]);
    expect(batch.groups).toHaveLength(2); // the rollout batch travels on
    const sample = events.find((e) => e.data?.completion !== undefined);
    expect(sample?.data).toEqual({ step: 0, prompt: 'question 0', completion: texts[0][0], rewards: { format: 3, correctness: 3, total: 4.5 } });
  });

  it("uses each reward's own on_error by default, and can override it for all", async () => {
    await expect((await score([formatReward(), throwing])).batches()).rejects.toThrow(/reward "broken" in rollout batch 0: threw boom/);
    const zeroed = await score([formatReward(), throwing], { on_error: 'zero' });
    const [batch] = await zeroed.batches();
    expect(batch.rewards[1].values).toEqual([[0, 0], [0, 0]]);
    expect(zeroed.events.some((e) => e.level === 'warn' && /broken.*scoring 0/.test(e.message))).toBe(true);
    const forgiving = { ...throwing, onError: 'zero' as const };
    await expect((await score([forgiving], { on_error: 'fail' })).batches()).rejects.toThrow(/broken/);
  });

  it('names the sample whose value is not a finite number', async () => {
    const nan: RewardFunction = { name: 'nan', weight: 1, onError: 'fail', score: ({ completions }) => completions.map((_, i) => (i === 3 ? NaN : 1)) };
    await expect((await score([nan])).batches()).rejects.toThrow(/reward "nan".*group 1 "p1", completion 1.*NaN/);
  });

  it('refuses no rewards and two rewards with one name', async () => {
    await expect(score([])).rejects.toThrow(/no reward functions connected/);
    await expect(score([formatReward(), formatReward()])).rejects.toThrow(/two rewards are named "format"/);
  });
});
