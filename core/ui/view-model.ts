// The run's state as the UI shows it, built from metric records, events and node-state snapshots.
// Pure and synchronous: the Ink app samples `snapshot()` on a timer (about 10 times a second), so a
// burst of metrics costs one render, not one per record.
import { trainingTokensPerSecond, type TokenCount } from '../report/throughput.js';
import { StepTimer } from './step-timer.js';
import type { EvalResult, MetricRecord, SampledCompletion, UiEvent, UiNodeState, UiNodeStates, UiNodeStatus } from './types.js';

export interface RunViewModelOptions {
  title: string;
  totalSteps: number;
  /** Values kept per sparkline. */
  historyLength?: number;
  /** The metric whose records mark finished steps. */
  stepMetric?: string;
  /** Lowest event level shown as a log line. */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Evaluations the graph will run (before, periodic, after), for an ETA that includes them; 0 or absent: none counted. */
  plannedEvaluations?: number;
  now?: () => number;
  /** Resident set size in bytes (default: this process's, which includes the generator's worker thread). */
  memoryUsage?: () => number;
}

export interface NodeRow {
  id: string;
  type: string;
  status: UiNodeStatus;
  itemsIn: number;
  itemsOut: number;
  /** Items taken in per second over the last few seconds (items put out, for a source). */
  itemsPerSecond: number;
  /** Items waiting on the node's stream inputs, all edges together. */
  queueDepth: number;
  error?: string;
}

export interface LogLine {
  id: number;
  time: number;
  level: UiEvent['level'];
  node?: string;
  message: string;
}

/** The latest of the values the UI shows as numbers; absent until a node publishes them. */
export interface RunStats {
  learningRate?: number;
  gradNorm?: number;
  /** Generated tokens per second (the generator's `rollout/tokens_per_s`). */
  generationTokensPerSecond?: number;
  /** Tokens trained on per second: the growth of the trainer's cumulative `num_tokens` over its `step_time`. */
  trainingTokensPerSecond?: number;
  /** Mean completion length in tokens (`completions/mean_length`). */
  completionLength?: number;
  rssBytes: number;
}

/** The evaluation running now. */
export interface EvalProgressState {
  label: string;
  done: number;
  total: number;
  elapsedSeconds: number;
  /** Time left in this evaluation, from its rate so far. */
  etaSeconds?: number;
}

export interface RunSnapshot {
  title: string;
  step: number;
  totalSteps: number;
  elapsedSeconds: number;
  secondsPerStep?: number;
  /** Time left: the remaining steps, plus the remaining evaluations when their time is known. */
  etaSeconds?: number;
  /** The evaluations' share of etaSeconds (undefined: none planned, or none timed yet). */
  evalEtaSeconds?: number;
  /** Evaluations still to run or running (of plannedEvaluations). */
  evaluationsLeft: number;
  series: { reward: number[]; loss: number[]; kl: number[] };
  /** Mean reward per reward function, per step (`rewards/NAME/mean` in the trainer's step records). */
  rewardSeries: Record<string, number[]>;
  stats: RunStats;
  evalProgress?: EvalProgressState;
  nodes: NodeRow[];
  completion?: SampledCompletion;
  /** `busy` fraction by node id, in the order first seen. */
  utilisation: { node: string; busy: number }[];
  /** Staleness of the most recent batches (oldest first). */
  staleness: number[];
  evals: EvalResult[];
  /** Every log line so far; the UI prints new ones once, above the live area. */
  logs: LogLine[];
  /** Bumped on every change; lets the renderer skip identical frames. */
  version: number;
}

export interface RunViewModel {
  pushMetric(record: MetricRecord): void;
  pushEvent(event: UiEvent): void;
  pushNodeStates(states: UiNodeStates): void;
  snapshot(): RunSnapshot;
}

const SERIES_KEYS = { reward: ['reward', 'reward_mean'], loss: ['loss'], kl: ['kl'] } as const;
const STALENESS_KEYS = ['staleness', 'policy/staleness'];
const REWARD_MEAN = /^rewards\/(.+)\/mean$/;
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
const RATE_WINDOW_MS = 5000;

export function createRunViewModel(options: RunViewModelOptions): RunViewModel {
  const now = options.now ?? Date.now;
  const history = options.historyLength ?? 60;
  const stepMetric = options.stepMetric ?? 'loss';
  const minLevel = LEVELS.indexOf(options.logLevel ?? 'info');
  const startedAt = now();
  const timer = new StepTimer(startedAt);
  const series = { reward: [] as number[], loss: [] as number[], kl: [] as number[] };
  const utilisation = new Map<string, number>();
  const staleness: number[] = [];
  const evals: EvalResult[] = [];
  const logs: LogLine[] = [];
  const rateSamples = new Map<string, { time: number; out: number }[]>();
  let nodes: NodeRow[] = [];
  let completion: SampledCompletion | undefined;
  let version = 0;
  const rewardSeries = new Map<string, number[]>();
  const stats: Omit<RunStats, 'rssBytes'> = {};
  const memoryUsage = options.memoryUsage ?? (() => process.memoryUsage.rss());
  const plannedEvaluations = options.plannedEvaluations ?? 0;
  let evaluationsDone = 0;
  /** Seconds the last whole evaluation took (first progress event to result). */
  let lastEvalSeconds: number | undefined;
  let running: { label: string; done: number; total: number; startedAt: number } | undefined;
  let lastTokenCount: TokenCount | undefined;

  const pushBounded = (list: number[], value: number) => {
    list.push(value);
    if (list.length > history) list.shift();
  };

  return {
    pushMetric(record) {
      const v = record.values;
      // The curves are per optimiser step: read them from the trainer's step records only, since other
      // nodes (advantage.group) publish `reward` for the same step too.
      if (stepMetric in v) {
        timer.mark(record.step, now());
        for (const [name, keys] of Object.entries(SERIES_KEYS)) {
          const key = keys.find((k) => k in v);
          if (key !== undefined) pushBounded(series[name as keyof typeof series], v[key]);
        }
        for (const [key, value] of Object.entries(v)) {
          const fn = key.match(REWARD_MEAN)?.[1];
          if (fn === undefined) continue;
          if (!rewardSeries.has(fn)) rewardSeries.set(fn, []);
          pushBounded(rewardSeries.get(fn)!, value);
        }
        if ('num_tokens' in v) {
          const count = { step: record.step, numTokens: v.num_tokens };
          stats.trainingTokensPerSecond = trainingTokensPerSecond(lastTokenCount, count, v.step_time) ?? stats.trainingTokensPerSecond;
          lastTokenCount = count;
        }
      }
      if ('learning_rate' in v) stats.learningRate = v.learning_rate;
      if ('grad_norm' in v) stats.gradNorm = v.grad_norm;
      if ('completions/mean_length' in v) stats.completionLength = v['completions/mean_length'];
      if ('rollout/tokens_per_s' in v) stats.generationTokensPerSecond = v['rollout/tokens_per_s'];
      if ('busy' in v) utilisation.set(record.node, v.busy);
      const stalenessKey = STALENESS_KEYS.find((k) => k in v);
      if (stalenessKey !== undefined) pushBounded(staleness, v[stalenessKey]);
      version++;
    },

    pushEvent(event) {
      const data = event.data ?? {};
      if (typeof data.completion === 'string') {
        completion = {
          node: event.node,
          step: typeof data.step === 'number' ? data.step : undefined,
          prompt: typeof data.prompt === 'string' ? data.prompt : undefined,
          text: data.completion,
          rewards: numericEntries(data.rewards),
        };
      }
      const progress = data.evalProgress as { label?: unknown; done?: unknown; total?: unknown } | undefined;
      if (progress !== null && typeof progress === 'object' && typeof progress.done === 'number' && typeof progress.total === 'number') {
        const label = String(progress.label ?? '');
        if (running?.label !== label) running = { label, done: 0, total: progress.total, startedAt: event.time ?? now() };
        running.done = progress.done;
        running.total = progress.total;
      }
      if (data.eval !== null && typeof data.eval === 'object') {
        evaluationsDone++;
        const t = event.time ?? now();
        if (running) {
          // The trainer waited for this evaluation: its time is not time per step.
          lastEvalSeconds = (t - running.startedAt) / 1000;
          timer.exclude(t - running.startedAt);
          running = undefined;
        }
        const { label, ...rest } = data.eval as Record<string, unknown>;
        const result: EvalResult = { label: typeof label === 'string' ? label : `eval ${evals.length + 1}`, values: numericEntries(rest) };
        const same = evals.findIndex((e) => e.label === result.label);
        if (same >= 0) evals[same] = result;
        else evals.push(result);
      }
      // A sampled completion has its own panel; its event is not repeated as a log line.
      // (Evaluation progress events are debug level: the progress line shows them.)
      if (typeof data.completion !== 'string' && LEVELS.indexOf(event.level) >= minLevel) {
        logs.push({ id: logs.length, time: event.time ?? now(), level: event.level, node: event.node, message: event.message });
      }
      version++;
    },

    pushNodeStates(states) {
      const t = now();
      const list: readonly UiNodeState[] = Array.isArray(states) ? states : Object.values(states);
      nodes = list.map((s) => {
        const samples = rateSamples.get(s.id) ?? [];
        // A sink puts nothing out, and a source takes nothing in: count what the node handles.
        samples.push({ time: t, out: s.itemsIn > 0 ? s.itemsIn : s.itemsOut });
        while (samples.length > 2 && t - samples[0].time > RATE_WINDOW_MS) samples.shift();
        rateSamples.set(s.id, samples);
        const first = samples[0];
        const dt = (t - first.time) / 1000;
        return {
          id: s.id,
          type: s.type,
          status: s.status,
          itemsIn: s.itemsIn,
          itemsOut: s.itemsOut,
          itemsPerSecond: dt > 0 ? (samples[samples.length - 1].out - first.out) / dt : 0,
          queueDepth: Object.values(s.queues ?? {}).reduce((sum, q) => sum + q.depth, 0),
          ...(s.error !== undefined ? { error: s.error } : {}),
        };
      });
      version++;
    },

    snapshot() {
      const t = now();
      let evalProgress: EvalProgressState | undefined;
      if (running) {
        const elapsed = (t - running.startedAt) / 1000;
        const rate = running.done > 0 ? elapsed / running.done : undefined;
        evalProgress = { label: running.label, done: running.done, total: running.total, elapsedSeconds: elapsed, ...(rate !== undefined ? { etaSeconds: rate * (running.total - running.done) } : {}) };
      }
      const evaluationsLeft = Math.max(0, plannedEvaluations - evaluationsDone);
      const perEvaluation = lastEvalSeconds ?? (evalProgress?.etaSeconds !== undefined ? evalProgress.elapsedSeconds + evalProgress.etaSeconds : undefined);
      const evalEtaSeconds = evaluationsEta(evaluationsLeft, evalProgress, perEvaluation);
      const trainEta = timer.etaSeconds(options.totalSteps);
      return {
        title: options.title,
        step: timer.step,
        totalSteps: options.totalSteps,
        elapsedSeconds: (t - startedAt) / 1000,
        secondsPerStep: timer.secondsPerStep(),
        etaSeconds: trainEta === undefined ? undefined : trainEta + (evalEtaSeconds ?? 0),
        evalEtaSeconds,
        evaluationsLeft,
        series: { reward: [...series.reward], loss: [...series.loss], kl: [...series.kl] },
        rewardSeries: Object.fromEntries([...rewardSeries].map(([name, values]) => [name, [...values]])),
        stats: { ...stats, rssBytes: memoryUsage() },
        evalProgress,
        nodes,
        completion,
        utilisation: [...utilisation].map(([node, busy]) => ({ node, busy })),
        staleness: [...staleness],
        evals: [...evals],
        // A new array each time: <Static> notices new lines by the array changing.
        logs: [...logs],
        version,
      };
    },
  };
}

/**
 * Seconds the remaining evaluations will take: the running one at its current rate, and each not yet
 * started as long as `perEvaluation` (the last whole one; the same held-out set each time). Undefined
 * while any of that is unknown.
 */
function evaluationsEta(left: number, running: EvalProgressState | undefined, perEvaluation: number | undefined): number | undefined {
  if (left === 0) return undefined;
  if (running && running.etaSeconds === undefined) return undefined;
  const notStarted = left - (running ? 1 : 0);
  if (notStarted > 0 && perEvaluation === undefined) return undefined;
  return (running?.etaSeconds ?? 0) + notStarted * (perEvaluation ?? 0);
}

function numericEntries(value: unknown): Record<string, number> {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, number] => typeof e[1] === 'number'));
}
