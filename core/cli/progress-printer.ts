// Plain progress lines for `run --no-tui` (or no TTY): one line per metrics record, and events at
// info level and above.
import type { Subscription } from 'rxjs';
import type { RunHandle } from '../runtime/run-graph.js';

function formatValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? v.toFixed(4) : v.toExponential(3);
}

export function printProgress(handle: Pick<RunHandle, 'metrics$' | 'events$'>, write: (line: string) => void): Subscription {
  const sub = handle.metrics$.subscribe((m) => {
    const values = Object.entries(m.values)
      .map(([k, v]) => `${k}=${formatValue(v)}`)
      .join(' ');
    write(`step ${m.step} ${m.node} ${values}`);
  });
  sub.add(
    handle.events$.subscribe((e) => {
      if (e.level === 'debug') return;
      // The run's failure is printed once, by the command, when the run ends.
      if (e.level === 'error' && e.node === 'graph') return;
      write(`${e.level === 'info' ? '' : e.level.toUpperCase() + ' '}[${e.node}] ${e.message}`);
    }),
  );
  return sub;
}
