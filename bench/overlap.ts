// `npm run bench -- overlap [GRAPH] [--steps N] [--repeat N] [--backend NAME] [--set key=value]... [--keep]`
//
// Runs a GRPO graph (default graphs/arith-grpo.yaml) for the same number of optimiser steps twice through
// the CLI — rollout generation on the main thread taking turns with the trainer (overlap: false, the
// strict on-policy schedule), then in a worker thread overlapping it (overlap: true) — and prints the
// wall-time ratio on/off and both runs' final held-out accuracy (summary.json's eval.after). The last
// line is one JSON object: {"bench":"overlap","ratio":R,"accuracy_on":A,"accuracy_off":B,...}.
//
// `ratio` is whole-run wall time (what a user waits, model loading and evaluations included);
// `loop_ratio` times only the run from its start event to the trainer's "training done" event. With
// `--repeat N` the modes alternate (off, on, on, off, ...) and each ratio uses each mode's fastest run:
// on a shared machine other work only ever adds time, so the minimum is the least disturbed figure.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_GRAPH = 'graphs/arith-grpo.yaml';

interface ModeResult {
  overlap: boolean;
  wallSeconds: number;
  loopSeconds?: number;
  accuracyBefore?: number;
  accuracyAfter?: number;
  steps?: number;
  generatorBusy?: number;
  trainerBusy?: number;
  stalenessMax?: number;
  stalenessMean?: number;
  outDir: string;
}

/** The ids of the graph's rollout.generate nodes and its train.grpo node. */
function findNodes(graphFile: string): { rollouts: string[]; trainer: string } {
  const doc = parseYaml(readFileSync(graphFile, 'utf8')) as { nodes?: Record<string, { type?: string }> };
  const nodes = Object.entries(doc?.nodes ?? {});
  const rollouts = nodes.filter(([, n]) => n?.type === 'rollout.generate').map(([id]) => id);
  const trainers = nodes.filter(([, n]) => n?.type === 'train.grpo').map(([id]) => id);
  if (rollouts.length === 0) throw new Error(`${graphFile}: no rollout.generate node to switch overlap on`);
  if (trainers.length !== 1) throw new Error(`${graphFile}: expected one train.grpo node, found ${trainers.length}`);
  return { rollouts, trainer: trainers[0] };
}

function readJsonl(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Seconds from the run's start event to the trainer's "training done" event (events.log). */
function loopSeconds(eventsFile: string, trainer: string): number | undefined {
  if (!existsSync(eventsFile)) return undefined;
  const lines = readFileSync(eventsFile, 'utf8').split('\n');
  const time = (line: string | undefined) => (line ? Date.parse(line.slice(0, line.indexOf(' '))) : NaN);
  const start = time(lines.find((l) => l.includes('[graph] run started')));
  const end = time(lines.find((l) => l.includes(`[${trainer}] training done`)));
  return Number.isFinite(start) && Number.isFinite(end) ? (end - start) / 1000 : undefined;
}

function numbers(records: Record<string, unknown>[], node: string, key: string): number[] {
  return records.filter((r) => r.node === node && typeof r[key] === 'number').map((r) => r[key] as number);
}

async function runMode(graph: string, overlap: boolean, nodes: { rollouts: string[]; trainer: string }, extra: string[], log: (line: string) => void): Promise<ModeResult> {
  const outDir = mkdtempSync(path.join(tmpdir(), `grpoflow-overlap-${overlap ? 'on' : 'off'}-`));
  const sets = nodes.rollouts.flatMap((id) => ['--set', `nodes.${id}.with.overlap=${overlap}`]);
  const args = [path.join(ROOT, 'bin/grpoflow.js'), 'run', graph, '--no-tui', '--out', outDir, ...sets, ...extra];
  log(`overlap ${overlap ? 'on ' : 'off'}: node ${args.slice(1).join(' ')}`);
  const started = performance.now();
  const output: string[] = [];
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    child.on('error', reject);
    child.on('close', resolve);
  });
  const wallSeconds = (performance.now() - started) / 1000;
  writeFileSync(path.join(outDir, 'bench-output.log'), output.join(''));
  if (code !== 0) {
    throw new Error(`overlap ${overlap ? 'on' : 'off'}: the run exited with code ${code}; its output (${outDir}/bench-output.log) ends:\n${output.join('').slice(-3000)}`);
  }
  const summaryFile = path.join(outDir, 'summary.json');
  const summary = existsSync(summaryFile) ? (JSON.parse(readFileSync(summaryFile, 'utf8')) as { steps?: number; eval?: Record<string, { accuracy?: number }> }) : {};
  const metrics = readJsonl(path.join(outDir, 'metrics.jsonl'));
  const loop = loopSeconds(path.join(outDir, 'events.log'), nodes.trainer);
  const stepTimes = numbers(metrics, nodes.trainer, 'step_time');
  const staleness = numbers(metrics, nodes.trainer, 'policy/staleness');
  const generatorBusy = nodes.rollouts.flatMap((id) => numbers(metrics, id, 'scheduler/generator_busy')).at(-1);
  return {
    overlap,
    wallSeconds,
    loopSeconds: loop,
    accuracyBefore: summary.eval?.before?.accuracy,
    accuracyAfter: summary.eval?.after?.accuracy,
    steps: summary.steps,
    generatorBusy,
    trainerBusy: loop && stepTimes.length ? stepTimes.reduce((a, b) => a + b, 0) / loop : undefined,
    stalenessMax: staleness.length ? Math.max(...staleness) : undefined,
    stalenessMean: staleness.length ? staleness.reduce((a, b) => a + b, 0) / staleness.length : undefined,
    outDir,
  };
}

const fmt = (v: number | undefined, digits = 3) => (v === undefined ? 'n/a' : v.toFixed(digits));
const round = (v: number | undefined, digits = 4) => (v === undefined ? null : Number(v.toFixed(digits)));

export async function run(log: (line: string) => void = console.log): Promise<Record<string, unknown>> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(3),
    allowPositionals: true,
    options: {
      steps: { type: 'string' },
      backend: { type: 'string' },
      set: { type: 'string', multiple: true },
      keep: { type: 'boolean' },
      repeat: { type: 'string', default: '1' },
    },
  });
  const graph = path.resolve(ROOT, positionals[0] ?? DEFAULT_GRAPH);
  if (!existsSync(graph)) throw new Error(`graph ${graph} not found (usage: npm run bench -- overlap [GRAPH] [--steps N] [--set key=value]...)`);
  const nodes = findNodes(graph);
  const extra = [...(values.set ?? []).flatMap((s) => ['--set', s]), ...(values.backend ? ['--backend', values.backend] : [])];
  if (values.steps !== undefined) {
    const steps = Number(values.steps);
    if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a whole number ≥ 1, got ${values.steps}`);
    extra.push('--set', `nodes.${nodes.trainer}.with.max_steps=${steps}`);
  }

  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new Error(`--repeat must be a whole number ≥ 1, got ${values.repeat}`);
  const runs: ModeResult[] = [];
  // Off first: any one-time warm-up (file cache, tsx's transform cache) then favours the baseline.
  for (let i = 0; i < repeat; i++) {
    for (const overlap of i % 2 === 0 ? [false, true] : [true, false]) {
      const r = await runMode(graph, overlap, nodes, extra, log);
      runs.push(r);
      log(
        `  ${overlap ? 'on: ' : 'off:'} ${fmt(r.wallSeconds, 1)} s wall, loop ${fmt(r.loopSeconds, 1)} s, accuracy ${fmt(r.accuracyBefore)} → ${fmt(r.accuracyAfter)}, ` +
          `generator busy ${fmt(r.generatorBusy, 2)}, trainer busy ${fmt(r.trainerBusy, 2)}, staleness max ${r.stalenessMax ?? 'n/a'} mean ${fmt(r.stalenessMean, 2)}`,
      );
    }
  }
  const fastest = (overlap: boolean) => runs.filter((r) => r.overlap === overlap).reduce((a, b) => (b.wallSeconds < a.wallSeconds ? b : a));
  const off = fastest(false);
  const on = fastest(true);
  const fastestLoop = (overlap: boolean) => Math.min(...runs.filter((r) => r.overlap === overlap).map((r) => r.loopSeconds ?? Infinity));
  if (off.steps !== on.steps) log(`  warning: the runs took different step counts (off ${off.steps}, on ${on.steps})`);

  const ratio = on.wallSeconds / off.wallSeconds;
  const loopRatio = Number.isFinite(fastestLoop(true) / fastestLoop(false)) ? fastestLoop(true) / fastestLoop(false) : undefined;
  log(`wall-time ratio on/off: ${fmt(ratio)} (loop only: ${fmt(loopRatio)}); held-out accuracy on ${fmt(on.accuracyAfter)}, off ${fmt(off.accuracyAfter)}`);
  if (!values.keep) for (const r of runs) rmSync(r.outDir, { recursive: true, force: true });
  else log(`outputs kept: ${runs.map((r) => `${r.overlap ? 'on' : 'off'} ${r.outDir}`).join(', ')}`);

  const result = {
    bench: 'overlap',
    ratio: round(ratio),
    accuracy_on: round(on.accuracyAfter),
    accuracy_off: round(off.accuracyAfter),
    graph: path.relative(ROOT, graph),
    steps: on.steps ?? null,
    wall_on_s: round(on.wallSeconds, 1),
    wall_off_s: round(off.wallSeconds, 1),
    loop_ratio: round(loopRatio),
    loop_on_s: round(fastestLoop(true), 1),
    loop_off_s: round(fastestLoop(false), 1),
    repeat,
    walls_on_s: runs.filter((r) => r.overlap).map((r) => round(r.wallSeconds, 1)),
    walls_off_s: runs.filter((r) => !r.overlap).map((r) => round(r.wallSeconds, 1)),
    load_average: Number(loadavg()[0].toFixed(2)),
    accuracy_before: round(off.accuracyBefore),
    generator_busy_on: round(on.generatorBusy, 3),
    generator_busy_off: round(off.generatorBusy, 3),
    trainer_busy_on: round(on.trainerBusy, 3),
    trainer_busy_off: round(off.trainerBusy, 3),
    staleness_max_on: on.stalenessMax ?? null,
    staleness_mean_on: round(on.stalenessMean, 3),
  };
  log(JSON.stringify(result));
  return result;
}
