// Progress for a run without a TTY (CI, pipes, log files): one concise line per finished step,
// plus warnings, errors and evaluation results, never any cursor movement.
//   step 12/200 reward 1.53 loss 0.012 kl 0.001 12.3s/step eta 3m 05s
import type { Observable, Subscription } from 'rxjs';
import { formatDuration, formatNumber, formatPercent } from './format.js';
import { StepTimer } from './step-timer.js';
import type { MetricRecord, UiEvent } from './types.js';

export interface PlainProgressOptions {
  metrics$: Observable<MetricRecord>;
  events$: Observable<UiEvent>;
  totalSteps: number;
  title?: string;
  /** The metric whose records mark finished steps. */
  stepMetric?: string;
  /** Values shown on each line, when seen (latest value from any node). */
  show?: string[];
  write?: (line: string) => void;
  now?: () => number;
}

export function createPlainProgress(options: PlainProgressOptions): { unmount(): void } {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const now = options.now ?? Date.now;
  const stepMetric = options.stepMetric ?? 'loss';
  const show = options.show ?? ['reward', 'loss', 'kl'];
  const timer = new StepTimer(now());
  const latest = new Map<string, number>();
  if (options.title) write(options.title);

  const onMetric = (record: MetricRecord) => {
    for (const [k, v] of Object.entries(record.values)) latest.set(k === 'reward_mean' ? 'reward' : k, v);
    if (!(stepMetric in record.values)) return;
    timer.mark(record.step, now());
    const parts = [`step ${record.step}/${options.totalSteps}`];
    for (const name of show) if (latest.has(name)) parts.push(`${name} ${formatNumber(latest.get(name)!)}`);
    const sps = timer.secondsPerStep();
    if (sps !== undefined) parts.push(`${sps.toFixed(1)}s/step`, `eta ${formatDuration(timer.etaSeconds(options.totalSteps)!)}`);
    write(parts.join(' '));
  };

  const onEvent = (event: UiEvent) => {
    const evalData = event.data?.eval as Record<string, unknown> | undefined;
    if (evalData && typeof evalData === 'object') {
      const values = Object.entries(evalData)
        .filter((e): e is [string, number] => typeof e[1] === 'number')
        .map(([k, v]) => `${k} ${k === 'n' ? v : formatPercent(v)}`);
      write(`eval ${String(evalData.label ?? '')} ${values.join(' ')}`.replace(/\s+/g, ' ').trim());
    } else if (event.level === 'warn' || event.level === 'error') {
      write(`${event.level}${event.node ? ` [${event.node}]` : ''}: ${event.message}`);
    }
  };

  const subscriptions: Subscription[] = [options.metrics$.subscribe(onMetric), options.events$.subscribe(onEvent)];
  return {
    unmount() {
      for (const s of subscriptions) s.unsubscribe();
    },
  };
}
