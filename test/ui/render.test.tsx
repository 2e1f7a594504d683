import { EventEmitter } from 'node:events';
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { createPlainProgress } from '../../core/ui/plain-progress.js';
import { renderRunUi } from '../../core/ui/render.js';
import type { MetricRecord, UiEvent, UiNodeStates } from '../../core/ui/types.js';

/** A stand-in terminal that records what Ink writes. */
class FakeTty extends EventEmitter {
  columns = 100;
  rows = 40;
  isTTY = true;
  written: string[] = [];
  write(chunk: string) {
    this.written.push(chunk);
    return true;
  }
}

const stripAnsi = (s: string) => s.replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');

describe('renderRunUi', () => {
  it('renders from the streams, throttled, and leaves the final frame on unmount', async () => {
    const metrics$ = new Subject<MetricRecord>();
    const events$ = new Subject<UiEvent>();
    const nodeStates$ = new Subject<UiNodeStates>();
    const stdout = new FakeTty();
    const ui = renderRunUi({ metrics$, events$, nodeStates$, totalSteps: 3, title: 'test run', refreshMs: 20, patchConsole: false, stdout: stdout as unknown as NodeJS.WriteStream });
    nodeStates$.next([{ id: 'trainer', type: 'train.grpo', status: 'running', itemsIn: 1, itemsOut: 1 }]);
    for (let step = 1; step <= 3; step++) metrics$.next({ step, node: 'trainer', values: { loss: 1 / step, reward: step } });
    events$.next({ level: 'info', node: 'eval', message: 'eval done', data: { eval: { label: 'after', accuracy: 0.5 } } });
    await new Promise((r) => setTimeout(r, 100));
    ui.unmount();
    const screen = stripAnsi(stdout.written.join(''));
    expect(screen).toContain('test run');
    expect(screen).toContain('step 3/3');
    expect(screen).toMatch(/trainer\s+train\.grpo\s+running/);
    expect(screen).toContain('after            50.0%');
    // No intermediate frames for steps 1 and 2: the three metrics arrived within one refresh.
    expect(screen).not.toContain('step 1/3');
    expect(metrics$.observed).toBe(false);
  });
});

describe('createPlainProgress', () => {
  it('prints one line per step, plus evaluations and warnings', () => {
    const metrics$ = new Subject<MetricRecord>();
    const events$ = new Subject<UiEvent>();
    const lines: string[] = [];
    let t = 0;
    const progress = createPlainProgress({ metrics$, events$, totalSteps: 200, title: 'run', write: (l) => lines.push(l), now: () => t });
    metrics$.next({ step: 12, node: 'rewards', values: { reward: 1.53 } });
    t = 12 * 12_300;
    metrics$.next({ step: 12, node: 'trainer', values: { loss: 0.012, kl: 0.001 } });
    events$.next({ level: 'info', node: 'x', message: 'chatter' });
    events$.next({ level: 'warn', node: 'trainer', message: 'nan loss skipped' });
    events$.next({ level: 'info', message: 'eval', data: { eval: { label: 'before', accuracy: 0.25, 'pass@4': 0.5 } } });
    progress.unmount();
    metrics$.next({ step: 13, node: 'trainer', values: { loss: 0.01 } });
    expect(lines).toEqual([
      'run',
      'step 12/200 reward 1.53 loss 0.012 kl 0.001 12.3s/step eta 38m 32s',
      'warn [trainer]: nan loss skipped',
      'eval before accuracy 25.0% pass@4 50.0%',
    ]);
  });
});
