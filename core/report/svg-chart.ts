// Inline SVG charts for the HTML report: drawn here, as markup, so the report needs no script, no
// library and no network to show its plots. Each point carries a <title> (the browser's tooltip).

export interface LineSeries {
  name: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface BarGroup {
  /** The measure (x axis group), e.g. `accuracy`. */
  label: string;
  /** One bar per series name, e.g. before / after. */
  values: Record<string, number>;
}

/** Colours of the lines and bars, in order (none is used anywhere else on the page). */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

const WIDTH = 440;
const HEIGHT = 220;
const MARGIN = { left: 56, right: 12, top: 10, bottom: 28 };

export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A 1-2-5 tick spacing that splits [lo, hi] into about `count` steps. */
function tickStep(lo: number, hi: number, count: number): number {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
}

/** Tick values at a 1-2-5 spacing inside [lo, hi], about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const step = tickStep(lo, hi, count);
  const ticks: number[] = [];
  // Whole multiples of the step (not a running sum, whose rounding would put 3.5e-18 where 0 belongs).
  for (let k = Math.ceil(lo / step - 1e-9); k <= Math.floor(hi / step + 1e-9); k++) ticks.push(Number((k * step).toPrecision(12)));
  return ticks;
}

/** [lo, hi] widened out to whole tick steps, so the data never touches the frame. */
export function niceDomain(lo: number, hi: number, count = 5): [number, number] {
  if (!(hi > lo)) return [lo, hi];
  const step = tickStep(lo, hi, count);
  const round = (v: number) => Number(v.toPrecision(12));
  return [round(Math.floor(lo / step + 1e-9) * step), round(Math.ceil(hi / step - 1e-9) * step)];
}

export function formatTick(value: number): string {
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(1);
  return String(Number(value.toPrecision(4)));
}

/** [lo, hi] of the finite values, widened when flat so a constant series sits mid-chart. */
function extent(values: number[]): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

function axes(xTicks: number[], yTicks: number[], sx: (x: number) => number, sy: (y: number) => number, xLabels?: string[]): string {
  const parts: string[] = [];
  const bottom = HEIGHT - MARGIN.bottom;
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    parts.push(`<line class="grid" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="tick" x="${MARGIN.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${formatTick(t)}</text>`);
  }
  xTicks.forEach((t, i) => {
    const x = sx(t).toFixed(1);
    parts.push(`<text class="tick" x="${x}" y="${bottom + 16}" text-anchor="middle">${escapeHtml(xLabels?.[i] ?? formatTick(t))}</text>`);
  });
  parts.push(`<line class="axis" x1="${MARGIN.left}" x2="${WIDTH - MARGIN.right}" y1="${bottom}" y2="${bottom}"/>`);
  parts.push(`<line class="axis" x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${bottom}"/>`);
  return parts.join('');
}

function legend(names: { name: string; colour: string; dashed?: boolean }[]): string {
  if (names.length < 2) return '';
  return `<div class="legend">${names
    .map((n) => `<span><i style="border-top: 3px ${n.dashed ? 'dashed' : 'solid'} ${n.colour}"></i>${escapeHtml(n.name)}</span>`)
    .join('')}</div>`;
}

/** A line chart of one or more series against the step; non-finite points break the line. */
export function lineChart(id: string, title: string, series: readonly LineSeries[], { small = false }: { small?: boolean } = {}): string {
  const drawn = series.filter((s) => s.points.length > 0);
  const xs = drawn.flatMap((s) => s.points.map((p) => p[0]));
  const ys = drawn.flatMap((s) => s.points.map((p) => p[1]));
  const [x0, x1] = extent(xs);
  const [y0, y1] = niceDomain(...extent(ys));
  const yTicks = niceTicks(y0, y1);
  const sx = (x: number) => MARGIN.left + ((x - x0) / (x1 - x0)) * (WIDTH - MARGIN.left - MARGIN.right);
  const sy = (y: number) => HEIGHT - MARGIN.bottom - ((y - y0) / (y1 - y0 || 1)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const body = drawn
    .map((s, i) => {
      const colour = PALETTE[i % PALETTE.length];
      // Split at non-finite values: each run of finite points is one polyline.
      const runs: (readonly [number, number])[][] = [[]];
      for (const p of s.points) {
        if (Number.isFinite(p[1])) runs.at(-1)!.push(p);
        else if (runs.at(-1)!.length > 0) runs.push([]);
      }
      const lines = runs
        .filter((r) => r.length > 0)
        .map((r) => {
          const coords = r.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
          // A single point is drawn as a dot (a one-point polyline has no length).
          return r.length === 1
            ? `<circle cx="${sx(r[0][0]).toFixed(1)}" cy="${sy(r[0][1]).toFixed(1)}" r="3" fill="${colour}"/>`
            : `<polyline fill="none" stroke="${colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${coords}"/>`;
        })
        .join('');
      // Hover targets with the exact values (at most ~200 per series, so long runs stay light).
      const every = Math.max(1, Math.ceil(s.points.length / 200));
      const tips = s.points
        .filter((p, j) => Number.isFinite(p[1]) && j % every === 0)
        .map(([x, y]) => `<circle class="tip" cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="4"><title>${escapeHtml(s.name)} @ ${x}: ${y}</title></circle>`)
        .join('');
      return `<g class="series" data-series="${escapeHtml(s.name)}" data-colour="${colour}">${lines}${tips}</g>`;
    })
    .join('');
  const xTicks = niceTicks(x0, x1, 6).filter((t) => t >= x0 && t <= x1);
  const latest = drawn.length === 1 ? lastFinite(drawn[0].points) : undefined;
  return `<figure class="chart${small ? ' small' : ''}" id="chart-${escapeHtml(id)}" data-chart="${escapeHtml(id)}" data-points="${ys.length}">
<figcaption>${escapeHtml(title)}${latest !== undefined ? ` <span class="latest">last ${formatTick(latest)}</span>` : ''}</figcaption>
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">${axes(xTicks, yTicks, sx, sy)}${body}
<text class="tick" x="${WIDTH - MARGIN.right}" y="${HEIGHT - 2}" text-anchor="end">step</text></svg>
${legend(drawn.map((s, i) => ({ name: s.name, colour: PALETTE[i % PALETTE.length], dashed: s.dashed })))}
</figure>`;
}

function lastFinite(points: readonly (readonly [number, number])[]): number | undefined {
  for (let i = points.length - 1; i >= 0; i--) if (Number.isFinite(points[i][1])) return points[i][1];
  return undefined;
}

/** Grouped bars: one group per measure, one bar per series (e.g. before and after), values labelled. */
export function barChart(id: string, title: string, groups: readonly BarGroup[], seriesNames: readonly string[]): string {
  const values = groups.flatMap((g) => Object.values(g.values)).filter(Number.isFinite);
  const [y0, y1] = niceDomain(Math.min(0, ...values), Math.max(...values, 0) || 1);
  const yTicks = niceTicks(y0, y1);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const groupWidth = plotWidth / Math.max(1, groups.length);
  const barWidth = (groupWidth * 0.7) / Math.max(1, seriesNames.length);
  const sy = (y: number) => HEIGHT - MARGIN.bottom - ((y - y0) / (y1 - y0 || 1)) * (HEIGHT - MARGIN.top - MARGIN.bottom);
  const sx = (i: number) => MARGIN.left + groupWidth * (i + 0.5);
  const bars = groups
    .map((g, gi) =>
      seriesNames
        .map((name, si) => {
          const v = g.values[name];
          if (v === undefined || !Number.isFinite(v)) return '';
          const x = MARGIN.left + groupWidth * gi + groupWidth * 0.15 + barWidth * si;
          const top = Math.min(sy(v), sy(0));
          const h = Math.max(1, Math.abs(sy(v) - sy(0)));
          const colour = PALETTE[si % PALETTE.length];
          return `<g class="series" data-series="${escapeHtml(name)}" data-colour="${colour}"><rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${barWidth.toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}"><title>${escapeHtml(`${g.label} ${name}: ${v}`)}</title></rect><text class="value" x="${(x + barWidth / 2).toFixed(1)}" y="${(top - 3).toFixed(1)}" text-anchor="middle">${formatTick(v)}</text></g>`;
        })
        .join(''),
    )
    .join('');
  return `<figure class="chart" id="chart-${escapeHtml(id)}" data-chart="${escapeHtml(id)}" data-points="${values.length}">
<figcaption>${escapeHtml(title)}</figcaption>
<svg viewBox="0 0 ${WIDTH} ${HEIGHT}" width="${WIDTH}" height="${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">${axes(
    groups.map((_, i) => i),
    yTicks,
    sx,
    sy,
    groups.map((g) => g.label),
  )}${bars}</svg>
${legend(seriesNames.map((name, i) => ({ name, colour: PALETTE[i % PALETTE.length] })))}
</figure>`;
}
