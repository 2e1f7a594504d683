// What `grpoflow run` does around the graph so that nothing of a run is lost across kills and resumes:
// the output folder checked before any work, the checkpoint to resume from checked against this run
// (fingerprint, max_steps), stale temporary files removed, and the summary's total wall time kept.
import { mkdirSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { Subscription } from 'rxjs';
import type { ResolvedGraph } from '../graph/resolved.js';
import { removeStaleTemporaries, type LoadedCheckpoint } from '../grpo/checkpoint.js';
import { fingerprintMismatch, type RunFingerprint } from '../grpo/fingerprint.js';
import { loadResumeCheckpoint } from '../grpo/resume.js';
import { mergeSummary, readSummary } from '../report/summary.js';
import { fileError } from '../runtime/file-error.js';
import type { MetricsBus } from '../runtime/metrics-bus.js';

/** The trainer nodes of a graph (they write checkpoints), with their resolved checkpoint folders. */
export function trainerNodes(graph: ResolvedGraph, outDir: string): { id: string; maxSteps?: number; outputDir?: string }[] {
  return graph.nodes
    .filter((n) => n.type === 'train.grpo')
    .map((n) => {
      const config = n.config as { max_steps?: number; output_dir?: string };
      const outputDir = config.output_dir === undefined ? undefined : isAbsolute(config.output_dir) ? config.output_dir : join(outDir, config.output_dir);
      return { id: n.id, maxSteps: config.max_steps, outputDir };
    });
}

/** Creates the output folder, or throws one sentence naming it (a file in the way, no permission). */
export function prepareOutDir(outDir: string): void {
  try {
    mkdirSync(outDir, { recursive: true });
  } catch (error) {
    throw fileError(error, outDir, '--out');
  }
}

/** Checks that each trainer's checkpoint folder can be one (not a file), before any work. */
export function checkCheckpointFolders(graph: ResolvedGraph, outDir: string): void {
  for (const trainer of trainerNodes(graph, outDir)) {
    if (!trainer.outputDir) continue;
    let isFile = false;
    try {
      isFile = !statSync(trainer.outputDir).isDirectory();
    } catch {
      /* absent: created at the first checkpoint */
    }
    if (isFile) throw new Error(`train.grpo ${trainer.id} output_dir ${trainer.outputDir}: a file is in the way (a folder is needed there)`);
  }
}

/** Removes what killed runs left half-written in the output folder and the checkpoint folders. */
export async function removeStaleOutputs(graph: ResolvedGraph, outDir: string): Promise<string[]> {
  const removed = await removeStaleTemporaries(outDir);
  for (const trainer of trainerNodes(graph, outDir)) if (trainer.outputDir) removed.push(...(await removeStaleTemporaries(trainer.outputDir)));
  return removed;
}

export interface ResumeCheck {
  checkpoint: LoadedCheckpoint;
  warnings: string[];
}

/**
 * Loads the checkpoint to resume from and checks it fits this run: the same graph, model and dataset
 * (unless `anyway`), and a max_steps not reached yet. Throws one sentence otherwise.
 */
export async function loadCheckedResume(dir: string, graph: ResolvedGraph, outDir: string, fingerprint: RunFingerprint, anyway: boolean): Promise<ResumeCheck> {
  const checkpoint = await loadResumeCheckpoint(dir);
  const warnings: string[] = [];
  const recorded = checkpoint.extra?.fingerprint;
  if (recorded === undefined) {
    warnings.push(`checkpoint ${checkpoint.dir} records no fingerprint (written by an older grpoflow): not checked against this graph, model and dataset`);
  } else {
    const mismatch = fingerprintMismatch(recorded, fingerprint);
    if (mismatch && !anyway) throw new Error(`--resume ${checkpoint.dir}: ${mismatch}; resume it anyway with --resume-anyway`);
    if (mismatch) warnings.push(`--resume-anyway: checkpoint ${checkpoint.dir}: ${mismatch}`);
  }
  for (const trainer of trainerNodes(graph, outDir)) {
    if (trainer.maxSteps !== undefined && checkpoint.step >= trainer.maxSteps) {
      throw new Error(
        `--resume ${checkpoint.dir}: the checkpoint is at step ${checkpoint.step}, and train.grpo ${trainer.id} max_steps is ${trainer.maxSteps}: ` +
          `nothing is left to train; raise max_steps (--set nodes.${trainer.id}.with.max_steps=N) to continue`,
      );
    }
  }
  return { checkpoint, warnings };
}

/**
 * Keeps `wall_s` in OUT/summary.json as the run's total wall time: the time of the earlier segments (a
 * resumed run starts from the summary's value) plus this one's, written at every checkpoint and at the
 * end, so a segment killed outright still counts up to its last checkpoint.
 */
export class WallClock {
  private constructor(
    private readonly outDir: string,
    private readonly startedMs: number,
    private readonly earlierS: number,
  ) {}

  static async start(outDir: string, startedMs: number, resuming: boolean): Promise<WallClock> {
    const earlier = resuming ? (await readSummary(outDir).catch(() => ({}) as Record<string, unknown>)).wall_s : undefined;
    return new WallClock(outDir, startedMs, typeof earlier === 'number' && Number.isFinite(earlier) ? earlier : 0);
  }

  totalS(now = Date.now()): number {
    return Math.round((this.earlierS + (now - this.startedMs) / 1000) * 10) / 10;
  }

  write(): Promise<unknown> {
    return mergeSummary(this.outDir, { wall_s: this.totalS() });
  }

  /** Writes the total every time a checkpoint is reported on the bus. */
  followCheckpoints(bus: MetricsBus): Subscription {
    return bus.events$.subscribe((event) => {
      if (event.data && typeof event.data.checkpoint === 'string') void this.write().catch(() => undefined);
    });
  }
}
