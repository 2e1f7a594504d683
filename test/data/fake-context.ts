// A NodeContext for calling a node's run() directly in tests: no engine unless given in `services`, outputs always ready.
import type { NodeContext, Services } from '../../core/plugin.js';

export function fakeContext<C>(config: C, options: { baseDir?: string; id?: string; outputReady?: () => Promise<void>; services?: Services } = {}) {
  const abort = new AbortController();
  const events: { level: string; message: string }[] = [];
  const teardown: (() => void | Promise<void>)[] = [];
  const ctx: NodeContext<C> = {
    id: options.id ?? 'test-node',
    config,
    signal: abort.signal,
    metrics: { publish: () => undefined, event: (level, message) => events.push({ level, message }) },
    outDir: '/tmp',
    baseDir: options.baseDir ?? process.cwd(),
    services: options.services ?? {},
    onTeardown: (fn) => teardown.push(fn),
    outputReady: options.outputReady ?? (() => Promise.resolve()),
  };
  return { ctx, abort, events };
}
