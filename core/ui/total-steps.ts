// How many optimiser steps a graph will run, read from its trainer's config, for the progress bar.

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
