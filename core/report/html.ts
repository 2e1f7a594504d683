// OUT/report.html: one self-contained page (inline CSS and SVG, no script, nothing fetched) with the
// run's curves, its evaluation before and after training, and sampled completions. Written at the end
// of every `grpoflow run` and by `grpoflow report RUN_DIR`, from the files in the run folder.
import path from 'node:path';
import { writeFileAtomic } from '../grpo/checkpoint.js';
import { readRunData, type RunData, type SampleRecord, type Series } from './run-data.js';
import { trainingTokensPerSecond } from './throughput.js';
import { barChart, escapeHtml, formatTick, lineChart, type LineSeries } from './svg-chart.js';

export const REPORT_FILE = 'report.html';

/** Most sampled completions shown (spread over the run, first and last included). */
const MAX_SAMPLES = 12;

const REWARD_MEAN = /^rewards\/(.+)\/mean$/;

/** The node whose records carry `loss`: the trainer, whose per-step curves the report plots. */
function trainerNode(data: RunData): string | undefined {
  let best: string | undefined;
  for (const [node, byName] of data.series) {
    const n = byName.get('loss')?.length ?? 0;
    if (n > 0 && (best === undefined || n > data.series.get(best)!.get('loss')!.length)) best = node;
  }
  return best;
}

/** A metric's points: from the trainer when it publishes it, else from the node with the most points. */
function pick(data: RunData, name: string, trainer: string | undefined, used: Set<string>): Series | undefined {
  const fromTrainer = trainer !== undefined ? data.series.get(trainer)?.get(name) : undefined;
  let node = fromTrainer ? trainer : undefined;
  if (!node) {
    for (const [id, byName] of data.series) {
      const n = byName.get(name)?.length ?? 0;
      if (n > 0 && (node === undefined || n > data.series.get(node)!.get(name)!.length)) node = id;
    }
  }
  if (node === undefined) return undefined;
  used.add(`${node}/${name}`);
  return data.series.get(node)!.get(name);
}

interface ChartSpec {
  id: string;
  title: string;
  series: LineSeries[];
}

function chartSpecs(data: RunData, used: Set<string>): ChartSpec[] {
  const trainer = trainerNode(data);
  const line = (name: string, label = name, dashed = false): LineSeries[] => {
    const points = pick(data, name, trainer, used);
    return points ? [{ name: label, points, dashed }] : [];
  };
  const trainerNames = trainer ? [...data.series.get(trainer)!.keys()] : [];
  const rewardNames = trainerNames.filter((n) => REWARD_MEAN.test(n));
  const tokensPerSecond = [...line('rollout/tokens_per_s', 'generation')];
  // Training throughput: new tokens (num_tokens is cumulative) over the step's time.
  const tokens = trainer ? data.series.get(trainer)!.get('num_tokens') : undefined;
  const stepTime = trainer ? data.series.get(trainer)!.get('step_time') : undefined;
  if (tokens && stepTime && trainer) {
    const time = new Map(stepTime);
    const points: [number, number][] = [];
    tokens.forEach(([step, numTokens], i) => {
      const previous = i > 0 ? { step: tokens[i - 1][0], numTokens: tokens[i - 1][1] } : undefined;
      const rate = trainingTokensPerSecond(previous, { step, numTokens }, time.get(step) ?? NaN);
      if (rate !== undefined) points.push([step, rate]);
    });
    tokensPerSecond.push({ name: 'training', points });
    used.add(`${trainer}/num_tokens`).add(`${trainer}/step_time`);
  }
  return [
    {
      id: 'reward',
      title: 'Reward per function (mean over the batch)',
      series: [...line('reward', 'total', true), ...rewardNames.flatMap((n) => line(n, n.match(REWARD_MEAN)![1]))],
    },
    { id: 'loss', title: 'Loss', series: line('loss') },
    { id: 'kl', title: 'KL to the reference', series: line('kl') },
    { id: 'learning_rate', title: 'Learning rate', series: line('learning_rate') },
    { id: 'grad_norm', title: 'Gradient norm (before clipping)', series: line('grad_norm') },
    {
      id: 'completion_length',
      title: 'Completion length (tokens)',
      series: [...line('completions/mean_length', 'mean'), ...line('completions/min_length', 'min', true), ...line('completions/max_length', 'max', true)],
    },
    { id: 'tokens_per_s', title: 'Tokens per second', series: tokensPerSecond },
    // Over the run only with periodic evaluations: before and after alone are the bars above.
    { id: 'eval_accuracy', title: 'Held-out accuracy', series: (pick(data, 'eval/accuracy', trainer, used)?.length ?? 0) > 2 ? line('eval/accuracy', 'accuracy') : [] },
  ];
}

type EvalEntry = Record<string, unknown>;

function evalSection(summary: Record<string, unknown>): string {
  const evals = (summary.eval ?? {}) as Record<string, EvalEntry | Record<string, EvalEntry>>;
  const rows: [string, EvalEntry][] = [];
  if (evals.before) rows.push(['before', evals.before as EvalEntry]);
  for (const [step, entry] of Object.entries((evals.periodic ?? {}) as Record<string, EvalEntry>)) rows.push([`step ${step}`, entry]);
  if (evals.after) rows.push(['after', evals.after as EvalEntry]);
  if (rows.length === 0) return '<section><h2>Evaluation</h2><p class="none">No evaluation in this run.</p></section>';
  const columns = [...new Set(rows.flatMap(([, e]) => Object.keys(e).filter((k) => typeof e[k] === 'number')))];
  const table = `<table class="eval"><thead><tr><th></th>${columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${rows
    .map(([label, e]) => `<tr><th>${escapeHtml(label)}</th>${columns.map((c) => `<td>${typeof e[c] === 'number' ? formatTick(e[c] as number) : ''}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
  // Fractions (accuracy, pass@k) as bars, before beside after.
  const shown = rows.filter(([label]) => label === 'before' || label === 'after');
  const fractions = columns.filter((c) => c === 'accuracy' || c.startsWith('pass@'));
  const bars =
    shown.length > 0 && fractions.length > 0
      ? barChart(
          'eval',
          'Held-out evaluation, before and after training',
          fractions.map((c) => ({ label: c, values: Object.fromEntries(shown.flatMap(([label, e]) => (typeof e[c] === 'number' ? [[label, e[c] as number]] : []))) })),
          shown.map(([label]) => label),
        )
      : '';
  return `<section><h2>Evaluation</h2><div class="charts">${bars}</div>${table}</section>`;
}

/** Up to MAX_SAMPLES completions spread over the run; the scored copy of a batch's sample wins over the unscored one. */
export function pickSamples(samples: readonly SampleRecord[]): SampleRecord[] {
  const byStep = new Map<string, SampleRecord>();
  for (const s of samples) {
    const key = String(s.step ?? byStep.size);
    const seen = byStep.get(key);
    if (!seen || (!seen.rewards && s.rewards)) byStep.set(key, s);
  }
  const all = [...byStep.values()];
  if (all.length <= MAX_SAMPLES) return all;
  return Array.from({ length: MAX_SAMPLES }, (_, i) => all[Math.round((i * (all.length - 1)) / (MAX_SAMPLES - 1))]);
}

function samplesSection(samples: readonly SampleRecord[]): string {
  const picked = pickSamples(samples);
  if (picked.length === 0) return '<section><h2>Sampled completions</h2><p class="none">No completions were sampled.</p></section>';
  const items = picked.map((s) => {
    const rewards = Object.entries(s.rewards ?? {})
      .map(([name, v]) => `<span class="reward ${v > 0 ? 'pos' : 'neg'}">${escapeHtml(name)} ${formatTick(v)}</span>`)
      .join('');
    return `<div class="sample"><div class="meta">step ${s.step ?? '?'}${rewards}</div>${s.prompt !== undefined ? `<div class="prompt">${escapeHtml(s.prompt)}</div>` : ''}<pre>${escapeHtml(s.completion)}</pre></div>`;
  });
  return `<section><h2>Sampled completions</h2>${items.join('')}</section>`;
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; border-bottom: 1px solid #ddd; }
.facts { color: #555; } .facts b { color: #222; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; padding: 8px; border: 1px solid #e3e3e3; border-radius: 6px; }
figure.small svg { width: 300px; height: 150px; }
figcaption { font-weight: 600; margin-bottom: 4px; } .latest { font-weight: 400; color: #666; margin-left: 8px; }
svg .grid { stroke: #eee; } svg .axis { stroke: #999; } svg .tick, svg .value { font-size: 10px; fill: #555; }
svg .tip { fill: transparent; } svg .tip:hover { fill: rgba(0,0,0,0.25); }
.legend span { margin-right: 12px; font-size: 12px; } .legend i { display: inline-block; width: 18px; margin-right: 4px; vertical-align: middle; }
table.eval { border-collapse: collapse; margin-top: 8px; } table.eval td, table.eval th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
.sample { border: 1px solid #e3e3e3; border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.sample .meta { color: #555; font-size: 12px; } .sample .prompt { color: #444; font-style: italic; margin: 4px 0; }
.sample pre { margin: 0; white-space: pre-wrap; word-break: break-word; }
.reward { margin-left: 10px; } .reward.pos { color: #1a7f37; } .reward.neg { color: #b42318; }
.none { color: #888; }
`;

export function renderReport(data: RunData): string {
  const used = new Set<string>();
  const charts = chartSpecs(data, used)
    .filter((c) => c.series.some((s) => s.points.length > 0))
    .map((c) => lineChart(c.id, c.title, c.series));
  // Every other metric, small: nothing published is left out of the report.
  const others: string[] = [];
  for (const [node, byName] of data.series) {
    for (const [name, points] of byName) {
      if (used.has(`${node}/${name}`) || points.length < 2) continue;
      others.push(lineChart(`${node}/${name}`, `${node} · ${name}`, [{ name, points }], { small: true }));
    }
  }
  const s = data.summary;
  const facts = [
    typeof s.steps === 'number' ? `<b>${s.steps}</b> steps` : '',
    typeof s.wall_s === 'number' ? `<b>${formatTick(s.wall_s)}</b> s wall time` : '',
    `folder <code>${escapeHtml(data.dir)}</code>`,
  ].filter(Boolean);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(data.name)} · grpoflow report</title>
<style>${STYLE}</style></head>
<body>
<h1>${escapeHtml(data.name)}</h1>
<div class="facts">${facts.join(' · ')}</div>
${evalSection(s)}
<section><h2>Training</h2>${charts.length > 0 ? `<div class="charts">${charts.join('\n')}</div>` : '<p class="none">No metrics recorded.</p>'}</section>
${samplesSection(data.samples)}
${others.length > 0 ? `<section><h2>Other metrics</h2><div class="charts">${others.join('\n')}</div></section>` : ''}
</body></html>
`;
}

/** Reads the run folder and writes `report.html` into it (atomically); returns its path. */
export async function writeReport(dir: string, file = path.join(dir, REPORT_FILE)): Promise<string> {
  const html = renderReport(await readRunData(dir));
  await writeFileAtomic(file, html);
  return file;
}
