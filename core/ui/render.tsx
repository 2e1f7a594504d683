// Entry point for a TTY: subscribe to the run's streams, keep a view model, and let Ink redraw the
// live area about 10 times a second (only when something changed). Ctrl-C is left to the process:
// nothing here reads stdin, so Ink never puts the terminal in raw mode and the terminal still turns
// Ctrl-C into SIGINT for the engine's handler (abort + checkpoint); `exitOnCtrlC: false` makes sure
// Ink would not swallow it even if raw mode were on.
import { render, type Instance } from 'ink';
import { useEffect, useState } from 'react';
import type { Observable, Subscription } from 'rxjs';
import { RunView } from './components/RunView.js';
import type { MetricRecord, UiEvent, UiNodeStates } from './types.js';
import { createRunViewModel, type RunViewModel } from './view-model.js';

export interface RunUiOptions {
  metrics$: Observable<MetricRecord>;
  events$: Observable<UiEvent>;
  nodeStates$: Observable<UiNodeStates>;
  totalSteps: number;
  /** Evaluations the run will do (for the ETA); see plannedEvaluationsOf. */
  plannedEvaluations?: number;
  title: string;
  /** Milliseconds between redraws. */
  refreshMs?: number;
  stepMetric?: string;
  stdout?: NodeJS.WriteStream;
  stderr?: NodeJS.WriteStream;
  /** Route console.log through Ink so it prints above the live area (default true). */
  patchConsole?: boolean;
}

export interface RunUiHandle {
  /** Draw the final frame, stop listening and release the terminal. */
  unmount(): void;
}

/** `final`: draw the model's state now (the last frame before unmount), not the last sampled one. */
export function RunApp({ model, refreshMs, final = false }: { model: RunViewModel; refreshMs: number; final?: boolean }) {
  const [snapshot, setSnapshot] = useState(() => model.snapshot());
  useEffect(() => {
    let shown = model.snapshot();
    const timer = setInterval(() => {
      const next = model.snapshot();
      // Elapsed time moves every second even when nothing arrives; redraw at least that often.
      if (next.version !== shown.version || Math.floor(next.elapsedSeconds) !== Math.floor(shown.elapsedSeconds)) {
        shown = next;
        setSnapshot(next);
      }
    }, refreshMs);
    return () => clearInterval(timer);
  }, [model, refreshMs]);
  return <RunView snapshot={final ? model.snapshot() : snapshot} />;
}

export function renderRunUi(options: RunUiOptions): RunUiHandle {
  const model = createRunViewModel({ title: options.title, totalSteps: options.totalSteps, plannedEvaluations: options.plannedEvaluations, stepMetric: options.stepMetric });
  const subscriptions: Subscription[] = [
    options.metrics$.subscribe((r) => model.pushMetric(r)),
    options.events$.subscribe((e) => model.pushEvent(e)),
    options.nodeStates$.subscribe((s) => model.pushNodeStates(s)),
  ];
  const refreshMs = options.refreshMs ?? 100;
  const instance: Instance = render(<RunApp model={model} refreshMs={refreshMs} />, {
    ...(options.stdout ? { stdout: options.stdout } : {}),
    ...(options.stderr ? { stderr: options.stderr } : {}),
    exitOnCtrlC: false,
    patchConsole: options.patchConsole ?? true,
    maxFps: Math.max(1, Math.round(1000 / refreshMs)),
  });
  let mounted = true;
  return {
    unmount() {
      if (!mounted) return;
      mounted = false;
      for (const s of subscriptions) s.unsubscribe();
      // The last state, so the final numbers stay on screen after the live area stops. Same root
      // component, so <Static> keeps track of the log lines it already printed.
      instance.rerender(<RunApp model={model} refreshMs={refreshMs} final />);
      instance.unmount();
    },
  };
}
