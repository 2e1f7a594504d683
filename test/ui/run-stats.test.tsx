// The TUI's per-reward sparklines, run numbers (lr, grad norm, tokens/s, completion length, memory),
// evaluation progress, and an ETA that includes the evaluations.
import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { EvalProgressLine } from '../../core/ui/components/EvalProgressLine.js';
import { ProgressBar } from '../../core/ui/components/ProgressBar.js';
import { RunStatsLine } from '../../core/ui/components/RunStatsLine.js';
import { RunView } from '../../core/ui/components/RunView.js';
import { formatBytes } from '../../core/ui/format.js';
import { plannedEvaluationsOf } from '../../core/ui/total-steps.js';
import { createRunViewModel } from '../../core/ui/view-model.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const MB = 1024 ** 2;

describe('run numbers and per-reward curves', () => {
  it('keeps one series per reward function and the latest lr, grad norm, tokens/s, length and RSS', () => {
    const vm = createRunViewModel({ title: 't', totalSteps: 10, memoryUsage: () => 812 * MB });
    vm.pushMetric({ step: 1, node: 'rollout', values: { 'rollout/tokens_per_s': 495.8 } });
    vm.pushMetric({ step: 1, node: 'advantages', values: { 'rewards/format/mean': 99 } }); // not a step record
    for (let step = 1; step <= 3; step++) {
      vm.pushMetric({
        step,
        node: 'train',
        values: { loss: 0.1, 'rewards/format/mean': 2 + step, 'rewards/correctness/mean': -step, learning_rate: 5e-4 / step, grad_norm: 0.1 * step, num_tokens: 6000 * step, step_time: step, 'completions/mean_length': 40 + step },
      });
    }
    const s = vm.snapshot();
    expect(s.rewardSeries).toEqual({ format: [3, 4, 5], correctness: [-1, -2, -3] });
    // num_tokens is cumulative: the last step added 6000 tokens in 3 s.
    expect(s.stats).toEqual({ learningRate: 5e-4 / 3, gradNorm: 0.30000000000000004, generationTokensPerSecond: 495.8, trainingTokensPerSecond: 2000, completionLength: 43, rssBytes: 812 * MB });
  });

  it('shows them: a sparkline per reward function under the reward, and one line of numbers', () => {
    const vm = createRunViewModel({ title: 'run', totalSteps: 4, now: () => 0, memoryUsage: () => 1.5 * 1024 * MB });
    vm.pushMetric({ step: 1, node: 'train', values: { loss: 0.5, reward: 1, 'rewards/correctness/mean': -3, learning_rate: 5e-4, grad_norm: 0.09 } });
    vm.pushMetric({ step: 2, node: 'train', values: { loss: 0.4, reward: 2, 'rewards/correctness/mean': 3, learning_rate: 4e-4, grad_norm: 0.1 } });
    const lines = render(<RunView snapshot={vm.snapshot()} />).lastFrame()!.split('\n');
    const row = (label: string) => lines.find((l) => l.includes(label))!;
    expect(row('reward ')).toMatch(/reward\s+▁█\s+2 /);
    expect(row('correctness')).toMatch(/│ {3}correctness ▁█\s+3 /); // indented under reward, its own scale
    expect(row('lr ')).toMatch(/lr 4.00e-4 {2}grad norm 0\.1 {2}rss 1\.50 GB/);
  });

  it('formats the numbers line and memory', () => {
    expect(formatBytes(812 * MB)).toBe('812 MB');
    expect(formatBytes(2.5 * 1024 * MB)).toBe('2.50 GB');
    const { lastFrame } = render(
      <RunStatsLine stats={{ learningRate: 4.8e-4, gradNorm: 0.0981, generationTokensPerSecond: 495.79, trainingTokensPerSecond: 3412.2, completionLength: 51.23, rssBytes: 812 * MB }} />,
    );
    expect(lastFrame()).toBe('lr 4.80e-4  grad norm 0.0981  gen 496 tok/s  train 3412 tok/s  length 51.23  rss 812 MB');
    expect(render(<RunStatsLine stats={{ rssBytes: 100 * MB }} />).lastFrame()).toBe('rss 100 MB');
  });
});

describe('evaluation progress and the ETA', () => {
  it('counts the evaluations a graph plans', () => {
    const evalNode = (config: object) => ({ type: 'eval.accuracy', config: { before: true, after: true, every: 0, ...config } });
    expect(plannedEvaluationsOf([{ type: 'train.grpo', config: {} }, evalNode({})], 200)).toBe(2);
    expect(plannedEvaluationsOf([evalNode({ every: 50 })], 200)).toBe(5); // before, 50, 100, 150, 200 (= after)
    expect(plannedEvaluationsOf([evalNode({ every: 60 })], 200)).toBe(5); // before, 60, 120, 180, after
    expect(plannedEvaluationsOf([evalNode({ before: false })], 200)).toBe(1);
    expect(plannedEvaluationsOf([{ type: 'train.grpo', config: {} }], 200)).toBe(0);
  });

  it('times the running evaluation, adds the ones left to the ETA, and leaves evaluation time out of s/step', () => {
    const c = clock();
    const vm = createRunViewModel({ title: 't', totalSteps: 10, plannedEvaluations: 2, now: c.now, memoryUsage: () => 0 });
    const progress = (done: number) => vm.pushEvent({ time: c.now(), level: 'debug', node: 'eval', message: 'eval before', data: { evalProgress: { label: 'before', done, total: 100 } } });
    progress(0);
    let s = vm.snapshot();
    expect(s.evalProgress).toEqual({ label: 'before', done: 0, total: 100, elapsedSeconds: 0 });
    expect(s.evalEtaSeconds).toBeUndefined(); // no rate yet
    expect(s.logs).toEqual([]); // progress is not a log line
    c.advance(10_000);
    progress(50);
    s = vm.snapshot();
    expect(s.evalProgress).toEqual({ label: 'before', done: 50, total: 100, elapsedSeconds: 10, etaSeconds: 10 });
    expect(s.evalEtaSeconds).toBe(10 + 20); // the rest of this one, and "after" as long as this one will take
    expect(s.evaluationsLeft).toBe(2);
    c.advance(10_000);
    vm.pushEvent({ time: c.now(), level: 'info', node: 'eval', message: 'eval before', data: { eval: { label: 'before', accuracy: 0.2 } } });
    // Training starts after the evaluation: the first step took 2 s, not 22 s.
    c.advance(2000);
    vm.pushMetric({ step: 1, node: 'train', values: { loss: 1 } });
    s = vm.snapshot();
    expect(s.evalProgress).toBeUndefined();
    expect(s.secondsPerStep).toBe(2);
    expect(s.evaluationsLeft).toBe(1);
    expect(s.evalEtaSeconds).toBe(20);
    expect(s.etaSeconds).toBe(9 * 2 + 20);
    // The last step: only "after" is left.
    c.advance(18_000);
    vm.pushMetric({ step: 10, node: 'train', values: { loss: 1 } });
    expect(vm.snapshot().etaSeconds).toBe(20);
    vm.pushEvent({ time: c.now(), level: 'info', node: 'eval', message: 'eval after', data: { eval: { label: 'after', accuracy: 0.4 } } });
    s = vm.snapshot();
    expect([s.evaluationsLeft, s.evalEtaSeconds, s.etaSeconds]).toEqual([0, undefined, 0]);
  });

  it('shows the evaluation’s share of the ETA, or says the ETA leaves evaluation out while it is unknown', () => {
    const bar = (props: { evalEtaSeconds?: number; evaluationsLeft?: number }) =>
      render(<ProgressBar step={2} totalSteps={10} secondsPerStep={2} etaSeconds={36} elapsedSeconds={24} width={10} {...props} />).lastFrame();
    expect(bar({ evalEtaSeconds: 20, evaluationsLeft: 1 })).toBe('step 2/10 ██░░░░░░░░ 20%  2.0s/step  elapsed 24s  eta 36s (eval 20s)');
    expect(bar({ evaluationsLeft: 1 })).toBe('step 2/10 ██░░░░░░░░ 20%  2.0s/step  elapsed 24s  eta 36s + eval');
    expect(bar({})).toBe('step 2/10 ██░░░░░░░░ 20%  2.0s/step  elapsed 24s  eta 36s');
    expect(render(<EvalProgressLine progress={{ label: 'after', done: 64, total: 200, elapsedSeconds: 12, etaSeconds: 25.5 }} width={10} />).lastFrame()).toBe(
      'eval after ███░░░░░░░ 64/200 samples  elapsed 12s  left 26s',
    );
    expect(render(<EvalProgressLine />).lastFrame()).toBe('');
  });
});
