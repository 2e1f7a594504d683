import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import {
  correctnessReward,
  formatReward,
  lengthPenalty,
  loadRewardModule,
  RewardError,
  scoreAnswer,
  scoreBatch,
} from '../../core/grpo/rewards/index.js';
import type { Completion, PromptRecord, RewardFunction, RolloutBatch } from '../../core/ports.js';

const prompt = (id: string, answer: string): PromptRecord => ({ id, messages: [{ role: 'user', content: id }], fields: { answer } });
const completion = (text: string): Completion => ({ text, ids: [1, 2], logprobs: [-1, -1], finishReason: 'eos' });
const args = (completions: string[], answers: string[] = completions.map(() => '72')) => ({
  prompts: answers.map((a, i) => prompt(`p${i}`, a)),
  completions,
  fields: answers.map((answer) => ({ answer })),
});

describe('formatReward', () => {
  const reward = formatReward();
  it('scores 3.0 for the reference format, across newlines (dot-all), with surrounding whitespace', async () => {
    const ok = '\n <reasoning>\n48/2 = 24\n48+24=72\n</reasoning>\nso\n<answer>\n72\n</answer>\n';
    expect(await reward.score(args([ok]))).toEqual([3.0]);
  });
  it('scores 0 for text outside the blocks, missing or empty blocks', async () => {
    const bad = [
      'Sure! <reasoning>x</reasoning><answer>72</answer>',
      '<reasoning>x</reasoning><answer>72</answer> thanks',
      '<answer>72</answer>',
      '<reasoning></reasoning><answer>72</answer>',
      '<reasoning>x</reasoning><answer></answer>',
    ];
    expect(await reward.score(args(bad))).toEqual([0, 0, 0, 0, 0]);
  });
  it('takes a custom pattern, flags and score; a global flag does not make results depend on history', async () => {
    const custom = formatReward({ pattern: '^yes', flags: 'gi', score: 0.5 });
    expect(await custom.score(args(['Yes', 'yes', 'no']))).toEqual([0.5, 0.5, 0]);
    expect(() => formatReward({ pattern: '(' })).toThrow(/invalid pattern/);
  });
});

describe('correctnessReward (reference rules)', () => {
  const cases: [string, string, number][] = [
    ['<answer>72</answer>', '72', 3.0],
    ['<answer> 72 </answer>', '72', 3.0], // whitespace stripped
    ['<answer>$1,000</answer>', '1000', 3.0], // $ and , removed
    ['<answer>50%</answer>', '50', 3.0], // % removed
    ['<answer>1000</answer>', '$1,000', 3.0], // the reference is cleaned the same way
    ['<answer>68</answer>', '72', 1.0], // 68/72 = 0.944
    ['<answer>79.2</answer>', '72', 1.0], // exactly 1.1
    ['<answer>80</answer>', '72', -1.5], // 1.11
    ['<answer>72.0</answer>', '72', 1.0], // equal by value, not by string
    ['<answer>seventy-two</answer>', '72', -1.5], // unparsable
    ['<answer>72 apples</answer>', '72', -1.5], // not a number as a whole
    ['<answer>   </answer>', '72', 0], // empty after stripping
    ['<answer>$</answer>', '72', 0], // empty after cleaning
    ['72', '72', 0], // no tag
    ['<answer>72</answer><answer>5</answer>', '72', 3.0], // the first block counts
    ['<answer>0.0</answer>', '0', 1.0], // zero reference: numeric equality only
    ['<answer>0.01</answer>', '0', -1.5],
    ['<answer>-72</answer>', '-72', 3.0],
    ['<answer>-68</answer>', '-72', 1.0], // ratio 0.944 with both negative
    ['<answer>68</answer>', '-72', -1.5], // negative ratio
  ];
  for (const [text, truth, expected] of cases) {
    it(`${JSON.stringify(text)} vs ${JSON.stringify(truth)} → ${expected}`, () => {
      expect(scoreAnswer(text, truth)).toBe(expected);
    });
  }
  it('reads the named field and fails clearly when a row lacks it', async () => {
    const reward = correctnessReward({ field: 'solution' });
    expect(await reward.score({ ...args(['<answer>3</answer>']), fields: [{ solution: 3 }] })).toEqual([3.0]);
    expect(() => reward.score({ ...args(['<answer>3</answer>']), fields: [{ answer: '3' }] })).toThrow(/no "solution" field \(fields: answer\)/);
  });
});

describe('lengthPenalty', () => {
  it('penalises characters (code points) beyond the target, with a cap', async () => {
    const reward = lengthPenalty({ target: 4, scale: 0.5, maxPenalty: 2 });
    expect(await reward.score(args(['abc', 'abcd', 'abcdef', '😀😀😀😀😀', 'abcdefghijkl']))).toEqual([0, 0, -1, -0.5, -2]);
  });
  it('counts words when asked and rejects negative settings', async () => {
    const reward = lengthPenalty({ target: 2, scale: 1, unit: 'words' });
    expect(await reward.score(args(['one two', ' one  two three ', '']))).toEqual([0, -1, 0]);
    expect(() => lengthPenalty({ target: -1, scale: 1 })).toThrow(/non-negative/);
  });
});

describe('loadRewardModule', () => {
  const path = fileURLToPath(new URL('./fixtures/user-reward.ts', import.meta.url));
  it('loads the default export and a named export', async () => {
    const parity = await loadRewardModule(path);
    expect(parity.name).toBe('user-reward');
    expect(await parity.score(args(['ab', 'abc']))).toEqual([1, 0]);
    const shouting = await loadRewardModule(path, 'shouting', { weight: 0.5 });
    expect(shouting).toMatchObject({ name: 'shouting', weight: 0.5, onError: 'fail' });
    expect(await shouting.score(args(['LOUD', 'quiet']))).toEqual([1, -1]);
  });
  it('says what is wrong with a missing file, export or a non-function', async () => {
    await expect(loadRewardModule('/nonexistent/reward.ts')).rejects.toThrow(/file not found/);
    await expect(loadRewardModule(path, 'nope')).rejects.toThrow(/no export "nope" \(exports: .*shouting/);
    await expect(loadRewardModule(path, 'notAFunction')).rejects.toThrow(/is number, expected a function/);
  });
});

describe('scoreBatch', () => {
  const batch: RolloutBatch = {
    index: 7,
    policyVersion: 0,
    groups: [
      { prompt: prompt('q0', '72'), promptText: 'q0', promptIds: [1], completions: [completion('<answer>72</answer>'), completion('<answer>68</answer>')] },
      { prompt: prompt('q1', '10'), promptText: 'q1', promptIds: [1], completions: [completion('10'), completion('<answer>3</answer>')] },
    ],
  };
  const fixed = (name: string, values: unknown, onError: RewardFunction['onError'] = 'fail', weight = 1): RewardFunction => ({
    name,
    weight,
    onError,
    score: () => values as number[],
  });

  it('scores each function, regroups per prompt and sums with weights', async () => {
    const scored = await scoreBatch(batch, [correctnessReward({ weight: 2 }), fixed('bonus', [1, 2, 3, 4], 'fail', 0.5)]);
    expect(scored.rewards[0]).toEqual({ name: 'correctness', weight: 2, values: [[3, 1], [0, -1.5]] });
    expect(scored.rewards[1].values).toEqual([[1, 2], [3, 4]]);
    expect(scored.totals).toEqual([[6.5, 3], [1.5, -1]]);
    expect(scored.groups).toBe(batch.groups);
  });

  it('passes each completion its own prompt and fields (async rewards too)', async () => {
    const seen: string[] = [];
    const spy: RewardFunction = {
      name: 'spy',
      weight: 1,
      onError: 'fail',
      score: async ({ prompts, completions, fields }) => {
        completions.forEach((c, i) => seen.push(`${prompts[i].id}:${fields[i].answer}`));
        return completions.map(() => 0);
      },
    };
    await scoreBatch(batch, [spy]);
    expect(seen).toEqual(['q0:72', 'q0:72', 'q1:10', 'q1:10']);
  });

  it('names the reward and the sample for NaN, wrong count, throws', async () => {
    const nan = scoreBatch(batch, [fixed('nanny', [1, 2, NaN, 4])]);
    await expect(nan).rejects.toThrow(/reward "nanny" in rollout batch 7: sample 2 \(group 1 "q1", completion 0\): returned NaN/);
    await expect(nan).rejects.toBeInstanceOf(RewardError);
    await expect(scoreBatch(batch, [fixed('short', [1, 2])])).rejects.toThrow(/reward "short".*returned 2 values for 4 completions/);
    await expect(scoreBatch(batch, [fixed('obj', { a: 1 })])).rejects.toThrow(/reward "obj".*returned object, expected an array/);
    const thrower: RewardFunction = { name: 'boom', weight: 1, onError: 'fail', score: () => { throw new Error('kaput'); } };
    await expect(scoreBatch(batch, [thrower])).rejects.toThrow(/reward "boom".*threw kaput/);
    await expect(scoreBatch(batch, [fixed('str', [1, '2', 3, 4])])).rejects.toThrow(/sample 1 \(group 0 "q0", completion 1\): returned string/);
  });

  it("with onError 'zero' scores the bad values 0 and warns", async () => {
    const warnings: string[] = [];
    const scored = await scoreBatch(batch, [fixed('nanny', [1, 2, NaN, 4], 'zero'), fixed('short', [1], 'zero')], {
      onWarning: (m) => warnings.push(m),
    });
    expect(scored.rewards[0].values).toEqual([[1, 2], [0, 4]]);
    expect(scored.rewards[1].values).toEqual([[0, 0], [0, 0]]);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/reward "nanny".*sample 2.*returned NaN, expected a finite number; scoring 0/);
  });
});
