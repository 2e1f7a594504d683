import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { CompletionView } from '../../core/ui/components/CompletionView.js';
import { EvalTable } from '../../core/ui/components/EvalTable.js';
import { NodeTable } from '../../core/ui/components/NodeTable.js';
import { ProgressBar } from '../../core/ui/components/ProgressBar.js';
import { RunView } from '../../core/ui/components/RunView.js';
import { Sparklines } from '../../core/ui/components/Sparklines.js';
import { Utilisation } from '../../core/ui/components/Utilisation.js';
import { createRunViewModel } from '../../core/ui/view-model.js';

describe('UI components', () => {
  it('node table shows state, throughput and queue depth per node', () => {
    const { lastFrame } = render(
      <NodeTable
        nodes={[
          { id: 'data', type: 'dataset.synthetic', status: 'done', itemsIn: 0, itemsOut: 64, itemsPerSecond: 0, queueDepth: 0 },
          { id: 'gen', type: 'rollout.generate', status: 'running', itemsIn: 12, itemsOut: 11, itemsPerSecond: 2.25, queueDepth: 3 },
        ]}
      />,
    );
    const lines = lastFrame()!.split('\n');
    expect(lines[0]).toMatch(/^node\s+type\s+state\s+in\s+out\s+items\/s\s+queue/);
    expect(lines[1]).toMatch(/^data\s+dataset\.synthetic\s+done\s+0\s+64\s+-\s+-/);
    expect(lines[2]).toMatch(/^gen\s+rollout\.generate\s+running\s+12\s+11\s+2\.3\s+3/);
  });

  it('progress bar shows step N/M, the bar and the ETA', () => {
    const { lastFrame } = render(<ProgressBar step={50} totalSteps={200} secondsPerStep={1.5} etaSeconds={225} elapsedSeconds={75} width={10} />);
    expect(lastFrame()).toBe('step 50/200 ███░░░░░░░ 25%  1.5s/step  elapsed 1m 15s  eta 3m 45s');
  });

  it('sparklines show each series and its latest value', () => {
    const { lastFrame } = render(<Sparklines series={{ reward: [0, 7], loss: [] }} />);
    const lines = lastFrame()!.split('\n');
    expect(lines[0]).toMatch(/^reward ▁█ +7$/);
    expect(lines[1]).toMatch(/^loss +-$/);
  });

  it('completion view shows rewards and clips long text', () => {
    const text = ['l1', 'l2', 'l3', 'l4', 'l5', 'l6'].join('\n');
    const { lastFrame } = render(<CompletionView completion={{ step: 4, text, rewards: { format: 3, correctness: 0 } }} maxLines={3} />);
    expect(lastFrame()).toBe('latest completion (step 4)  format 3  correctness 0\nl1\nl2\n… (4 more lines)');
    expect(render(<CompletionView />).lastFrame()).toBe('no completion sampled yet');
  });

  it('eval table lines up before and after', () => {
    const { lastFrame } = render(
      <EvalTable
        evals={[
          { label: 'before', values: { accuracy: 0.12, 'pass@4': 0.3 } },
          { label: 'after', values: { accuracy: 0.5 } },
        ]}
      />,
    );
    expect(lastFrame()!.split('\n')).toEqual([
      'eval          accuracy    pass@4',
      'before           12.0%     30.0%',
      'after            50.0%         -',
    ]);
  });

  it('utilisation shows busy % and staleness', () => {
    const { lastFrame } = render(<Utilisation utilisation={[{ node: 'gen', busy: 0.87 }]} staleness={[0, 2, 1]} />);
    expect(lastFrame()).toBe('gen busy 87%  staleness 1 (max 2) ▁█▅');
  });

  it('the run view prints log lines once (Static) above the live area', () => {
    const vm = createRunViewModel({ title: 'my run', totalSteps: 4, now: () => Date.UTC(2026, 0, 1, 12, 0, 0) });
    vm.pushEvent({ level: 'info', node: 'graph', message: 'started' });
    const app = render(<RunView snapshot={vm.snapshot()} />);
    vm.pushMetric({ step: 1, node: 'trainer', values: { loss: 0.5 } });
    vm.pushEvent({ level: 'warn', node: 'trainer', message: 'slow step' });
    app.rerender(<RunView snapshot={vm.snapshot()} />);
    // The testing library's frames hold everything <Static> printed so far, then the live area.
    const frame = app.lastFrame()!;
    expect(frame.match(/12:00:00 graph started/g)).toHaveLength(1);
    expect(frame.match(/12:00:00 trainer slow step/g)).toHaveLength(1);
    expect(frame.indexOf('slow step')).toBeLessThan(frame.indexOf('my run'));
    expect(frame).toContain('step 1/4');
  });
});
