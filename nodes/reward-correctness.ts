// reward.correctness: the reference workflow's answer check on the text inside <answer>…</answer>.
import { of } from 'rxjs';
import { z } from 'zod';
import { correctnessReward } from '../core/grpo/rewards/correctness.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { rewardNodeOptions, rewardOptionsShape } from './reward-options.js';

export const rewardCorrectnessConfig = z.strictObject({
  field: z.string().default('answer').describe("The prompt record's field with the reference answer."),
  exact_score: z.number().default(3).describe('Answer equal to the reference (after removing %, $ and commas).'),
  close_score: z.number().default(1).describe('Numeric answer within [0.9, 1.1] × the reference.'),
  wrong_score: z.number().default(-1.5).describe('Any other non-empty answer.'),
  ...rewardOptionsShape,
});

export const rewardCorrectness = defineNode({
  type: 'reward.correctness',
  version: 1,
  description: 'Reward: <answer> equal to the reference → 3, numerically within 10% → 1, other → −1.5, none or empty → 0.',
  inputs: {},
  outputs: { reward: { type: ports.reward } },
  config: rewardCorrectnessConfig,
  run(ctx) {
    const c = ctx.config;
    return {
      reward: of(
        correctnessReward({ field: c.field, exactScore: c.exact_score, closeScore: c.close_score, wrongScore: c.wrong_score, ...rewardNodeOptions(ctx) }),
      ),
    };
  },
});
