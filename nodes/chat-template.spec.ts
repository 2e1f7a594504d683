import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { CausalLM } from '../engines/tfjs/model.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { chatTemplate } from './chat-template.js';

const FIXTURE = 'test/fixtures/llama-tiny';
const reference = (await import('../test/fixtures/llama-tiny/reference.json', { with: { type: 'json' } })).default as {
  chats: { messages: { role: string; content: string }[]; rendered: string }[];
};
const tokenizer = await Tokenizer.fromDir(FIXTURE);
/** chat.template reads only the model's folder. */
const model = { dir: FIXTURE } as CausalLM;

async function template(config: Record<string, unknown>, inputs: { model?: CausalLM; tokenizer?: Tokenizer } = {}, baseDir?: string) {
  const { ctx } = recordingContext(chatTemplate.config.parse(config), { baseDir });
  return firstValueFrom((await chatTemplate.run(ctx, { model: inputs.model, tokenizer: inputs.tokenizer })).template!);
}

describe('chat.template', () => {
  it("renders with the model folder's own template exactly as transformers did, date_string from variables", async () => {
    const t = await template({ variables: { date_string: '26 Jul 2024' } }, { model, tokenizer });
    for (const chat of reference.chats) expect(t.render(chat.messages, { addGenerationPrompt: true })).toBe(chat.rendered);
    // A render's own variables still win over the node's.
    expect(t.render(reference.chats[0].messages, { variables: { date_string: '01 Jan 2025' } })).toContain('Today Date: 01 Jan 2025');
  });

  it("replaces the model's template with a built-in by name, bos/eos from the tokenizer", async () => {
    const t = await template({ name: 'chatml' }, { model, tokenizer });
    expect(t.info.endOfTurn).toBe('<|im_end|>');
    expect(t.render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true })).toBe('<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    const llama = await template({ name: 'llama-3.1', variables: { date_string: '02 Feb 2025' } }, { tokenizer });
    const text = llama.render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true });
    expect(text.startsWith('<|begin_of_text|><|start_header_id|>system<|end_header_id|>')).toBe(true);
    expect(text).toContain('Today Date: 02 Feb 2025');
    expect(text.endsWith('<|start_header_id|>assistant<|end_header_id|>\n\n')).toBe(true);
  });

  it('reads a .jinja file relative to the graph folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tpl-'));
    writeFileSync(join(dir, 'mine.jinja'), '{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[{{ who }}] {% endif %}');
    const t = await template({ path: 'mine.jinja', variables: { who: 'bot' } }, { tokenizer }, dir);
    expect(t.render([{ role: 'user', content: '2+2?' }], { addGenerationPrompt: true })).toBe('<|begin_of_text|>[user] 2+2?\n[bot] ');
  });

  it('says what is wrong', async () => {
    await expect(template({})).rejects.toThrow(/no template source: connect `model`.*or set `name` \(llama-3\.1, chatml/);
    await expect(template({ name: 'vicuna' })).rejects.toThrow(/unknown chat template "vicuna"; built-in ones: llama-3\.1/);
    await expect(template({ path: 'missing.jinja' }, {}, tmpdir())).rejects.toThrow(/template file .*missing\.jinja not found/);
    await expect(template({}, { model: { dir: tmpdir() } as CausalLM })).rejects.toThrow(/has no chat template/);
    const both = chatTemplate.config.safeParse({ name: 'chatml', path: 'x.jinja' });
    expect(both.error?.issues[0].message).toBe('give at most one of "name" or "path"');
  });
});
