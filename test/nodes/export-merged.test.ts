// export.merged on llama-tiny with the fixture's PEFT adapter: the exported folder reloads with our loader
// and reproduces base + adapter (greedy tokens; logits within the storage dtype's rounding), the f32
// export matches transformers' merge_and_unload reference within 1e-4, and the model in memory is left
// bit-exact (the merge goes into copies).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatTemplate } from '../../core/llm/chat-template.js';
import { generate } from '../../engines/tfjs/generate.js';
import { loadPeftAdapter } from '../../engines/tfjs/lora.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import { tf } from '../../engines/tfjs/tf.js';
import { exportMerged } from '../../nodes/export-merged.js';
import { LLAMA_TINY, maxAbsDiff, readReference } from '../llm/fixture.js';
import { recordingContext } from './node-context.js';

const reference = readReference();
const out = mkdtempSync(path.join(os.tmpdir(), 'export-merged-'));
let model: CausalLM;
let template: ChatTemplate;

beforeAll(async () => {
  await tf.setBackend('cpu');
  model = await loadModel(LLAMA_TINY);
  loadPeftAdapter(model, path.join(LLAMA_TINY, 'adapter'));
  template = await ChatTemplate.fromDir(LLAMA_TINY);
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

function lastLogits(m: CausalLM, ids: number[]): Float32Array {
  return tf.tidy(() => {
    const logits = m.forward(tf.tensor2d([ids], [1, ids.length], 'int32'));
    return logits.slice([0, ids.length - 1, 0], [1, 1, -1]).reshape([-1]);
  }).dataSync() as Float32Array;
}

async function greedy(m: CausalLM): Promise<number[][]> {
  const results = await generate(m, reference.adapter.map((c) => ({ promptIds: c.ids, maxNewTokens: 12 })), { temperature: 0 });
  return results.map((r) => r.ids);
}

async function exportAs(dtype: 'float32' | 'bfloat16' | 'float16'): Promise<string> {
  const config = exportMerged.config.parse({ path: path.join(out, dtype), dtype });
  const { ctx, events } = recordingContext(config, { id: `merged-${dtype}` });
  const result = await exportMerged.run({ ...ctx, outDir: out }, { model, template });
  await result.done;
  expect(events.at(-1)?.message).toContain(`merged model exported to ${path.join(out, dtype)}`);
  return path.join(out, dtype);
}

describe('export.merged', () => {
  it('f32 export reloads to transformers’ merged reference (1e-4) and leaves the live model bit-exact', async () => {
    const live = reference.adapter.map((c) => lastLogits(model, c.ids));
    const dir = await exportAs('float32');
    // The model still in use is untouched: same logits to the last bit, adapter not merged.
    reference.adapter.forEach((c, i) => expect(maxAbsDiff(lastLogits(model, c.ids), live[i])).toBe(0));
    expect(model.lora!.merged).toBe(false);

    const reloaded = await loadModel(dir);
    expect(reloaded.lora).toBeUndefined();
    reference.merged.forEach((c) => expect(maxAbsDiff(lastLogits(reloaded, c.ids), c.last_logits)).toBeLessThan(1e-4));
    expect(await greedy(reloaded)).toEqual(reference.merged.map((c) => c.greedy));
    expect(await greedy(reloaded)).toEqual(await greedy(model));

    const config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(config.torch_dtype).toBe('float32');
    expect(readFileSync(path.join(dir, 'chat_template.jinja'), 'utf8')).toBe(template.source);
    expect(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')).toBe(readFileSync(path.join(LLAMA_TINY, 'tokenizer.json'), 'utf8'));
    expect(JSON.parse(readFileSync(path.join(dir, 'generation_config.json'), 'utf8')).eos_token_id).toEqual(model.config.eosTokenIds.length === 1 ? model.config.eosTokenIds[0] : model.config.eosTokenIds);
  });

  // Storing a weight in bf16 (8-bit significand) or f16 (11-bit) changes it by at most 2^-9 or 2^-12 of
  // itself. Through llama-tiny's two layers those errors add up to a small fraction of the logits' range;
  // the bound below is that per-weight precision × 8, relative to the largest logit, which leaves room for
  // accumulation over a layer's sums while still failing for a wrong merge (missing or doubled adapter,
  // whose effect on this fixture is of the order of the logits themselves).
  for (const [dtype, precision] of [['bfloat16', 2 ** -9], ['float16', 2 ** -12]] as const) {
    it(`${dtype} export reloads to the same greedy tokens as base + adapter, logits within its rounding`, async () => {
      const dir = await exportAs(dtype);
      const reloaded = await loadModel(dir);
      expect(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')).torch_dtype).toBe(dtype);
      expect(await greedy(reloaded)).toEqual(await greedy(model));
      for (const c of reference.adapter) {
        const expected = lastLogits(model, c.ids);
        const scale = Math.max(...Array.from(expected, Math.abs));
        expect(maxAbsDiff(lastLogits(reloaded, c.ids), expected)).toBeLessThan(8 * precision * scale);
      }
    });
  }

  it('a wrong merge would fail the bound: the adapter moves the logits far more than bf16 rounding does', () => {
    const base = reference.chats[0].last_logits;
    const merged = reference.merged[0].last_logits;
    const scale = Math.max(...base.map(Math.abs));
    expect(maxAbsDiff(base, merged)).toBeGreaterThan(8 * 2 ** -9 * scale);
  });
});
