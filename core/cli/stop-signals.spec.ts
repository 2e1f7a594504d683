import { describe, expect, it } from 'vitest';
import { SIGNAL_EXIT_CODE, watchStopSignals, type StopSignal } from './stop-signals.js';

describe('stop signals', () => {
  it('the first signal stops gracefully; a second Ctrl-C exits at once, a repeated SIGTERM/SIGHUP is ignored', () => {
    for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as StopSignal[]) {
      const stops: string[] = [];
      const exits: number[] = [];
      let written = '';
      const watch = watchStopSignals({ stop: (s) => stops.push(s), exitNow: (code) => exits.push(code), write: (t) => (written += t), parentPollMs: 0 });
      try {
        process.emit(signal, signal);
        expect(stops).toEqual([signal]);
        expect(watch.received).toBe(signal);
        expect(exits).toEqual([]);
        expect(written).toContain('writing a checkpoint');
        process.emit('SIGTERM', 'SIGTERM'); // a repeated SIGTERM/SIGHUP (process group + launcher) changes nothing
        process.emit('SIGHUP', 'SIGHUP');
        expect(exits).toEqual([]);
        process.emit('SIGINT', 'SIGINT');
        expect(exits).toEqual([SIGNAL_EXIT_CODE.SIGINT]);
        expect(stops).toHaveLength(1);
      } finally {
        watch.dispose();
      }
    }
    expect(SIGNAL_EXIT_CODE).toEqual({ SIGINT: 130, SIGTERM: 143, SIGHUP: 129 });
  });

  it('dispose removes the handlers', () => {
    const before = process.listenerCount('SIGTERM');
    const watch = watchStopSignals({ stop: () => undefined, parentPollMs: 0 });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    watch.dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
