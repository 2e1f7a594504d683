// example/reward-length: a reward function preferring completions near a target length (in characters).
// Score = max(0, 1 - |length - target| / tolerance): 1 at the target, falling linearly to 0.
import { defineNode, ports, type RewardFunction } from 'grpoflow';
import { of } from 'rxjs';
import { z } from 'zod';

export function lengthScore(length: number, target: number, tolerance: number): number {
  return Math.max(0, 1 - Math.abs(length - target) / tolerance);
}

export const rewardLength = defineNode({
  type: 'reward-length',
  version: 1,
  description: 'Reward: 1 for completions of the target length, falling linearly to 0 at ±tolerance characters.',
  inputs: {},
  outputs: { reward: { type: ports.reward } },
  config: z.strictObject({
    target: z.number().int().min(1),
    tolerance: z.number().positive().default(100),
    weight: z.number().default(1),
  }),
  run(ctx) {
    const { target, tolerance, weight } = ctx.config;
    const reward: RewardFunction = {
      name: ctx.id,
      weight,
      onError: 'fail',
      score: ({ completions }) => completions.map((c) => lengthScore(c.length, target, tolerance)),
    };
    return { reward: of(reward) };
  },
});
