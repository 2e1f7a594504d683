import path from 'node:path';
import { BACKENDS } from '../../graph/graph-file.js';
import { loadGraphFile } from '../../graph/load.js';
import type { ResolvedGraph } from '../../graph/resolved.js';
import { MetricsBus } from '../../runtime/metrics-bus.js';
import { fileError } from '../../runtime/file-error.js';
import { envRedactor } from '../../runtime/redact.js';
import { runGraph, type RunHandle } from '../../runtime/run-graph.js';
import { SAMPLES_FILE, writeEventsLog, writeMetricsJsonl, writeSamplesJsonl, writeTensorBoardEvents } from '../../runtime/writers.js';
import { runFingerprint } from '../../grpo/fingerprint.js';
import type { ResumeService } from '../../grpo/resume.js';
import { writeReport } from '../../report/html.js';
import { selectBackend } from '../backend.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';
import { printFailure } from '../failure.js';
import { importOptional } from '../optional-import.js';
import { printDiagnostics } from '../print-diagnostics.js';
import { printProgress } from '../progress-printer.js';
import { checkCheckpointFolders, loadCheckedResume, prepareOutDir, removeStaleOutputs, WallClock } from '../run-record.js';
import { SIGNAL_EXIT_CODE, watchStopSignals } from '../stop-signals.js';
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
  usage: `grpoflow run GRAPH [--set key=value]... [--out DIR] [--backend NAME] [--no-tui] [--resume DIR] [--resume-anyway] [--allow-plugin-path] [--debug]

  --set key=value   override a param (a.b=1 sets params.a.b) or a node config
                    (nodes.ID.with.key=value); values are YAML scalars
  --out DIR         output folder (default runs/NAME-TIMESTAMP): metrics.jsonl, events.log, ...
  --backend NAME    ${BACKENDS.join('|')} (overrides the graph's \`backend\`)
  --no-tui          plain progress lines instead of the terminal UI (also when not a TTY)
  --resume DIR      continue from a checkpoint folder (or the newest checkpoint-STEP in DIR):
                    adapter, optimiser state, step, RNG and training position; with the same
                    --out, metrics.jsonl, events.log and summary.json continue
  --resume-anyway   resume even from a checkpoint of another graph, model or dataset
  --allow-plugin-path  load plugins from absolute paths or outside the graph's folder
  --debug           print the stack of an error
  Exit codes: 0 done, 1 invalid graph or a failure, 2 bad usage, 130/143/129 stopped by
  SIGINT (Ctrl-C)/SIGTERM/SIGHUP after writing a checkpoint.`,
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
        'resume-anyway': { type: 'boolean' },
        'allow-plugin-path': { type: 'boolean' },
        debug: { type: 'boolean' },
      },
      1,
    );
    if (!parsed) return EXIT_USAGE;
    const { values, positionals } = parsed;
    const debug = values.debug === true;
    if (values.backend !== undefined && !(BACKENDS as readonly string[]).includes(values.backend)) {
      process.stderr.write(`--backend must be one of ${BACKENDS.join(', ')}; got \`${values.backend}\`\n`);
      return EXIT_USAGE;
    }
    if (values['resume-anyway'] && values.resume === undefined) {
      process.stderr.write(`--resume-anyway needs --resume DIR\n`);
      return EXIT_USAGE;
    }
    const { graph, diagnostics } = await loadGraphFile(positionals[0], { set: values.set, allowPluginPath: values['allow-plugin-path'] === true });
    printDiagnostics(diagnostics);
    if (!graph) return 1;

    const redact = envRedactor(graph.envValues ?? {});
    const fail = (error: unknown) => printFailure(error, debug, (text) => process.stderr.write(redact(text)));
    // Everything that can be checked is checked before the backend starts or a file is written.
    const outDir = path.resolve(values.out ?? defaultOutDir(graph));
    const fingerprint = runFingerprint(graph);
    let resume: ResumeService | undefined;
    let resumeWarnings: string[] = [];
    try {
      prepareOutDir(outDir);
      checkCheckpointFolders(graph, outDir);
      if (values.resume !== undefined) {
        const checked = await loadCheckedResume(path.resolve(values.resume), graph, outDir, fingerprint, values['resume-anyway'] === true);
        resume = { checkpoint: checked.checkpoint };
        resumeWarnings = checked.warnings;
      }
    } catch (error) {
      fail(error);
      return 1;
    }
    const stale = await removeStaleOutputs(graph, outDir);

    const bus = new MetricsBus(redact);
    const resumePoint = resume ? { step: resume.checkpoint.step } : undefined;
    let writers;
    try {
      writers = [
        writeMetricsJsonl(bus.metrics$, path.join(outDir, 'metrics.jsonl'), resumePoint),
        writeEventsLog(bus.events$, path.join(outDir, 'events.log'), resumePoint),
        writeSamplesJsonl(bus.events$, path.join(outDir, SAMPLES_FILE), resumePoint),
        writeTensorBoardEvents(bus.metrics$, outDir),
      ];
    } catch (error) {
      fail(fileError(error, outDir, '--out'));
      return 1;
    }
    const clock = await WallClock.start(outDir, started, resume !== undefined);
    const clockSub = clock.followCheckpoints(bus);
    // Dawn's warnings, taken off the terminal by the parent process while the UI is drawn (native-stderr.ts).
    const stopNativeStderr = onNativeStderr((line) => bus.event('native', 'debug', line));

    const backend = await selectBackend(values.backend ?? graph.backend);
    // Load the UI before the run starts, so it sees every event from the first one.
    const ui = !values['no-tui'] && process.stdout.isTTY ? await importOptional<UiModule>('../../ui/index.js', import.meta.url) : undefined;
    const controller = new AbortController();
    const handle = runGraph(graph, {
      outDir,
      bus,
      signal: controller.signal,
      services: { backend, seed: graph.seed, params: graph.params, fingerprint, ...(resume ? { resume } : {}) },
    });
    if (resume) bus.event('graph', 'info', `resuming from ${resume.checkpoint.dir} (step ${resume.checkpoint.step})`);
    for (const warning of resumeWarnings) bus.event('graph', 'warn', warning);
    if (stale.length) bus.event('graph', 'info', `removed ${stale.length} temporary file(s) left by a killed run: ${stale.join(', ')}`);
    const view = ui ? ui.renderUi(handle, { graph, outDir }) : undefined;
    const progress = view ? undefined : printProgress(handle, (line) => process.stdout.write(line + '\n'));
    bus.event('graph', 'info', `backend ${backend.name}`, { notes: backend.notes });

    const signals = watchStopSignals({
      stop: (signal, why) => {
        bus.event('graph', 'warn', `${why}: stopping (${signal})`);
        controller.abort();
      },
    });

    let code = 0;
    try {
      const result = await handle.done;
      code = result.status === 'aborted' ? SIGNAL_EXIT_CODE[signals.received ?? 'SIGINT'] : 0;
      if (!view) process.stdout.write(`run ${result.status} in ${(result.durationMs / 1000).toFixed(1)} s; outputs in ${outDir}\n`);
    } catch (error) {
      code = 1;
      fail(error);
    } finally {
      signals.dispose();
      progress?.unsubscribe();
      clockSub.unsubscribe();
      view?.unmount?.();
      stopNativeStderr();
      const closed = await Promise.allSettled(writers.map((w) => w.close()));
      for (const result of closed) {
        if (result.status === 'rejected') {
          fail(result.reason);
          code = code === 0 ? 1 : code;
        }
      }
    }
    // The run's total wall time (earlier segments included), beside what the nodes wrote (evaluation, steps).
    await clock.write().catch((error) => process.stderr.write(`could not write ${path.join(outDir, 'summary.json')}: ${(error as Error).message}\n`));
    // The HTML report of what the run wrote (also after a failure or Ctrl-C: the curves so far).
    await writeReport(outDir).then(
      (file) => process.stdout.write(`report ${file}\n`),
      (error) => process.stderr.write(`could not write the report: ${(error as Error).message}\n`),
    );
    return code;
  },
};
