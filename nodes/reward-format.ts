// reward.format: a regex format reward — `score` when the completion matches `pattern`, else 0.
import { of } from 'rxjs';
import { z } from 'zod';
import { formatReward, REFERENCE_FORMAT_PATTERN } from '../core/grpo/rewards/format.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { rewardNodeOptions, rewardOptionsShape } from './reward-options.js';

export const rewardFormatConfig = z.strictObject({
  pattern: z.string().default(REFERENCE_FORMAT_PATTERN).describe('Regular expression (JavaScript syntax) the whole completion must match.'),
  flags: z.string().default('s').describe('RegExp flags; `s` lets `.` match newlines.'),
  score: z.number().default(3).describe('Reward for a match (0 otherwise).'),
  ...rewardOptionsShape,
});

export const rewardFormat = defineNode({
  type: 'reward.format',
  version: 1,
  description: 'Reward: `score` when the completion matches a regex (default <reasoning>…</reasoning><answer>…</answer>), else 0.',
  inputs: {},
  outputs: { reward: { type: ports.reward } },
  config: rewardFormatConfig,
  run(ctx) {
    const c = ctx.config;
    return { reward: of(formatReward({ pattern: c.pattern, flags: c.flags, score: c.score, ...rewardNodeOptions(ctx) })) };
  },
});
