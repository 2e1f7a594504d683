// debug.log: logs every item of a stream to the run's events (and so to OUT/events.log).
import { tap } from 'rxjs';
import { z } from 'zod';
import { defineNode, streamPort } from '../core/plugin.js';

/** Accepts a stream of any port type (the type checker treats the name `any` as a wildcard). */
const anyStream = streamPort<unknown>('any', 'A stream of any item type.');

export const debugLog = defineNode({
  type: 'debug.log',
  version: 1,
  description: 'Logs every item of a stream to the run events.',
  inputs: { items: { type: anyStream, description: 'The stream to log.' } },
  outputs: {},
  config: z.strictObject({
    /** Text before each logged item. */
    label: z.string().default('item'),
    level: z.enum(['debug', 'info', 'warn']).default('info'),
    /** Longest logged text; longer items are cut with `…`. */
    maxChars: z.number().int().min(1).default(500),
  }),
  run(ctx, inputs) {
    let index = 0;
    return {
      done: inputs.items.pipe(
        tap((item) => {
          const text = typeof item === 'string' ? item : JSON.stringify(item);
          const shown = text.length > ctx.config.maxChars ? text.slice(0, ctx.config.maxChars) + '…' : text;
          ctx.metrics.event(ctx.config.level, `${ctx.config.label} ${index++}: ${shown}`);
        }),
      ),
    };
  },
});
