export { formatReward, REFERENCE_FORMAT_PATTERN, type FormatRewardOptions } from './format.js';
export { correctnessReward, extractAnswer, cleanAnswer, scoreAnswer, type CorrectnessRewardOptions } from './correctness.js';
export { lengthPenalty, lengthOf, type LengthPenaltyOptions } from './length.js';
export { loadRewardModule, type LoadRewardOptions } from './load.js';
export { scoreBatch, RewardError, type ScoreBatchOptions } from './score.js';
