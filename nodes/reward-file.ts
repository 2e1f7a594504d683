// reward.file: a user reward function from a .ts/.js module, `(args) => number[]` (or a RewardFunction object).
import { resolve } from 'node:path';
import { from } from 'rxjs';
import { z } from 'zod';
import { loadRewardModule } from '../core/grpo/rewards/load.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { rewardNodeOptions, rewardOptionsShape } from './reward-options.js';

export const rewardFileConfig = z.strictObject({
  path: z.string().min(1).describe('The module (relative to the graph file); it gets {prompts, completions, fields} and returns one number per completion.'),
  export: z.string().default('default').describe('The export to use.'),
  ...rewardOptionsShape,
});

export const rewardFile = defineNode({
  type: 'reward.file',
  version: 1,
  description: 'Reward: a user function from a .ts/.js file, ({prompts, completions, fields}) => number[].',
  inputs: {},
  outputs: { reward: { type: ports.reward } },
  config: rewardFileConfig,
  run(ctx) {
    const c = ctx.config;
    return { reward: from(loadRewardModule(resolve(ctx.baseDir, c.path), c.export, rewardNodeOptions(ctx))) };
  },
});
