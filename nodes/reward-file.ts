// reward.file: a user reward function from a .ts/.js module, `(args) => number[]` (or a RewardFunction
// object), run in a worker thread of its own with a time limit per batch and only the environment the
// graph gives it (core/grpo/rewards/sandboxed.ts).
import { resolve } from 'node:path';
import { from } from 'rxjs';
import { z } from 'zod';
import { loadSandboxedReward } from '../core/grpo/rewards/sandboxed.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';
import { rewardNodeOptions, rewardOptionsShape } from './reward-options.js';

export const rewardFileConfig = z.strictObject({
  path: z.string().min(1).describe('The module (relative to the graph file); it gets {prompts, completions, fields} and returns one number per completion.'),
  export: z.string().default('default').describe('The export to use.'),
  timeout_s: z
    .number()
    .positive()
    .default(60)
    .describe('Limit for scoring one batch, seconds: a reward over it (an endless loop, a promise that never settles) is stopped and counts as an error (on_error).'),
  env: z
    .record(z.string(), z.string())
    .default({})
    .describe("The reward's whole process.env (it does not see the run's environment): e.g. { API_URL: \"${env.API_URL}\" }."),
  ...rewardOptionsShape,
});

export const rewardFile = defineNode({
  type: 'reward.file',
  version: 1,
  description: 'Reward: a user function from a .ts/.js file, ({prompts, completions, fields}) => number[], in a worker thread with a time limit.',
  inputs: {},
  outputs: { reward: { type: ports.reward } },
  config: rewardFileConfig,
  run(ctx) {
    const c = ctx.config;
    const loaded = loadSandboxedReward(resolve(ctx.baseDir, c.path), c.export, { ...rewardNodeOptions(ctx), timeoutS: c.timeout_s, env: c.env });
    ctx.onTeardown(async () => (await loaded.catch(() => undefined))?.close());
    return { reward: from(loaded) };
  },
});
