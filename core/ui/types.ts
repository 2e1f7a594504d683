// What the terminal UI and the plain progress printer consume. The runtime feeds these from its
// metrics bus and node-state tracker; the shapes match core/runtime (MetricRecord, EventRecord,
// NodeState) so its observables plug in directly.
//
// Conventions the UI reads from the metrics and events (documented here so nodes can follow them):
// - progress: a metric record carrying `loss` is one finished optimiser step (its `step` is the step
//   number); the step metric's name can be changed (`stepMetric`).
// - sparklines: the values `reward` (or `reward_mean`), `loss` and `kl`, and one per reward function
//   from `rewards/NAME/mean`, read from the step records.
// - numbers: `learning_rate`, `grad_norm`, `completions/mean_length`, `rollout/tokens_per_s` (generation)
//   from any node; the growth of the cumulative `num_tokens` over `step_time` in the step records
//   (training tokens/s).
// - utilisation: a value `busy` (fraction 0..1 of wall time spent working) from a node, e.g. the
//   generator and the trainer.
// - staleness: a value `staleness` or `policy/staleness` (trainer step − policy version that sampled
//   the batch), per batch.
// - the latest sampled completion: an event whose data holds `completion` (text), and optionally
//   `rewards` ({name: value}) and `prompt` (text).
// - evaluation: an event whose data holds `eval`: {label ('before', 'after', 'step 50'), accuracy,
//   'pass@k': value, ...}, numbers in 0..1.
// - evaluation progress: events whose data holds `evalProgress`: {label, done, total} (samples), from
//   done 0 when it starts; the ETA adds the evaluations left, each timed as the last whole one.
import type { EventLevel } from '../plugin.js';
import type { MetricRecord } from '../ports.js';

export type { MetricRecord, EventLevel };

export interface UiEvent {
  /** Milliseconds since the epoch; the UI stamps the arrival time when absent. */
  time?: number;
  /** The node id (or `graph` for the runtime's own events). */
  node?: string;
  level: EventLevel;
  message: string;
  data?: Record<string, unknown>;
}

export type UiNodeStatus = 'idle' | 'running' | 'done' | 'failed' | 'cancelled';

export interface UiQueueState {
  /** `producer.port`. */
  from?: string;
  depth: number;
  capacity?: number;
}

export interface UiNodeState {
  id: string;
  type: string;
  status: UiNodeStatus;
  itemsIn: number;
  itemsOut: number;
  /** Queue depth of each stream input edge, by input port. */
  queues?: Record<string, UiQueueState>;
  error?: string;
}

/** The runtime publishes all node states together, as a record by id (or an array). */
export type UiNodeStates = Readonly<Record<string, UiNodeState>> | readonly UiNodeState[];

export interface SampledCompletion {
  node?: string;
  step?: number;
  prompt?: string;
  text: string;
  rewards: Record<string, number>;
}

export interface EvalResult {
  label: string;
  /** accuracy, pass@k, ... (fractions 0..1); `n` (problem count) when given. */
  values: Record<string, number>;
}
