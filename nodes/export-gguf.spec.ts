import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gguf as parseGguf } from '@huggingface/gguf';
import { exportGguf } from '../core/gguf/export.js';
import { ChatTemplate } from '../core/llm/chat-template.js';
import { loadPeftAdapter } from '../engines/tfjs/lora.js';
import { createModel, loadModel } from '../engines/tfjs/model-loader.js';
import type { CausalLM } from '../engines/tfjs/model.js';
import { tf } from '../engines/tfjs/tf.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { exportGgufNode } from './export-gguf.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
const out = mkdtempSync(path.join(os.tmpdir(), 'export-gguf-'));
let model: CausalLM;
beforeAll(async () => {
  await tf.setBackend('cpu');
  model = await loadModel(LLAMA_TINY);
  loadPeftAdapter(model, path.join(LLAMA_TINY, 'adapter'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

const bytes = (file: string) => readFileSync(file);

describe('export.gguf', () => {
  it('writes the model with its LoRA merged: the same file as export-gguf --adapter --merge on the adapter folder', async () => {
    const { ctx, events } = recordingContext(exportGgufNode.config.parse({ path: 'gguf/model.gguf', type: 'q8_0' }));
    await (await exportGgufNode.run({ ...ctx, outDir: out }, { model, template: undefined })).done;
    const written = path.join(out, 'gguf/model.gguf');
    const expected = path.join(out, 'expected-merged.gguf');
    await exportGguf({ modelDir: LLAMA_TINY, adapterDir: path.join(LLAMA_TINY, 'adapter'), merge: true, type: 'q8_0', out: expected });
    expect(bytes(written).equals(bytes(expected))).toBe(true);
    expect(readdirSync(path.join(out, 'gguf'))).toEqual(['model.gguf']); // the scratch adapter folder is gone
    expect(events.at(-1)?.message).toBe(`model with its LoRA merged exported to ${written} (GGUF q8_0)`);
  });

  it('with merge: false writes the base model and the adapter GGUF; a template input replaces the chat template', async () => {
    const template = ChatTemplate.builtin('chatml');
    const { ctx } = recordingContext(exportGgufNode.config.parse({ path: 'base.gguf', type: 'f16', merge: false, adapter_path: 'lora/adapter.gguf' }));
    await (await exportGgufNode.run({ ...ctx, outDir: out }, { model, template })).done;
    const base = await parseGguf(path.join(out, 'base.gguf'), { allowLocalFile: true });
    expect((base.metadata as unknown as Record<string, unknown>)['tokenizer.chat_template']).toBe(template.source);
    expect((base.metadata as unknown as Record<string, unknown>)['general.file_type']).toBe(1);
    const expectedAdapter = path.join(out, 'expected-adapter.gguf');
    await exportGguf({ modelDir: LLAMA_TINY, adapterDir: path.join(LLAMA_TINY, 'adapter'), type: 'f16', out: expectedAdapter, name: 'llama-tiny-lora' });
    expect(bytes(path.join(out, 'lora/adapter.gguf')).equals(bytes(expectedAdapter))).toBe(true);
  });

  it('refuses a model that was not loaded from a folder, and bad config values', () => {
    const created = createModel(model.config, { seed: 0 });
    const { ctx } = recordingContext(exportGgufNode.config.parse({}), { id: 'gg' });
    expect(() => exportGgufNode.run({ ...ctx, outDir: out }, { model: created, template: undefined })).toThrow(/export.gguf gg: the model was not loaded from a folder/);
    expect(() => exportGgufNode.config.parse({ type: 'q3_k_s' })).toThrow();
    expect(() => exportGgufNode.config.parse({ adapter_type: 'q8_0' })).toThrow();
  });
});
