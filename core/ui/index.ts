// The terminal UI's public surface. `renderUi` is what `grpoflow run` calls when stdout is a TTY.
import type { Observable } from 'rxjs';
import { renderRunUi, type RunUiHandle } from './render.js';
import { plannedEvaluationsOf, totalStepsOf } from './total-steps.js';
import type { MetricRecord, UiEvent, UiNodeStates } from './types.js';

export { renderRunUi, RunApp, type RunUiHandle, type RunUiOptions } from './render.js';
export { createPlainProgress, type PlainProgressOptions } from './plain-progress.js';
export { createRunViewModel, type RunSnapshot, type RunViewModel, type RunViewModelOptions, type NodeRow, type LogLine } from './view-model.js';
export { plannedEvaluationsOf, totalStepsOf } from './total-steps.js';
export type * from './types.js';

/** A running graph as the CLI holds it (the runtime's RunHandle fits). */
export interface RunStreams {
  metrics$: Observable<MetricRecord>;
  events$: Observable<UiEvent>;
  nodeStates$: Observable<UiNodeStates>;
}

/** Draw the live UI for a run: title from the graph name, total steps from the trainer's config, evaluations from the eval nodes'. */
export function renderUi(handle: RunStreams, info: { graph: { name: string; nodes: readonly { type: string; config: unknown }[] }; outDir: string }): RunUiHandle {
  const totalSteps = totalStepsOf(info.graph.nodes);
  return renderRunUi({
    metrics$: handle.metrics$,
    events$: handle.events$,
    nodeStates$: handle.nodeStates$,
    totalSteps,
    plannedEvaluations: plannedEvaluationsOf(info.graph.nodes, totalSteps),
    title: `grpoflow · ${info.graph.name}  →  ${info.outDir}`,
  });
}
