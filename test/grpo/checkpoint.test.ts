import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { latestCheckpoint, listCheckpointSteps, loadCheckpoint, removeStaleTemporaries, saveCheckpoint, writeFileAtomic } from '../../core/grpo/checkpoint.js';
import { Rng } from '../../core/rng.js';
import type { AdamWState } from '../../engines/tfjs/grpo/optimizer.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'grpo-ckpt-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('replaces the content and leaves no temporary file', async () => {
    const path = join(root, 'state.json');
    await writeFileAtomic(path, 'old');
    await writeFileAtomic(path, new TextEncoder().encode('new'));
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(root)).toEqual(['state.json']);
  });

  it('an interrupted write leaves the old file intact', async () => {
    const path = join(root, 'adapter.bin');
    await writeFileAtomic(path, 'old content');
    async function* crashesHalfway() {
      yield new TextEncoder().encode('new con');
      throw new Error('disk unplugged');
    }
    await expect(writeFileAtomic(path, crashesHalfway())).rejects.toThrow(/disk unplugged/);
    expect(await readFile(path, 'utf8')).toBe('old content');
    expect(await readdir(root)).toEqual(['adapter.bin']);
  });
});

describe('saveCheckpoint / loadCheckpoint / latestCheckpoint', () => {
  const optimizer: AdamWState = {
    step: 3,
    m: [Float32Array.from([0.1, -0.2, 0.3]), Float32Array.from([1e-7])],
    v: [Float32Array.from([0.01, 0.02, 0.03]), Float32Array.from([4e-9])],
    names: ['lora_A', 'lora_B'],
    shapes: [[3], [1, 1]],
  };

  it('round-trips step, optimiser moments, RNG state, dataset position, extra and adapter files', async () => {
    const rng = new Rng(42);
    rng.next();
    const dir = await saveCheckpoint(
      root,
      { step: 3, optimizer, rngStates: { sampler: rng.state() }, datasetPosition: { epoch: 1, index: 17 }, extra: { numTokensSeen: 1234 } },
      { writeAdapter: async (d) => writeFile(join(d, 'adapter_config.json'), '{"r": 4}') },
    );
    expect(dir).toBe(join(root, 'checkpoint-3'));
    const loaded = await loadCheckpoint(dir);
    expect(loaded.step).toBe(3);
    expect(loaded.datasetPosition).toEqual({ epoch: 1, index: 17 });
    expect(loaded.extra).toEqual({ numTokensSeen: 1234 });
    expect(loaded.optimizer).toEqual(optimizer);
    const resumed = new Rng(loaded.rngStates!.sampler);
    expect(resumed.next()).toBe(rng.next());
    expect(await readFile(join(loaded.dir, 'adapter_config.json'), 'utf8')).toBe('{"r": 4}');
    expect(await latestCheckpoint(root)).toBe(dir);
  });

  it('a checkpoint whose writing fails never appears; the previous one stays the latest', async () => {
    await saveCheckpoint(root, { step: 1, optimizer });
    await expect(
      saveCheckpoint(root, { step: 2, optimizer }, { writeAdapter: async () => { throw new Error('killed'); } }),
    ).rejects.toThrow(/killed/);
    expect(await latestCheckpoint(root)).toBe(join(root, 'checkpoint-1'));
    expect(await readdir(root)).toEqual(['checkpoint-1']);
    // A folder left behind by a hard kill (no state file) and temporary folders are ignored too.
    await mkdir(join(root, 'checkpoint-5'));
    await mkdir(join(root, '.checkpoint-6.tmp-1-abcd'));
    expect(await listCheckpointSteps(root)).toEqual([1]);
  });

  it('orders numerically, replaces a same-step checkpoint, and keeps at most totalLimit', async () => {
    for (const step of [2, 10, 9]) await saveCheckpoint(root, { step, extra: { n: step } });
    expect(await latestCheckpoint(root)).toBe(join(root, 'checkpoint-10'));
    await saveCheckpoint(root, { step: 10, extra: { n: 'again' } }, { totalLimit: 2 });
    expect((await loadCheckpoint(join(root, 'checkpoint-10'))).extra).toEqual({ n: 'again' });
    expect(await listCheckpointSteps(root)).toEqual([9, 10]);
    expect(await latestCheckpoint(join(root, 'missing'))).toBeUndefined();
  });

  it('names the file when the state is unreadable or the optimiser file is truncated', async () => {
    await expect(loadCheckpoint(join(root, 'nope'))).rejects.toThrow(/cannot read .*nope\/trainer_state.json/);
    const dir = await saveCheckpoint(root, { step: 4, optimizer });
    await writeFile(join(dir, 'optimizer.bin'), new Uint8Array(5));
    await expect(loadCheckpoint(dir)).rejects.toThrow(/optimizer.bin has 5 bytes, the layout in trainer_state.json needs 32/);
  });
});

describe('what killed writers leave behind', () => {
  it('removes temporaries of processes that are gone, keeps those of a live one and everything else', async () => {
    const dead = `.checkpoint-3.tmp-999999999-ab12cd34`;
    const live = `.checkpoint-4.tmp-${process.pid}-ab12cd34`;
    for (const name of [dead, live, 'checkpoint-2']) await mkdir(join(root, name));
    await writeFile(join(root, `.summary.json.tmp-999999998-0011aabb`), '{');
    expect((await removeStaleTemporaries(root)).sort()).toEqual(['.checkpoint-3.tmp-999999999-ab12cd34', '.summary.json.tmp-999999998-0011aabb']);
    expect((await readdir(root)).sort()).toEqual([live, 'checkpoint-2'].sort());
    expect(await removeStaleTemporaries(join(root, 'absent'))).toEqual([]);
  });

  it('a write that fails names the file (a folder in the way here; ENOSPC the same way)', async () => {
    await writeFile(join(root, 'file'), 'x');
    await expect(writeFileAtomic(join(root, 'file', 'state.json'), 'data')).rejects.toThrow(`${join(root, 'file', 'state.json')}: a file is in the way (a folder is needed there) (ENOTDIR)`);
  });
});
