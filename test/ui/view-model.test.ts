import { describe, expect, it } from 'vitest';
import { formatDuration, formatNumber, progressBar, sparkline } from '../../core/ui/format.js';
import { createRunViewModel } from '../../core/ui/view-model.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('formatters', () => {
  it('draws sparklines scaled to the series range', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe('▁▂▃▄▅▆▇█');
    expect(sparkline([5, 5, 5])).toBe('▁▁▁');
    expect(sparkline([1, NaN, 2])).toBe('▁ █');
    expect(sparkline([])).toBe('');
  });
  it('formats bars, durations and numbers', () => {
    expect(progressBar(0.5, 10)).toBe('█████░░░░░');
    expect(progressBar(2, 4)).toBe('████');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(185)).toBe('3m 05s');
    expect(formatDuration(3720)).toBe('1h 02m');
    expect(formatNumber(0.0123456)).toBe('0.01235');
    expect(formatNumber(1.5)).toBe('1.5');
  });
});

describe('run view model', () => {
  it('tracks steps, seconds per step and ETA from the step metric', () => {
    const c = clock();
    const vm = createRunViewModel({ title: 't', totalSteps: 10, now: c.now });
    c.advance(2000);
    vm.pushMetric({ step: 1, node: 'reward', values: { reward: 1 } });
    expect(vm.snapshot().step).toBe(0);
    vm.pushMetric({ step: 1, node: 'trainer', values: { loss: 0.5, kl: 0 } });
    c.advance(2000);
    vm.pushMetric({ step: 2, node: 'trainer', values: { loss: 0.4, kl: 0.01 } });
    const s = vm.snapshot();
    expect(s.step).toBe(2);
    expect(s.secondsPerStep).toBe(2);
    expect(s.etaSeconds).toBe(16);
    // A `reward` outside the trainer's step records (advantage.group publishes one too) is not a point.
    expect(s.series).toEqual({ reward: [], loss: [0.5, 0.4], kl: [0, 0.01] });
    vm.pushMetric({ step: 3, node: 'trainer', values: { loss: 0.3, kl: 0.02, reward: 2 } });
    expect(vm.snapshot().series.reward).toEqual([2]);
  });

  it('keeps the last N values per series', () => {
    const vm = createRunViewModel({ title: 't', totalSteps: 100, historyLength: 3 });
    for (let i = 1; i <= 5; i++) vm.pushMetric({ step: i, node: 'r', values: { loss: 0, reward_mean: i } });
    expect(vm.snapshot().series.reward).toEqual([3, 4, 5]);
  });

  it('computes items/s and queue depth from node-state snapshots', () => {
    const c = clock();
    const vm = createRunViewModel({ title: 't', totalSteps: 1, now: c.now });
    const state = (out: number) => ({
      gen: { id: 'gen', type: 'rollout.generate', status: 'running' as const, itemsIn: out, itemsOut: out, queues: { prompts: { from: 'data.prompts', depth: 3, capacity: 4 }, policy: { depth: 1 } } },
    });
    vm.pushNodeStates(state(0));
    c.advance(2000);
    vm.pushNodeStates(state(10));
    expect(vm.snapshot().nodes).toEqual([{ id: 'gen', type: 'rollout.generate', status: 'running', itemsIn: 10, itemsOut: 10, itemsPerSecond: 5, queueDepth: 4 }]);
  });

  it('rates a sink by what it takes in and a source by what it puts out', () => {
    const c = clock();
    const vm = createRunViewModel({ title: 't', totalSteps: 1, now: c.now });
    const states = (n: number) => [
      { id: 'data', type: 'dataset.synthetic', status: 'running' as const, itemsIn: 0, itemsOut: 4 * n },
      { id: 'trainer', type: 'train.grpo', status: 'running' as const, itemsIn: n, itemsOut: 0 },
    ];
    vm.pushNodeStates(states(0));
    c.advance(1000);
    vm.pushNodeStates(states(3));
    expect(vm.snapshot().nodes.map((n) => [n.id, n.itemsPerSecond])).toEqual([
      ['data', 12],
      ['trainer', 3],
    ]);
  });

  it('takes completions, evaluations, utilisation and staleness from events and metrics', () => {
    const vm = createRunViewModel({ title: 't', totalSteps: 1 });
    vm.pushEvent({ level: 'info', node: 'gen', message: 'sample', data: { step: 3, completion: '<answer>8</answer>', rewards: { format: 3, correct: 0, bad: 'x' } } });
    vm.pushEvent({ level: 'info', node: 'eval', message: 'eval before', data: { eval: { label: 'before', accuracy: 0.1, 'pass@4': 0.3 } } });
    vm.pushEvent({ level: 'info', node: 'eval', message: 'eval before (again)', data: { eval: { label: 'before', accuracy: 0.2 } } });
    vm.pushEvent({ level: 'debug', message: 'noise' });
    vm.pushEvent({ level: 'warn', node: 'trainer', message: 'grad norm clipped' });
    vm.pushMetric({ step: 1, node: 'gen', values: { busy: 0.9 } });
    vm.pushMetric({ step: 1, node: 'trainer', values: { busy: 0.5, staleness: 1 } });
    vm.pushMetric({ step: 2, node: 'trainer', values: { 'policy/staleness': 2 } });
    const s = vm.snapshot();
    expect(s.completion).toEqual({ node: 'gen', step: 3, prompt: undefined, text: '<answer>8</answer>', rewards: { format: 3, correct: 0 } });
    expect(s.evals).toEqual([{ label: 'before', values: { accuracy: 0.2 } }]);
    expect(s.logs.map((l) => l.message)).toEqual(['eval before', 'eval before (again)', 'grad norm clipped']);
    expect(s.utilisation).toEqual([
      { node: 'gen', busy: 0.9 },
      { node: 'trainer', busy: 0.5 },
    ]);
    expect(s.staleness).toEqual([1, 2]);
  });
});
