// reward.length: a length penalty, −scale per character (or word) beyond `target`, optionally capped.
import { of } from 'rxjs';
import { z } from 'zod';
import { lengthPenalty } from '../core/grpo/rewards/length.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { rewardNodeOptions, rewardOptionsShape } from './reward-options.js';

export const rewardLengthConfig = z.strictObject({
  target: z.number().min(0).describe('Length allowed without penalty.'),
  scale: z.number().min(0).default(0.01).describe('Penalty per unit beyond target.'),
  unit: z.enum(['chars', 'words']).default('chars').describe('What to count.'),
  max_penalty: z.number().positive().optional().describe('Cap on the penalty (a positive number); unlimited if absent.'),
  ...rewardOptionsShape,
});

export const rewardLength = defineNode({
  type: 'reward.length',
  version: 1,
  description: 'Reward: a length penalty, −scale per character or word beyond target (optionally capped).',
  inputs: {},
  outputs: { reward: { type: ports.reward } },
  config: rewardLengthConfig,
  run(ctx) {
    const c = ctx.config;
    return { reward: of(lengthPenalty({ target: c.target, scale: c.scale, unit: c.unit, maxPenalty: c.max_penalty, ...rewardNodeOptions(ctx) })) };
  },
});
