import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPeftAdapter, loraSnapshot } from '../engines/tfjs/lora.js';
import { type CausalLM } from '../engines/tfjs/model.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { tf } from '../engines/tfjs/tf.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { exportAdapter } from './export-adapter.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
const out = mkdtempSync(path.join(os.tmpdir(), 'export-adapter-'));
let model: CausalLM;
beforeAll(async () => {
  await tf.setBackend('cpu');
  model = await loadModel(LLAMA_TINY);
  loadPeftAdapter(model, path.join(LLAMA_TINY, 'adapter'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('export.adapter', () => {
  it("writes PEFT's two files under the run folder, and they reload to the same weights", async () => {
    const { ctx, events } = recordingContext(exportAdapter.config.parse({ path: 'final/adapter', base_model_name_or_path: 'meta-llama/Llama-3.2-3B-Instruct' }));
    await (await exportAdapter.run({ ...ctx, outDir: out }, { model })).done;
    const dir = path.join(out, 'final/adapter');
    expect(readdirSync(dir).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors']);
    const config = JSON.parse(readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    expect(config).toMatchObject({ peft_type: 'LORA', r: 8, lora_alpha: 16, base_model_name_or_path: 'meta-llama/Llama-3.2-3B-Instruct' });
    expect(readdirSync(path.join(out, 'final'))).toEqual(['adapter']); // no staging folder left behind
    expect(events.at(-1)?.message).toBe(`adapter exported to ${dir}`);

    const other = await loadModel(LLAMA_TINY);
    loadPeftAdapter(other, dir);
    expect(loraSnapshot(other)).toEqual(loraSnapshot(model));
  });

  it('refuses a model without an adapter', async () => {
    const bare = await loadModel(LLAMA_TINY);
    const { ctx } = recordingContext(exportAdapter.config.parse({}), { id: 'exp' });
    expect(() => exportAdapter.run({ ...ctx, outDir: out }, { model: bare })).toThrow('export.adapter exp: the model has no LoRA adapter to export');
  });
});
