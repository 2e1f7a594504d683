// A NodeContext for calling a node's run() directly: records metrics and events (with their data).
import type { EventLevel, MetricValues, NodeContext, Services } from '../../core/plugin.js';
import tfjsPlugin from '../../engines/tfjs/plugin.js';

export interface RecordedEvent {
  level: EventLevel;
  message: string;
  data?: Record<string, unknown>;
}

/** The built-in engines by name, as the runtime's services offer the registered ones. */
export const builtinEngineServices: Services = {
  rolloutEngines: (name: string) => tfjsPlugin.rolloutEngines?.find((e) => e.name === name),
  modelEngines: (name: string) => tfjsPlugin.modelEngines?.find((e) => e.name === name),
};

export function recordingContext<C>(config: C, options: { baseDir?: string; id?: string; services?: Services } = {}) {
  const abort = new AbortController();
  const events: RecordedEvent[] = [];
  const metrics: { step: number; values: MetricValues }[] = [];
  const teardown: (() => void | Promise<void>)[] = [];
  const ctx: NodeContext<C> = {
    id: options.id ?? 'node',
    config,
    signal: abort.signal,
    metrics: {
      publish: (step, values) => metrics.push({ step, values }),
      event: (level, message, data) => events.push({ level, message, data }),
    },
    outDir: '/tmp',
    baseDir: options.baseDir ?? process.cwd(),
    // As the runtime provides them: the registered engines by name (here the built-in ones).
    services: { ...builtinEngineServices, ...options.services },
    onTeardown: (fn) => teardown.push(fn),
    outputReady: () => Promise.resolve(),
  };
  const runTeardown = async () => {
    for (const fn of teardown.reverse()) await fn();
    teardown.length = 0;
  };
  return { ctx, abort, events, metrics, runTeardown };
}
