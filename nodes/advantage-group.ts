// advantage.group: group-relative advantages over the G completions of each prompt,
// (r − mean) / (std + 1e-4) with std per group, over the batch, or none; publishes TRL's reward metrics.
import { map } from 'rxjs';
import { z } from 'zod';
import { computeAdvantages } from '../core/grpo/advantages.js';
import { defineNode } from '../core/plugin.js';
import { ports } from '../core/ports.js';

export const advantageGroupConfig = z.strictObject({
  scale_rewards: z
    .enum(['group', 'batch', 'none'])
    .default('group')
    .describe("Divide (r − group mean) by the group's std, the whole batch's std, or nothing (Dr. GRPO)."),
});

export const advantageGroup = defineNode({
  type: 'advantage.group',
  version: 1,
  description: 'Group-relative advantages (r − group mean) / (std + 1e-4); publishes reward, reward_std (over the batch, as TRL), reward_group_std (mean group std), rewards/NAME/mean|std, frac_reward_zero_std.',
  inputs: { scored: { type: ports.scored } },
  outputs: { batches: { type: ports.batches } },
  config: advantageGroupConfig,
  run(ctx, inputs) {
    return {
      batches: inputs.scored.pipe(
        map((scored) => {
          const { batch, metrics } = computeAdvantages(scored, ctx.config.scale_rewards);
          ctx.metrics.publish(scored.index, metrics);
          return batch;
        }),
      ),
    };
  },
});
