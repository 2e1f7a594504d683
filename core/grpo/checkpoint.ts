// Atomic checkpoints: every file is written to a temporary name, fsynced, then renamed; a checkpoint
// folder is assembled under a temporary name and renamed into place, so a crash at any moment leaves
// either the previous checkpoint or the new one, never a half-written one.
//
// Layout of ROOT/checkpoint-STEP/:
//   trainer_state.json   step, RNG states, dataset position, extra, optimiser layout (written last)
//   optimizer.bin        AdamW moments, float32 little-endian: m[0], v[0], m[1], v[1], ...
//   (adapter files)      whatever the adapter callback writes (PEFT's adapter_config.json + safetensors)
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { RngState } from '../rng.js';
import { fileError } from '../runtime/file-error.js';

/** An AdamW optimiser's state as a checkpoint stores it (engines lay theirs out this way). */
export interface AdamWState {
  step: number;
  /** First and second moments per variable, in the variables' order, as flat Float32Arrays. */
  m: Float32Array[];
  v: Float32Array[];
  /** Variable names and shapes, to catch a checkpoint loaded into a different adapter. */
  names: string[];
  shapes: number[][];
}

export type FileData = string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

async function fsyncDirectory(dir: string): Promise<void> {
  // Makes the rename itself durable. Some platforms cannot open a directory for sync; that is not fatal.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* directory fsync unsupported here */
  }
}

function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
}

/** The names in a folder; none when it does not exist (yet). */
async function entriesOf(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

const TEMP_NAME = /^\..+\.tmp-(\d+)-[0-9a-f]+$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files and folders (`.NAME.tmp-PID-XXXX`) that a process killed while writing
 * (SIGKILL, power loss) left in `dir`: those of a process that no longer runs. Returns their names.
 */
export async function removeStaleTemporaries(dir: string): Promise<string[]> {
  const entries = await entriesOf(dir);
  const stale = entries.filter((name) => {
    const match = TEMP_NAME.exec(name);
    return match !== null && Number(match[1]) !== process.pid && !processAlive(Number(match[1]));
  });
  for (const name of stale) await rm(join(dir, name), { recursive: true, force: true });
  return stale;
}

/** Writes `data` to `path` so that readers see the old content or the new, never a part. */
export async function writeFileAtomic(path: string, data: FileData): Promise<void> {
  try {
    await writeFileAtomicUnnamed(path, data);
  } catch (error) {
    throw fileError(error, path);
  }
}

async function writeFileAtomicUnnamed(path: string, data: FileData): Promise<void> {
  const temp = tempName(path);
  const handle = await open(temp, 'w');
  try {
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) {
        await handle.writeFile(data);
      } else {
        for await (const chunk of data as AsyncIterable<Uint8Array>) await handle.write(chunk);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(dirname(path));
}

export interface CheckpointData {
  step: number;
  optimizer?: AdamWState;
  /** Named generator states (the sampler's, the dataset shuffler's, ...). */
  rngStates?: Record<string, RngState>;
  /** Where the prompt stream stands (a row index, or an object with epoch and index). JSON-serialisable. */
  datasetPosition?: unknown;
  /** Anything else JSON-serialisable the caller wants back on resume. */
  extra?: Record<string, unknown>;
}

export interface SaveCheckpointOptions {
  /** Writes the adapter's files into the given (temporary) checkpoint folder. */
  writeAdapter?: (dir: string) => Promise<void>;
  /** Keep at most this many checkpoints under the root, deleting the oldest (HF's save_total_limit). */
  totalLimit?: number;
}

export interface LoadedCheckpoint extends CheckpointData {
  /** The checkpoint folder (where the adapter files are). */
  dir: string;
}

const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.bin';
const CHECKPOINT_NAME = /^checkpoint-(\d+)$/;

export function checkpointDir(root: string, step: number): string {
  return join(root, `checkpoint-${step}`);
}

function* optimizerChunks(state: AdamWState): Iterable<Uint8Array> {
  for (let i = 0; i < state.m.length; i++) {
    for (const moment of [state.m[i], state.v[i]]) {
      const bytes = new Uint8Array(moment.byteLength);
      const view = new DataView(bytes.buffer);
      for (let j = 0; j < moment.length; j++) view.setFloat32(j * 4, moment[j], true);
      yield bytes;
    }
  }
}

/** Writes ROOT/checkpoint-STEP/ atomically and returns its path. An existing folder for the same step is replaced. */
export async function saveCheckpoint(root: string, data: CheckpointData, options: SaveCheckpointOptions = {}): Promise<string> {
  if (!Number.isInteger(data.step) || data.step < 0) throw new Error(`saveCheckpoint: step must be a non-negative integer (got ${data.step})`);
  try {
    await mkdir(root, { recursive: true });
  } catch (error) {
    throw fileError(error, root);
  }
  const finalDir = checkpointDir(root, data.step);
  const temp = tempName(finalDir);
  await mkdir(temp);
  try {
    if (options.writeAdapter) await options.writeAdapter(temp);
    let optimizerLayout: Omit<AdamWState, 'm' | 'v'> | undefined;
    if (data.optimizer) {
      await writeFileAtomic(join(temp, OPTIMIZER_FILE), optimizerChunks(data.optimizer));
      const { m: _m, v: _v, ...layout } = data.optimizer;
      optimizerLayout = layout;
    }
    const state = {
      format: 'grpoflow-checkpoint/1',
      step: data.step,
      rngStates: data.rngStates ?? {},
      datasetPosition: data.datasetPosition ?? null,
      extra: data.extra ?? {},
      optimizer: optimizerLayout ?? null,
    };
    await writeFileAtomic(join(temp, STATE_FILE), JSON.stringify(state, null, 2) + '\n');
    await fsyncDirectory(temp);
    let previous: string | undefined;
    if (await exists(finalDir)) {
      previous = tempName(finalDir);
      await rename(finalDir, previous);
    }
    await rename(temp, finalDir);
    await fsyncDirectory(root);
    if (previous) await rm(previous, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true });
    throw error;
  }
  if (options.totalLimit !== undefined && options.totalLimit > 0) {
    const steps = await listCheckpointSteps(root);
    for (const step of steps.slice(0, Math.max(0, steps.length - options.totalLimit))) {
      await rm(checkpointDir(root, step), { recursive: true, force: true });
    }
  }
  return finalDir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Steps of the complete checkpoints under root, ascending (temporary folders are ignored). */
export async function listCheckpointSteps(root: string): Promise<number[]> {
  const entries = await entriesOf(root);
  const steps: number[] = [];
  for (const name of entries) {
    const match = CHECKPOINT_NAME.exec(name);
    if (match && (await exists(join(root, name, STATE_FILE)))) steps.push(Number(match[1]));
  }
  return steps.sort((a, b) => a - b);
}

/** The newest complete checkpoint folder under root, or undefined when there is none. */
export async function latestCheckpoint(root: string): Promise<string | undefined> {
  await removeStaleTemporaries(root);
  const steps = await listCheckpointSteps(root);
  return steps.length ? checkpointDir(root, steps[steps.length - 1]) : undefined;
}

export async function loadCheckpoint(dir: string): Promise<LoadedCheckpoint> {
  const statePath = join(dir, STATE_FILE);
  let state: {
    format?: string;
    step: number;
    rngStates: Record<string, RngState>;
    datasetPosition: unknown;
    extra: Record<string, unknown>;
    optimizer: Omit<AdamWState, 'm' | 'v'> | null;
  };
  try {
    state = JSON.parse(await readFile(statePath, 'utf8'));
  } catch (error) {
    throw new Error(`loadCheckpoint: cannot read ${statePath}: ${(error as Error).message}`);
  }
  if (state.format !== 'grpoflow-checkpoint/1') throw new Error(`loadCheckpoint: ${statePath} is not a grpoflow checkpoint (format ${state.format})`);
  let optimizer: AdamWState | undefined;
  if (state.optimizer) {
    const bytes = await readFile(join(dir, OPTIMIZER_FILE));
    const sizes = state.optimizer.shapes.map((shape) => shape.reduce((a, b) => a * b, 1));
    const expectedBytes = sizes.reduce((a, b) => a + 2 * b * 4, 0);
    if (bytes.byteLength !== expectedBytes) {
      throw new Error(`loadCheckpoint: ${join(dir, OPTIMIZER_FILE)} has ${bytes.byteLength} bytes, the layout in ${STATE_FILE} needs ${expectedBytes}`);
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let offset = 0;
    const read = (n: number) => {
      const out = new Float32Array(n);
      for (let j = 0; j < n; j++) out[j] = view.getFloat32(offset + j * 4, true);
      offset += n * 4;
      return out;
    };
    const m: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (const n of sizes) {
      m.push(read(n));
      v.push(read(n));
    }
    optimizer = { ...state.optimizer, m, v };
  }
  return {
    dir,
    step: state.step,
    optimizer,
    rngStates: state.rngStates,
    datasetPosition: state.datasetPosition ?? undefined,
    extra: state.extra,
  };
}
