// The run's state as the UI shows it, built from metric records, events and node-state snapshots.
// Pure and synchronous: the Ink app samples `snapshot()` on a timer (about 10 times a second), so a
// burst of metrics costs one render, not one per record.
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
  now?: () => number;
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

export interface RunSnapshot {
  title: string;
  step: number;
  totalSteps: number;
  elapsedSeconds: number;
  secondsPerStep?: number;
  etaSeconds?: number;
  series: { reward: number[]; loss: number[]; kl: number[] };
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
      }
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
      if (data.eval !== null && typeof data.eval === 'object') {
        const { label, ...rest } = data.eval as Record<string, unknown>;
        const result: EvalResult = { label: typeof label === 'string' ? label : `eval ${evals.length + 1}`, values: numericEntries(rest) };
        const same = evals.findIndex((e) => e.label === result.label);
        if (same >= 0) evals[same] = result;
        else evals.push(result);
      }
      // A sampled completion has its own panel; its event is not repeated as a log line.
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
      return {
        title: options.title,
        step: timer.step,
        totalSteps: options.totalSteps,
        elapsedSeconds: (now() - startedAt) / 1000,
        secondsPerStep: timer.secondsPerStep(),
        etaSeconds: timer.etaSeconds(options.totalSteps),
        series: { reward: [...series.reward], loss: [...series.loss], kl: [...series.kl] },
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

function numericEntries(value: unknown): Record<string, number> {
  if (value === null || typeof value !== 'object') return {};
  return Object.fromEntries(Object.entries(value).filter((e): e is [string, number] => typeof e[1] === 'number'));
}
