import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { recordingContext } from '../test/nodes/node-context.js';
import { rewardFile } from './reward-file.js';

async function reward(config: Record<string, unknown>) {
  const { ctx } = recordingContext(rewardFile.config.parse(config), { id: 'mine', baseDir: 'test/nodes' });
  return firstValueFrom((await rewardFile.run(ctx, {})).reward!);
}

describe('reward.file', () => {
  it('loads a named export from a .ts file relative to the graph folder', async () => {
    const r = await reward({ path: 'fixtures/reward-module.ts', export: 'digitCount', weight: 0.25 });
    expect(r).toMatchObject({ name: 'mine', weight: 0.25, onError: 'fail' });
    expect(await r.score({ prompts: [], completions: ['a1b22', 'none'], fields: [{}, {}] })).toEqual([3, 0]);
  });

  it('uses the default export unless told otherwise; the reward sees the row fields', async () => {
    const r = await reward({ path: 'fixtures/reward-module.ts', name: 'echo', on_error: 'zero' });
    expect(r).toMatchObject({ name: 'echo', onError: 'zero' });
    expect(await r.score({ prompts: [], completions: ['it is 7', 'it is 8'], fields: [{ answer: 7 }, { answer: 7 }] })).toEqual([1, 0]);
  });

  it('says what is wrong with a missing file, a missing export, or a non-function export', async () => {
    await expect(reward({ path: 'fixtures/nope.ts' })).rejects.toThrow(/nope\.ts: file not found/);
    await expect(reward({ path: 'fixtures/reward-module.ts', export: 'absent' })).rejects.toThrow(/no export "absent" \(exports: .*digitCount/);
    await expect(reward({ path: 'fixtures/reward-module.ts', export: 'notAFunction' })).rejects.toThrow(/is number, expected a function/);
  });
});
