import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { BACKENDS } from '../../graph/graph-file.js';
import { loadGraphFile } from '../../graph/load.js';
import type { ResolvedGraph } from '../../graph/resolved.js';
import { MetricsBus } from '../../runtime/metrics-bus.js';
import { NodeRunError, runGraph, type RunHandle } from '../../runtime/run-graph.js';
import { SAMPLES_FILE, writeEventsLog, writeMetricsJsonl, writeSamplesJsonl, writeTensorBoardEvents } from '../../runtime/writers.js';
import { loadResumeCheckpoint, type ResumeService } from '../../grpo/resume.js';
import { writeReport } from '../../report/html.js';
import { mergeSummary } from '../../report/summary.js';
import { selectBackend } from '../backend.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_INTERRUPTED, EXIT_USAGE, type Command } from '../command.js';
import { importOptional } from '../optional-import.js';
import { printDiagnostics } from '../print-diagnostics.js';
import { printProgress } from '../progress-printer.js';
import { onNativeStderr } from '../native-stderr.js';

/** The terminal UI's entry point (core/ui/index.ts), when that module exists. */
interface UiModule {
  renderUi(handle: RunHandle, info: { graph: ResolvedGraph; outDir: string }): { waitUntilExit?: () => Promise<unknown>; unmount?: () => void } | void;
}

function defaultOutDir(graph: ResolvedGraph): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').replace('T', '_').slice(0, 19);
  return path.join('runs', `${graph.name}-${stamp}`);
}

export const run: Command = {
  name: 'run',
  summary: 'Run a graph file',
  usage: `grpoflow run GRAPH [--set key=value]... [--out DIR] [--backend NAME] [--no-tui] [--resume DIR]

  --set key=value   override a param (a.b=1 sets params.a.b) or a node config
                    (nodes.ID.with.key=value); values are YAML scalars
  --out DIR         output folder (default runs/NAME-TIMESTAMP): metrics.jsonl, events.log, ...
  --backend NAME    ${BACKENDS.join('|')} (overrides the graph's \`backend\`)
  --no-tui          plain progress lines instead of the terminal UI (also when not a TTY)
  --resume DIR      continue from a checkpoint folder (or the newest checkpoint-STEP in DIR):
                    adapter, optimiser state, step, RNG and training position
  Exit codes: 0 done, 1 invalid graph or a node failed, 2 bad usage, 130 interrupted (Ctrl-C).`,
  async run(argv) {
    const started = Date.now();
    const parsed = parseCommandArgs(
      this,
      argv,
      {
        set: { type: 'string', multiple: true },
        out: { type: 'string' },
        backend: { type: 'string' },
        'no-tui': { type: 'boolean' },
        resume: { type: 'string' },
      },
      1,
    );
    if (!parsed) return EXIT_USAGE;
    const { values, positionals } = parsed;
    if (values.backend !== undefined && !(BACKENDS as readonly string[]).includes(values.backend)) {
      process.stderr.write(`--backend must be one of ${BACKENDS.join(', ')}; got \`${values.backend}\`\n`);
      return EXIT_USAGE;
    }
    const { graph, diagnostics } = await loadGraphFile(positionals[0], { set: values.set });
    printDiagnostics(diagnostics);
    if (!graph) return 1;

    const outDir = path.resolve(values.out ?? defaultOutDir(graph));
    mkdirSync(outDir, { recursive: true });
    const bus = new MetricsBus();
    const writers = [
      writeMetricsJsonl(bus.metrics$, path.join(outDir, 'metrics.jsonl')),
      writeEventsLog(bus.events$, path.join(outDir, 'events.log')),
      writeSamplesJsonl(bus.events$, path.join(outDir, SAMPLES_FILE)),
      writeTensorBoardEvents(bus.metrics$, outDir),
    ];
    // Dawn's warnings, taken off the terminal by the parent process while the UI is drawn (native-stderr.ts).
    const stopNativeStderr = onNativeStderr((line) => bus.event('native', 'debug', line));

    const backend = await selectBackend(values.backend ?? graph.backend);
    // Load the UI before the run starts, so it sees every event from the first one.
    const ui = !values['no-tui'] && process.stdout.isTTY ? await importOptional<UiModule>('../../ui/index.js', import.meta.url) : undefined;
    const controller = new AbortController();
    let resume: ResumeService | undefined;
    if (values.resume !== undefined) {
      try {
        resume = { checkpoint: await loadResumeCheckpoint(path.resolve(values.resume)) };
      } catch (error) {
        process.stderr.write(`${(error as Error).message}\n`);
        await Promise.all(writers.map((w) => w.close()));
        return 1;
      }
    }
    const handle = runGraph(graph, {
      outDir,
      bus,
      signal: controller.signal,
      services: { backend, seed: graph.seed, params: graph.params, ...(resume ? { resume } : {}) },
    });
    if (resume) bus.event('graph', 'info', `resuming from ${resume.checkpoint.dir} (step ${resume.checkpoint.step})`);
    const view = ui ? ui.renderUi(handle, { graph, outDir }) : undefined;
    const progress = view ? undefined : printProgress(handle, (line) => process.stdout.write(line + '\n'));
    bus.event('graph', 'info', `backend ${backend.name}`, { notes: backend.notes });

    let interrupted = false;
    const onSigint = () => {
      if (interrupted) process.exit(EXIT_INTERRUPTED); // a second Ctrl-C does not wait for teardown
      interrupted = true;
      process.stderr.write('\ninterrupted: stopping nodes (Ctrl-C again to quit at once)\n');
      controller.abort();
    };
    process.on('SIGINT', onSigint);


    let code = 0;
    try {
      const result = await handle.done;
      code = result.status === 'aborted' ? EXIT_INTERRUPTED : 0;
      if (!view) process.stdout.write(`run ${result.status} in ${(result.durationMs / 1000).toFixed(1)} s; outputs in ${outDir}\n`);
    } catch (error) {
      code = 1;
      process.stderr.write(`${error instanceof NodeRunError ? error.message : String(error)}\n`);
      if (error instanceof NodeRunError && error.cause instanceof Error && error.cause.stack) process.stderr.write(`${error.cause.stack}\n`);
    } finally {
      process.off('SIGINT', onSigint);
      progress?.unsubscribe();
      view?.unmount?.();
      stopNativeStderr();
      await Promise.all(writers.map((w) => w.close()));
    }
    // The run's wall time, beside what the nodes wrote (evaluation, steps).
    await mergeSummary(outDir, { wall_s: Math.round((Date.now() - started) / 100) / 10 }).catch((error) =>
      process.stderr.write(`could not write ${path.join(outDir, 'summary.json')}: ${(error as Error).message}\n`),
    );
    // The HTML report of what the run wrote (also after a failure or Ctrl-C: the curves so far).
    await writeReport(outDir).then(
      (file) => process.stdout.write(`report ${file}\n`),
      (error) => process.stderr.write(`could not write the report: ${(error as Error).message}\n`),
    );
    return code;
  },
};
