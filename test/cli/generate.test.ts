import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runGenerate } from '../../core/cli/commands/generate.js';
import type { ChatMessage } from '../../core/ports.js';

const modelDir = 'test/fixtures/llama-tiny';
const reference = JSON.parse(readFileSync(`${modelDir}/reference.json`, 'utf8')) as Record<
  'chats' | 'adapter',
  { messages: ChatMessage[]; rendered: string; ids: number[]; greedy: number[]; sequence_logprobs: number[] }[]
>;
const tmp = mkdtempSync(join(tmpdir(), 'grpoflow-generate-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runGenerate(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('grpoflow generate reproduces transformers on llama-tiny', () => {
  const cases = [
    ...reference.chats.map((chat, i) => ['base', i, chat, []] as const),
    ...reference.adapter.map((chat, i) => ['adapter', i, chat, ['--adapter', `${modelDir}/adapter`]] as const),
  ];
  it.each(cases)('%s conversation %i', async (_, i, chat, extra) => {
    const messagesPath = join(tmp, `messages-${i}.json`);
    writeFileSync(messagesPath, JSON.stringify(chat.messages));
    const { code, out, err } = await cli([
      '--model', modelDir, ...extra, '--messages', messagesPath, '--temperature', '0', '--max-new-tokens', '12',
      '--chat-template-kwargs', '{"date_string":"26 Jul 2024"}', '--json',
    ]);
    expect(err).not.toMatch(/grpoflow generate:/);
    expect(code).toBe(0);
    const lines = out.trim().split('\n');
    expect(lines.length).toBe(1);
    const result = JSON.parse(lines[0]);
    expect(Object.keys(result).sort()).toEqual(['completion_ids', 'completion_logprobs', 'prompt_ids', 'rendered', 'text']);
    expect(result.rendered).toBe(chat.rendered);
    expect(result.prompt_ids).toEqual(chat.ids);
    expect(result.completion_ids).toEqual(chat.greedy);
    const tail = chat.sequence_logprobs.slice(chat.ids.length - 1);
    expect(result.completion_logprobs.length).toBe(tail.length);
    result.completion_logprobs.forEach((lp: number, j: number) => expect(Math.abs(lp - tail[j])).toBeLessThan(1e-4));
  });
});

describe('grpoflow generate usage', () => {
  it('prints only the text without --json, and builds messages from --system/--prompt', async () => {
    const { code, out } = await cli([
      '--model', modelDir, '--prompt', 'Hello', '--system', 'Be brief.', '--chat-template', 'llama-3.1',
      '--temperature', '0', '--max-new-tokens', '4', '--backend', 'cpu',
    ]);
    expect(code).toBe(0);
    expect(out.endsWith('\n')).toBe(true);
    expect(out).not.toContain('{"rendered"');
  });

  it('errors are one line with exit code 2 for bad usage and 1 for a missing model', async () => {
    const badJson = join(tmp, 'bad.json');
    writeFileSync(badJson, '[{"role": "user", ');
    const checks: [string[], number, RegExp][] = [
      [['--model', 'no/such/dir', '--prompt', 'x'], 1, /--model folder no\/such\/dir does not exist/],
      [['--model', modelDir, '--messages', badJson], 2, /--messages file .*bad\.json is not valid JSON/],
      [['--model', modelDir], 2, /exactly one of --prompt TEXT or --messages FILE\.json/],
      [['--model', modelDir, '--prompt', 'x', '--frobnicate'], 2, /frobnicate/],
      [['--prompt', 'x'], 2, /--model DIR is required/],
      [['--model', modelDir, '--prompt', 'x', '--chat-template-kwargs', '{oops'], 2, /--chat-template-kwargs is not valid JSON/],
      [['--model', modelDir, '--prompt', 'x', '--temperature', 'hot'], 2, /--temperature must be a number ≥ 0, got "hot"/],
      [['--model', modelDir, '--prompt', 'x', '--chat-template', 'nope'], 2, /unknown chat template "nope"/],
      [['--model', modelDir, '--prompt', 'x'.repeat(600), '--backend', 'cpu'], 1, /the prompt does not fit the model: \d+ prompt tokens \+ 256 new tokens = \d+, over the model's max_position_embeddings 512; shorten the prompt or lower --max-new-tokens/],
    ];
    for (const [argv, expected, message] of checks) {
      const { code, out, err } = await cli(argv);
      expect(code, argv.join(' ')).toBe(expected);
      expect(out).toBe('');
      expect(err.trim().split('\n').pop()).toMatch(message);
    }
  });
});
