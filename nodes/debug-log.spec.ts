import { lastValueFrom, of, type Observable } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { recordingContext } from '../test/nodes/node-context.js';
import { debugLog } from './debug-log.js';

describe('debug.log', () => {
  it('logs each item with its label and index, cut at maxChars', async () => {
    const recorded = recordingContext(debugLog.config.parse({ label: 'row', maxChars: 5 }));
    const result = debugLog.run(recorded.ctx, { items: of('short', { a: 'longer' }) }) as { done: Observable<unknown> };
    await lastValueFrom(result.done, { defaultValue: undefined });
    expect(recorded.events.map((e) => [e.level, e.message])).toEqual([
      ['info', 'row 0: short'],
      ['info', 'row 1: {"a":…'],
    ]);
  });
});
