// The port types that built-in nodes exchange. Plugins may use these or declare their own.
import { latestPort, resourcePort, streamPort } from './plugin.js';
import type { ModelHandle } from './engine/model-handle.js';
import type { PromptRecord } from './prompt-record.js';
import type { Tokenizer } from './llm/tokenizer.js';
import type { ChatMessage, ChatTemplate } from './llm/chat-template.js';
import type { FinishReason, PolicySnapshot } from './engine/interfaces.js';

export type { ChatMessage } from './llm/chat-template.js';
export type { FinishReason, PolicySnapshot } from './engine/interfaces.js';
export type { ModelHandle } from './engine/model-handle.js';
export type { PromptRecord } from './prompt-record.js';


/** A raw dataset row, before mapping. `source` says where it came from, for error messages (`file:row`). */
export interface DatasetRow {
  index: number;
  source: string;
  data: Record<string, unknown>;
}


export interface Completion {
  text: string;
  ids: number[];
  /** Log-probs of `ids` under the policy that sampled them (the behaviour policy). */
  logprobs: number[];
  /**
   * Log-probs of `ids` under the frozen base model (adapters off) at the sampling temperature, when the
   * rollout node computed them (`reference_logprobs`); train.grpo then skips its own reference pass.
   */
  refLogprobs?: number[];
  finishReason: FinishReason;
}

export interface RolloutGroup {
  prompt: PromptRecord;
  /** The rendered chat prompt and its token ids. */
  promptText: string;
  promptIds: number[];
  /** The G completions sampled for this prompt. */
  completions: Completion[];
}

export interface RolloutBatch {
  /** Index of this generation batch, from 0. */
  index: number;
  /** Version of the policy weights that sampled it (the trainer's optimiser step count). */
  policyVersion: number;
  groups: RolloutGroup[];
}

export interface RewardScores {
  name: string;
  weight: number;
  /** `[group][completion]` */
  values: number[][];
}

export interface ScoredBatch extends RolloutBatch {
  rewards: RewardScores[];
  /** Weighted sum over reward functions, `[group][completion]`. */
  totals: number[][];
}

export interface TrainingBatch extends ScoredBatch {
  /** Group-relative advantages, `[group][completion]`. */
  advantages: number[][];
  /**
   * The batch's reward metrics (`reward`, `reward_std`, `reward_group_std`, `frac_reward_zero_std`,
   * `rewards/NAME/mean|std`; with filter_groups also `filter_groups/...`), computed once (advantage.group,
   * or train.grpo's dynamic sampling over every group it drew); the trainer logs them with each step.
   */
  rewardMetrics?: Record<string, number>;
}

/** A reward function: one number per completion. */
export interface RewardFunction {
  name: string;
  weight: number;
  /** What to do when the function throws, returns NaN or the wrong count. */
  onError: 'fail' | 'zero';
  score(args: {
    prompts: PromptRecord[];
    completions: string[];
    fields: Record<string, unknown>[];
  }): number[] | Promise<number[]>;
}


/** A named set of metric values at one step, as carried on the metrics stream. */
export interface MetricRecord {
  step: number;
  node: string;
  values: Record<string, number>;
}

export const ports = {
  model: resourcePort<ModelHandle>('model', 'A loaded causal language model (weights, config, optional LoRA), held by a model engine.'),
  tokenizer: resourcePort<Tokenizer>('tokenizer', 'A Hugging Face tokenizer.'),
  chatTemplate: resourcePort<ChatTemplate>('chat-template', 'A Jinja chat template that renders messages.'),
  reward: resourcePort<RewardFunction>('reward', 'A reward function.'),
  rows: streamPort<DatasetRow>('rows', 'Raw dataset rows.'),
  prompts: streamPort<PromptRecord>('prompts', 'Prompt records: messages plus answer fields.'),
  rollouts: streamPort<RolloutBatch>('rollouts', 'Batches of G sampled completions per prompt.'),
  scored: streamPort<ScoredBatch>('scored', 'Rollout batches with rewards.'),
  batches: streamPort<TrainingBatch>('training-batch', 'Scored batches with group-relative advantages.'),
  metrics: streamPort<MetricRecord>('metrics', 'Named scalars per step.'),
  policy: latestPort<PolicySnapshot>('policy', 'The latest policy weights, fed back to the generator.'),
} as const;
