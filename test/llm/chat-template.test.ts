import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../core/llm/chat-template.js';
import { Tokenizer } from '../../core/llm/tokenizer.js';
import type { ChatMessage } from '../../core/ports.js';

const dir = 'test/fixtures/llama-tiny';
const reference = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as {
  chats: { messages: ChatMessage[]; rendered: string; ids: number[] }[];
};
const dateString = { date_string: '26 Jul 2024' };

describe('ChatTemplate.fromDir', async () => {
  const template = await ChatTemplate.fromDir(dir);
  const tokenizer = await Tokenizer.fromDir(dir);

  it('reproduces the fixture renderings and their ids (v5 layout: chat_template.jinja)', () => {
    for (const chat of reference.chats) {
      const rendered = template.render(chat.messages, { addGenerationPrompt: true, variables: dateString });
      expect(rendered).toBe(chat.rendered);
      expect(tokenizer.encode(rendered, { addSpecialTokens: false })).toEqual(chat.ids);
    }
  });

  const tmp = mkdtempSync(join(tmpdir(), 'grpoflow-chat-template-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const source = readFileSync(`${dir}/chat_template.jinja`, 'utf8');
  const config = JSON.parse(readFileSync(`${dir}/tokenizer_config.json`, 'utf8')) as Record<string, unknown>;

  it('reads the v4 layout (chat_template string in tokenizer_config.json)', async () => {
    const v4 = join(tmp, 'v4');
    rmSync(v4, { recursive: true, force: true });
    (await import('node:fs')).mkdirSync(v4);
    writeFileSync(join(v4, 'tokenizer_config.json'), JSON.stringify({ ...config, chat_template: source }));
    const fromConfig = await ChatTemplate.fromDir(v4);
    for (const chat of reference.chats) {
      expect(fromConfig.render(chat.messages, { addGenerationPrompt: true, variables: dateString })).toBe(chat.rendered);
    }
  });

  it('reads the list-of-named-templates form, picking "default" or the one asked for', async () => {
    const named = join(tmp, 'named');
    (await import('node:fs')).mkdirSync(named);
    writeFileSync(
      join(named, 'tokenizer_config.json'),
      JSON.stringify({
        ...config,
        chat_template: [
          { name: 'tool_use', template: 'TOOLS{{ messages[0].content }}' },
          { name: 'default', template: source },
        ],
      }),
    );
    const chat = reference.chats[0];
    const byDefault = await ChatTemplate.fromDir(named);
    expect(byDefault.render(chat.messages, { addGenerationPrompt: true, variables: dateString })).toBe(chat.rendered);
    const toolUse = await ChatTemplate.fromDir(named, { templateName: 'tool_use' });
    expect(toolUse.render([{ role: 'user', content: 'x' }])).toBe('TOOLSx');
    await expect(ChatTemplate.fromDir(named, { templateName: 'nope' })).rejects.toThrow(/no template named "nope".*tool_use, default/);
  });

  it('says so when a folder has no template', async () => {
    await expect(ChatTemplate.fromDir('test/fixtures/gsm8k')).rejects.toThrow(/has no chat template.*llama-3\.1/);
  });

  it('provides strftime_now (the llama template uses it when date_string is absent)', () => {
    const rendered = template.render(reference.chats[1].messages, { addGenerationPrompt: true });
    const day = String(new Date().getDate()).padStart(2, '0');
    expect(rendered).toMatch(new RegExp(`Today Date: ${day} [A-Z][a-z]{2} ${new Date().getFullYear()}\\n`));
  });

  it('turns raise_exception into an error naming the template', () => {
    const t = new ChatTemplate("{{ raise_exception('roles must alternate') }}", { name: 'test' });
    expect(() => t.render([{ role: 'user', content: 'x' }])).toThrow('chat template test failed to render: roles must alternate');
    expect(() => template.render([])).toThrow(/non-empty/);
    expect(() => new ChatTemplate('{% if %}', { name: 'broken' })).toThrow(/chat template broken does not parse/);
  });
});

describe('ChatTemplate.builtin', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'SYSTEM-TEXT' },
    { role: 'user', content: 'USER-TEXT' },
    { role: 'assistant', content: 'ASSISTANT-TEXT' },
    { role: 'user', content: 'SECOND-USER' },
  ];
  const cases: [string, string[], string][] = [
    ['llama-3.1', ['<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n', 'Today Date: 26 Jul 2024\n\nSYSTEM-TEXT<|eot_id|>', '<|start_header_id|>assistant<|end_header_id|>\n\nASSISTANT-TEXT<|eot_id|>'], '<|start_header_id|>assistant<|end_header_id|>\n\n'],
    ['chatml', ['<|im_start|>system\nSYSTEM-TEXT<|im_end|>\n', '<|im_start|>user\nUSER-TEXT<|im_end|>\n', '<|im_start|>assistant\nASSISTANT-TEXT<|im_end|>\n'], '<|im_start|>assistant\n'],
    ['qwen-2.5', ['<|im_start|>system\nSYSTEM-TEXT<|im_end|>\n<|im_start|>user\nUSER-TEXT<|im_end|>\n', '<|im_start|>assistant\nASSISTANT-TEXT<|im_end|>\n'], '<|im_start|>assistant\n'],
    ['mistral', ['<s> [INST] SYSTEM-TEXT\n\nUSER-TEXT [/INST] ASSISTANT-TEXT</s> [INST] SECOND-USER [/INST]'], ' [INST] SECOND-USER [/INST]'],
    ['gemma', ['<bos><start_of_turn>user\nSYSTEM-TEXT\n\nUSER-TEXT<end_of_turn>\n', '<start_of_turn>model\nASSISTANT-TEXT<end_of_turn>\n'], '<start_of_turn>model\n'],
    ['phi-3', ['<|system|>\nSYSTEM-TEXT<|end|>\n<|user|>\nUSER-TEXT<|end|>\n<|assistant|>\nASSISTANT-TEXT<|end|>\n'], '<|assistant|>\n'],
  ];
  const tokens: Record<string, { bosToken?: string; eosToken?: string }> = {
    'llama-3.1': { bosToken: '<|begin_of_text|>', eosToken: '<|eot_id|>' },
    mistral: { bosToken: '<s>', eosToken: '</s>' },
    gemma: { bosToken: '<bos>', eosToken: '<eos>' },
    'phi-3': { eosToken: '<|endoftext|>' },
  };

  it('offers at least the six named templates', () => {
    expect(ChatTemplate.builtinNames()).toEqual(expect.arrayContaining(cases.map((c) => c[0])));
    expect(() => ChatTemplate.builtin('vicuna-9')).toThrow(/unknown chat template "vicuna-9"; built-in ones: llama-3\.1/);
  });

  it.each(cases)('%s renders system+user+assistant with its markers', (name, markers, generationSuffix) => {
    const template = ChatTemplate.builtin(name, tokens[name]);
    const rendered = template.render(conversation, { addGenerationPrompt: true, variables: dateString });
    for (const marker of markers) expect(rendered).toContain(marker);
    expect(rendered.endsWith(generationSuffix)).toBe(true);
    expect(rendered).toContain('SECOND-USER');
    expect(template.info.endOfTurn).toBeTruthy();
  });

  it('llama-3.1 is the fixture template minus the strftime fallback, so it reproduces the fixture', () => {
    const template = ChatTemplate.builtin('llama-3.1', { bosToken: '<|begin_of_text|>' });
    for (const chat of reference.chats) {
      expect(template.render(chat.messages, { addGenerationPrompt: true, variables: dateString })).toBe(chat.rendered);
    }
  });

  it('qwen-2.5 inserts its default system message when none is given', () => {
    const rendered = ChatTemplate.builtin('qwen-2.5').render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    expect(rendered).toBe(
      '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
  });
});
