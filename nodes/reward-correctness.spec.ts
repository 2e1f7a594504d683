import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { recordingContext } from '../test/nodes/node-context.js';
import { rewardCorrectness } from './reward-correctness.js';

async function reward(config: Record<string, unknown>) {
  const { ctx } = recordingContext(rewardCorrectness.config.parse(config), { id: 'correct' });
  return firstValueFrom((await rewardCorrectness.run(ctx, {})).reward!);
}

describe('reward.correctness', () => {
  it("applies the reference workflow's rules to <answer> against the row's answer", async () => {
    const r = await reward({});
    expect(r).toMatchObject({ name: 'correct', weight: 1, onError: 'fail' });
    const completions = [
      '<answer> $1,200 </answer>', // cleaned equal → 3
      '<answer>1150</answer>', // within 10% → 1
      '<answer>900</answer>', // off → −1.5
      '<answer>lots</answer>', // not a number → −1.5
      'no tag at all', // → 0
      '<answer> </answer>', // empty → 0
    ];
    const scores = await r.score({ prompts: [], completions, fields: completions.map(() => ({ answer: '1200' })) });
    expect(scores).toEqual([3, 1, -1.5, -1.5, 0, 0]);
  });

  it('reads another field, with other scores', async () => {
    const r = await reward({ field: 'solution', exact_score: 2, close_score: 0.5, wrong_score: -1, weight: 0.5 });
    expect(r.weight).toBe(0.5);
    const fields = [{ solution: 10 }, { solution: 10 }, { solution: 10 }];
    expect(await r.score({ prompts: [], completions: ['<answer>10</answer>', '<answer>10.5</answer>', '<answer>3</answer>'], fields })).toEqual([2, 0.5, -1]);
    await expect(async () => r.score({ prompts: [], completions: ['<answer>1</answer>'], fields: [{ answer: 1 }] })).rejects.toThrow(/no "solution" field/);
  });
});
