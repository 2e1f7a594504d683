// How many optimiser steps a graph will run, read from its trainer's config, for the progress bar; and
// how many evaluations, read from its eval.accuracy nodes' configs, for an ETA that includes them.

const STEP_KEYS = ['max_steps', 'total_steps', 'steps'] as const;

/**
 * The first of `max_steps`, `total_steps`, `steps` found in a `train.*` node's config (then in any
 * node's); 0 when none says (the progress bar then shows the step without a total).
 */
export function totalStepsOf(nodes: readonly { type: string; config: unknown }[]): number {
  const ordered = [...nodes.filter((n) => n.type.split('/').at(-1)!.startsWith('train.')), ...nodes];
  for (const node of ordered) {
    const config = node.config;
    if (config === null || typeof config !== 'object') continue;
    for (const key of STEP_KEYS) {
      const value = (config as Record<string, unknown>)[key];
      if (typeof value === 'number' && Number.isInteger(value) && value > 0) return value;
    }
  }
  return 0;
}

/**
 * Evaluations the graph's `eval.accuracy` nodes will run over `totalSteps` steps: `before`, one every
 * `every` steps, and `after` (which reuses a periodic one that fell on the last step).
 */
export function plannedEvaluationsOf(nodes: readonly { type: string; config: unknown }[], totalSteps: number): number {
  let count = 0;
  for (const node of nodes) {
    if (node.type.split('/').at(-1) !== 'eval.accuracy' || node.config === null || typeof node.config !== 'object') continue;
    const { before, after, every } = node.config as { before?: unknown; after?: unknown; every?: unknown };
    const periodic = typeof every === 'number' && every > 0 && totalSteps > 0 ? Math.floor(totalSteps / every) : 0;
    count += (before === false ? 0 : 1) + periodic;
    if (after !== false && !(periodic > 0 && totalSteps % (every as number) === 0)) count += 1;
  }
  return count;
}
