// Resuming a run from a checkpoint (`grpoflow run GRAPH --resume DIR`). The CLI loads the checkpoint once
// and hands it to every node as `ctx.services.resume`; each stateful node restores its own part:
// - train.grpo: the adapter weights, the optimiser moments and step, its counters (see nodes/train-grpo.ts);
// - the generator: it skips the prompts already trained on and re-derives its per-batch seeds, from
//   `trainingPosition` (the trainer consumes whole generation batches in order, so "prompts and batches
//   trained on" is exactly where the prompt stream and the batch seeds stand).
import { stat } from 'node:fs/promises';
import type { Services } from '../plugin.js';
import { latestCheckpoint, loadCheckpoint, type LoadedCheckpoint } from './checkpoint.js';

/** Where training stood when a checkpoint was written, counted in what the trainer had consumed. */
export interface TrainingPosition {
  /** Prompts (groups) in the generation batches trained on. */
  prompts: number;
  /** Generation batches trained on. */
  batches: number;
}

/** The service the CLI provides under `services.resume`. */
export interface ResumeService {
  checkpoint: LoadedCheckpoint;
}

/** A checkpoint folder, or an output_dir holding checkpoint-STEP folders (the newest is taken). */
export async function loadResumeCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  try {
    if (!(await stat(dir)).isDirectory()) throw new Error('not a folder');
  } catch (error) {
    throw new Error(`--resume ${dir}: ${(error as Error).message.includes('ENOENT') ? 'no such folder' : (error as Error).message}`);
  }
  const newest = await latestCheckpoint(dir);
  try {
    return await loadCheckpoint(newest ?? dir);
  } catch (error) {
    throw new Error(`--resume ${dir}: neither a checkpoint nor a folder of checkpoint-STEP folders (${(error as Error).message})`);
  }
}

export function resumeCheckpoint(services: Services): LoadedCheckpoint | undefined {
  const resume = services.resume as ResumeService | undefined;
  return resume?.checkpoint;
}

/** The training position saved in the resumed checkpoint, or undefined when not resuming. */
export function resumePosition(services: Services): TrainingPosition | undefined {
  const checkpoint = resumeCheckpoint(services);
  if (!checkpoint) return undefined;
  const position = checkpoint.datasetPosition as Partial<TrainingPosition> | undefined;
  if (!position || !Number.isInteger(position.prompts) || !Number.isInteger(position.batches)) {
    throw new Error(`checkpoint ${checkpoint.dir} has no training position (datasetPosition {prompts, batches})`);
  }
  return { prompts: position.prompts!, batches: position.batches! };
}
