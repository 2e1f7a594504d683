// reward.score: scores each rollout batch with every connected reward function → scored batches (raw
// values per reward, and the weighted total). Publishes one sampled completion with its rewards for the UI.
import { z } from 'zod';
import { scoreBatch } from '../core/grpo/rewards/score.js';
import { defineNode } from '../core/plugin.js';
import { ports, type RewardFunction } from '../core/ports.js';
import { mapAsync } from '../core/runtime/operators/map-async.js';
import { sampledCompletionEvent } from './sampled-completion.js';

export const rewardScoreConfig = z.strictObject({
  on_error: z
    .enum(['per_reward', 'fail', 'zero'])
    .default('per_reward')
    .describe("A reward that throws, returns NaN or the wrong count: each reward's own on_error, or fail / score 0 for all."),
});

/** The rewards with the node-level on_error applied, checked for clashing names (they name the metrics). */
export function prepareRewards(rewards: RewardFunction[], onError: 'per_reward' | 'fail' | 'zero', where: string): RewardFunction[] {
  if (rewards.length === 0) throw new Error(`${where}: no reward functions connected to \`rewards\``);
  const seen = new Set<string>();
  for (const reward of rewards) {
    if (seen.has(reward.name)) throw new Error(`${where}: two rewards are named "${reward.name}"; give one a different \`name\``);
    seen.add(reward.name);
  }
  return onError === 'per_reward' ? rewards : rewards.map((r) => ({ ...r, onError }));
}

export const rewardScore = defineNode({
  type: 'reward.score',
  version: 1,
  description: 'Scores rollout batches with every connected reward function (weighted total per completion).',
  inputs: {
    rollouts: { type: ports.rollouts },
    rewards: { type: ports.reward, multiple: true, description: 'The reward functions (reward.* nodes).' },
  },
  outputs: { scored: { type: ports.scored } },
  config: rewardScoreConfig,
  run(ctx, inputs) {
    const rewards = prepareRewards(inputs.rewards, ctx.config.on_error, `reward.score ${ctx.id}`);
    const onWarning = (message: string) => ctx.metrics.event('warn', message);
    return {
      scored: inputs.rollouts.pipe(
        mapAsync(async (batch) => {
          const scored = await scoreBatch(batch, rewards, { onWarning });
          const sample = sampledCompletionEvent(scored);
          if (sample) ctx.metrics.event('info', `sampled completion (batch ${batch.index}) with rewards`, sample);
          return scored;
        }),
      ),
    };
  },
});
