import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dumpDom, findChromium, screenshot } from '../../test/tools/chromium.js';
import { decodePng } from '../../test/tools/png.js';
import { pickSamples, renderReport, writeReport } from './html.js';
import { readRunData } from './run-data.js';
import { niceDomain, niceTicks } from './svg-chart.js';
import { trainingTokensPerSecond } from './throughput.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'report-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const STEPS = 20;

/** A run folder as `grpoflow run` leaves it: metrics from trainer, generator, advantages and eval; summary; samples. */
function makeRun(name = 'demo-run'): string {
  const dir = path.join(root, name);
  const lines: object[] = [{ step: 0, node: 'eval', 'eval/accuracy': 0.25, 'eval/pass@4': 0.6 }];
  for (let step = 1; step <= STEPS; step++) {
    lines.push({ step, node: 'rollout', 'rollout/tokens_per_s': 400 + 10 * step, busy: 0.9 });
    lines.push({ step, node: 'advantages', reward: 99, 'rewards/format/mean': 99 }); // not the trainer's: not plotted as reward
    if (step === 10) lines.push({ step, node: 'eval', 'eval/accuracy': 0.3, 'eval/pass@4': 0.7 }); // a periodic evaluation
    lines.push({
      step,
      node: 'train',
      loss: 0.05 / step,
      kl: step === 7 ? 'NaN' : 0.001 * step,
      learning_rate: 5e-4 * (1 - step / STEPS),
      grad_norm: 0.5 + 0.01 * step,
      reward: 1 + step / 10,
      'rewards/format/mean': 2 + step / 20,
      'rewards/correctness/mean': -1 + step / 10,
      'completions/mean_length': 50 - step,
      'completions/min_length': 20,
      'completions/max_length': 72,
      num_tokens: 8000 * step, // cumulative, as TRL logs it
      step_time: 2,
      entropy: 0.08,
    });
  }
  lines.push({ step: STEPS, node: 'eval', 'eval/accuracy': 0.4, 'eval/pass@4': 0.75 });
  const samples: object[] = [];
  for (let step = 0; step < 30; step++) {
    const completion = step === 29 ? '<script>alert(1)</script><answer>8</answer>' : `<reasoning>${step} + 1</reasoning><answer>${step + 1}</answer>`;
    samples.push({ time: 1, node: 'rollout', step, prompt: `What is ${step} + 1?`, completion });
    samples.push({ time: 2, node: 'score', step, prompt: `What is ${step} + 1?`, completion, rewards: { format: 3, correctness: step % 2 ? 3 : -3, total: 3 } });
  }
  const summary = { eval: { before: { step: 0, n: 200, accuracy: 0.25, 'pass@4': 0.6 }, after: { step: STEPS, n: 200, accuracy: 0.4, 'pass@4': 0.75 } }, steps: STEPS, wall_s: 61.8 };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'metrics.jsonl'), lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
  writeFileSync(path.join(dir, 'samples.jsonl'), samples.map((l) => JSON.stringify(l)).join('\n') + '\n');
  writeFileSync(path.join(dir, 'summary.json'), JSON.stringify(summary));
  return dir;
}

const CHARTS = ['reward', 'loss', 'kl', 'learning_rate', 'grad_norm', 'completion_length', 'tokens_per_s', 'eval_accuracy', 'eval'];

describe('HTML report', () => {
  it('reads the run folder and draws every chart the issue lists, each with its points', async () => {
    const dir = makeRun();
    const file = await writeReport(dir);
    expect(file).toBe(path.join(dir, 'report.html'));
    const html = readFileSync(file, 'utf8');
    for (const id of CHARTS) expect(html, id).toContain(`data-chart="${id}"`);
    const points = (id: string) => Number(html.match(new RegExp(`data-chart="${id}" data-points="(\\d+)"`))![1]);
    expect(points('loss')).toBe(STEPS);
    expect(points('reward')).toBe(3 * STEPS); // total, format, correctness: the trainer's, not advantages'
    expect(points('completion_length')).toBe(3 * STEPS);
    expect(points('tokens_per_s')).toBe(2 * STEPS); // generation and training
    expect(points('eval')).toBe(4); // accuracy and pass@4, before and after
    expect(points('eval_accuracy')).toBe(3); // before, step 10, after
    // Self-contained: no script, nothing fetched.
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\//i);
    // Completions are text, never markup.
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    // Metrics not in the named charts still appear, small.
    expect(html).toContain('data-chart="train/entropy"');
    expect(html).toContain('data-chart="rollout/busy"');
  });

  it('spreads at most 12 sampled completions over the run, preferring the scored copy', async () => {
    const data = await readRunData(makeRun('samples-run'));
    const picked = pickSamples(data.samples);
    expect(picked).toHaveLength(12);
    expect(picked[0].step).toBe(0);
    expect(picked.at(-1)!.step).toBe(29);
    expect(picked.every((s) => s.rewards !== undefined)).toBe(true);
  });

  it('says which file and row is broken, and which folder is not a run', async () => {
    const dir = makeRun('broken-run');
    writeFileSync(path.join(dir, 'metrics.jsonl'), '{"step": 1, "node": "t", "loss": 1}\n{"step": 2,\n');
    await expect(readRunData(dir)).rejects.toThrow(`${path.join(dir, 'metrics.jsonl')}:2: not valid JSON`);
    await expect(readRunData(path.join(root, 'nowhere'))).rejects.toThrow('no such run folder');
    const empty = path.join(root, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(readRunData(empty)).rejects.toThrow('no metrics.jsonl');
  });

  it('draws a run without training or evaluation as empty sections, not an error', async () => {
    const dir = path.join(root, 'bare');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'metrics.jsonl'), '');
    const html = renderReport(await readRunData(dir));
    expect(html).toContain('No metrics recorded.');
    expect(html).toContain('No evaluation in this run.');
  });

  it('draws held-out accuracy over the run only when there were periodic evaluations', async () => {
    const dir = makeRun('before-after-only');
    const metrics = readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => !l.startsWith('{"step":10,"node":"eval"'));
    writeFileSync(path.join(dir, 'metrics.jsonl'), metrics.join('\n'));
    const html = renderReport(await readRunData(dir));
    expect(html).not.toContain('data-chart="eval_accuracy"');
    expect(html).toContain('data-chart="eval"');
  });

  it('computes training tokens/s from the growth of the cumulative num_tokens', () => {
    expect(trainingTokensPerSecond(undefined, { step: 1, numTokens: 8000 }, 2)).toBe(4000);
    expect(trainingTokensPerSecond({ step: 2, numTokens: 16000 }, { step: 4, numTokens: 32000 }, 2)).toBe(4000); // logged every 2 steps
    expect(trainingTokensPerSecond({ step: 1, numTokens: 8000 }, { step: 2, numTokens: 8000 }, 2)).toBeUndefined(); // num_iterations: the same batch again
    expect(trainingTokensPerSecond(undefined, { step: 1, numTokens: 8000 }, 0)).toBeUndefined();
  });

  it('puts ticks at 1-2-5 steps and the domain on whole steps', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0.0123, 0.0871)).toEqual([0.02, 0.04, 0.06, 0.08]);
    expect(niceTicks(-0.03, 0.02)).toEqual([-0.03, -0.02, -0.01, 0, 0.01, 0.02]); // an exact 0, not 3.5e-18
    expect(niceDomain(0.0123, 0.0871)).toEqual([0, 0.1]);
    expect(niceDomain(2.35, 2.97)).toEqual([2.2, 3]);
    expect(niceDomain(-0.026, 0.0058)).toEqual([-0.03, 0.01]);
  });

  // Rendered by a real browser: each chart's lines/bars have length on the page, and the screenshot
  // has each series' colour inside that chart's box. On CI Chromium must be there (.ci/run installs it).
  const chromium = findChromium();
  it.skipIf(!chromium && !process.env.CI)('renders in headless Chromium with every plot drawn', async () => {
    expect(chromium, 'chromium is not installed (apt-get install chromium)').toBeDefined();
    const dir = makeRun('browser-run');
    const html = readFileSync(await writeReport(dir), 'utf8');
    // Measure in the page: each chart's box and, per series, the drawn length of its lines and area of its bars.
    const probe = `<script>
      const charts = [...document.querySelectorAll('figure.chart')].map((f) => {
        const box = f.querySelector('svg').getBoundingClientRect();
        const series = [...f.querySelectorAll('g.series')].map((g) => ({
          colour: g.dataset.colour,
          length: [...g.querySelectorAll('polyline')].reduce((s, p) => s + p.getTotalLength(), 0),
          area: [...g.querySelectorAll('rect')].reduce((s, r) => s + r.getBBox().width * r.getBBox().height, 0),
        }));
        return { id: f.dataset.chart, box: { x: box.x + scrollX, y: box.y + scrollY, width: box.width, height: box.height }, series };
      });
      const out = document.createElement('pre');
      out.id = 'measured';
      out.textContent = JSON.stringify({ height: document.documentElement.scrollHeight, charts });
      document.body.append(out);
    </script>`;
    const page = path.join(dir, 'probe.html');
    writeFileSync(page, html.replace('</body>', `${probe}</body>`));
    const width = 1400;
    const dom = dumpDom(chromium!, page, width, 1000);
    const measured = JSON.parse(
      dom
        .match(/<pre id="measured">(.*?)<\/pre>/s)![1]
        .replace(/&quot;/g, '"')
        .replace(/&amp;/g, '&'),
    ) as { height: number; charts: { id: string; box: { x: number; y: number; width: number; height: number }; series: { colour: string; length: number; area: number }[] }[] };
    const byId = new Map(measured.charts.map((c) => [c.id, c]));
    for (const id of CHARTS) {
      const chart = byId.get(id);
      expect(chart, id).toBeDefined();
      expect(chart!.box.width, id).toBeGreaterThan(200);
      for (const s of chart!.series) expect(s.length + s.area, `${id} ${s.colour}`).toBeGreaterThan(50);
    }

    const png = path.join(dir, 'shot.png');
    screenshot(chromium!, page, png, width, measured.height);
    const image = decodePng(readFileSync(png));
    expect(image.width).toBe(width);
    const hex = (i: number) => '#' + [0, 1, 2].map((k) => image.pixels[i * 4 + k].toString(16).padStart(2, '0')).join('');
    for (const id of CHARTS) {
      const { box, series } = byId.get(id)!;
      const counts = new Map<string, number>();
      for (let y = Math.floor(box.y); y < Math.min(image.height, box.y + box.height); y++) {
        for (let x = Math.floor(box.x); x < box.x + box.width; x++) {
          const colour = hex(y * image.width + x);
          counts.set(colour, (counts.get(colour) ?? 0) + 1);
        }
      }
      // Every series' exact colour is on screen inside its chart (a 2 px line leaves hundreds of such pixels).
      for (const s of series) expect(counts.get(s.colour) ?? 0, `${id}: pixels of ${s.colour}`).toBeGreaterThan(40);
    }
  });
});
