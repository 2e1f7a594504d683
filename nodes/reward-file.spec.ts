import { firstValueFrom } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import { recordingContext } from '../test/nodes/node-context.js';
import { rewardFile } from './reward-file.js';

const teardowns: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const teardown of teardowns) await teardown();
});

async function reward(config: Record<string, unknown>) {
  const { ctx, runTeardown } = recordingContext(rewardFile.config.parse(config), { id: 'mine', baseDir: 'test/nodes' });
  teardowns.push(runTeardown);
  return firstValueFrom((await rewardFile.run(ctx, {})).reward!);
}

const args = { prompts: [], completions: ['a', 'b'], fields: [{}, {}] };

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

  it('stops an endless loop and a promise that never settles at timeout_s, naming the file; the next batch runs', async () => {
    for (const name of ['endlessLoop', 'neverSettles']) {
      const r = await reward({ path: 'fixtures/reward-misbehaving.ts', export: name, timeout_s: 0.5 });
      const started = Date.now();
      await expect(r.score(args)).rejects.toThrow(/reward-misbehaving\.ts did not return within timeout_s 0\.5 s \(an endless loop, or a promise that never settles\); its worker was stopped/);
      expect(Date.now() - started).toBeLessThan(20_000);
      await expect(r.score(args)).rejects.toThrow(/did not return within timeout_s/); // a fresh worker, stopped again
    }
  });

  it('the reward sees only the environment the graph gives it', async () => {
    process.env.GRPOFLOW_TEST_SECRET = 'leaked';
    try {
      const blind = await reward({ path: 'fixtures/reward-misbehaving.ts', export: 'seesSecret' });
      expect(await blind.score(args)).toEqual([0, 0]);
      const given = await reward({ path: 'fixtures/reward-misbehaving.ts', export: 'seesSecret', env: { GRPOFLOW_TEST_SECRET: 'given' } });
      expect(await given.score(args)).toEqual([2, 2]);
    } finally {
      delete process.env.GRPOFLOW_TEST_SECRET;
    }
  });
});
