import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { recordingContext } from '../test/nodes/node-context.js';
import { rewardLength } from './reward-length.js';

async function reward(config: Record<string, unknown>) {
  const { ctx } = recordingContext(rewardLength.config.parse(config), { id: 'short' });
  return firstValueFrom((await rewardLength.run(ctx, {})).reward!);
}
const args = (completions: string[]) => ({ prompts: [], completions, fields: completions.map(() => ({})) });

describe('reward.length', () => {
  it('penalises characters beyond the target', async () => {
    const r = await reward({ target: 5, scale: 0.5 });
    expect(r.name).toBe('short');
    expect(await r.score(args(['abc', 'abcde', 'abcdefg']))).toEqual([0, 0, -1]);
  });

  it('counts words and caps the penalty', async () => {
    const r = await reward({ target: 2, scale: 1, unit: 'words', max_penalty: 2 });
    expect(await r.score(args(['one two', 'one two three', 'a b c d e f']))).toEqual([0, -1, -2]);
  });

  it('needs a target and a non-negative scale', () => {
    expect(() => rewardLength.config.parse({})).toThrow();
    expect(() => rewardLength.config.parse({ target: 3, scale: -1 })).toThrow();
  });
});
