// The config fields every reward node shares (weight, on_error, name), and the reward's name rule.
import { z } from 'zod';
import type { NodeContext } from '../core/plugin.js';

export const rewardOptionsShape = {
  weight: z.number().default(1).describe('Weight of this reward in the total.'),
  on_error: z
    .enum(['fail', 'zero'])
    .default('fail')
    .describe('When the reward throws, returns NaN or the wrong count: fail the run, or score 0 with a warning.'),
  name: z.string().min(1).optional().describe('Name in metrics (`rewards/NAME/mean`); default the node id.'),
};

export interface RewardNodeOptions {
  name: string;
  weight: number;
  onError: 'fail' | 'zero';
}

export function rewardNodeOptions(ctx: NodeContext<{ weight: number; on_error: 'fail' | 'zero'; name?: string }>): RewardNodeOptions {
  return { name: ctx.config.name ?? ctx.id, weight: ctx.config.weight, onError: ctx.config.on_error };
}
