import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { recordingContext } from '../test/nodes/node-context.js';
import { rewardFormat } from './reward-format.js';

async function reward(config: Record<string, unknown>, id = 'format') {
  const { ctx } = recordingContext(rewardFormat.config.parse(config), { id });
  return firstValueFrom((await rewardFormat.run(ctx, {})).reward!);
}

const args = (completions: string[]) => ({ prompts: [], completions, fields: completions.map(() => ({})) });

describe('reward.format', () => {
  it("scores the reference workflow's format by default (3.0, dot-all), named after the node", async () => {
    const r = await reward({});
    expect(r).toMatchObject({ name: 'format', weight: 1, onError: 'fail' });
    const scores = await r.score(
      args([
        '<reasoning>\nstep one\nstep two\n</reasoning>\n<answer>42</answer>\n',
        '<answer>42</answer>',
        'The answer is <reasoning>x</reasoning><answer>1</answer>', // text before the block
        '<reasoning>x</reasoning><answer></answer>', // empty answer
      ]),
    );
    expect(scores).toEqual([3, 0, 0, 0]);
  });

  it('takes a pattern, flags, score, weight, on_error and name', async () => {
    const r = await reward({ pattern: '^yes$', flags: 'i', score: 0.5, weight: 2, on_error: 'zero', name: 'polite' }, 'node-id');
    expect(r).toMatchObject({ name: 'polite', weight: 2, onError: 'zero' });
    expect(await r.score(args(['YES', 'no', 'yes!']))).toEqual([0.5, 0, 0]);
  });

  it('rejects a bad regex and unknown keys', async () => {
    await expect(reward({ pattern: '(' })).rejects.toThrow(/invalid pattern "\("/);
    expect(() => rewardFormat.config.parse({ regex: 'x' })).toThrow();
    expect(() => rewardFormat.config.parse({ on_error: 'ignore' })).toThrow();
  });
});
