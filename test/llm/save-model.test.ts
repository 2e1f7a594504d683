// saveModel: the Hugging Face layout our loader (and transformers) reads back, f32 exact and bf16 close.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { createModel, loadModel } from '../../engines/tfjs/model-loader.js';
import { parseModelConfig } from '../../core/llm/config.js';
import { attachLora } from '../../engines/tfjs/lora.js';
import { readSafetensors, readSafetensorsHeader } from '../../core/llm/safetensors.js';
import { saveModel } from '../../engines/tfjs/save-model.js';
import { LLAMA_TINY, ids2d, maxAbsDiff, readReference } from './fixture.js';

const IDS = readReference().chats[0].ids.slice(0, 20);
let work: string;
let base: CausalLM;

const logitsOf = (model: CausalLM) => tf.tidy(() => model.forward(ids2d([IDS])).dataSync() as Float32Array);
const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

beforeAll(async () => {
  await initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'save-model-'));
  base = await loadModel(LLAMA_TINY);
});
afterAll(() => {
  base.dispose();
  rmSync(work, { recursive: true, force: true });
});

describe('saveModel', () => {
  it('writes the HF layout (v4 config, HF tensor names, generation config, tokenizer files) that reloads to identical f32 logits', async () => {
    const dir = join(work, 'f32');
    await saveModel(base, dir, { dtype: 'float32', tokenizerDir: LLAMA_TINY });
    expect(readdirSync(dir).sort()).toEqual(['chat_template.jinja', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);

    const config = json(join(dir, 'config.json'));
    expect(config).toMatchObject({
      architectures: ['LlamaForCausalLM'], model_type: 'llama', torch_dtype: 'float32', rope_theta: 500000,
      hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16,
      intermediate_size: 160, vocab_size: 1006, tie_word_embeddings: false, bos_token_id: 1000, eos_token_id: [1001, 1004],
    });
    expect(config.rope_parameters).toBeUndefined();
    expect(config.dtype).toBeUndefined();
    expect(json(join(dir, 'generation_config.json'))).toMatchObject({ bos_token_id: 1000, eos_token_id: [1001, 1004] });

    // Same tensor names, shapes and values as the transformers-written original.
    const original = readSafetensors(`${LLAMA_TINY}/model.safetensors`);
    const saved = readSafetensors(join(dir, 'model.safetensors'));
    expect([...saved.keys()].sort()).toEqual([...original.keys()].sort());
    for (const [name, t] of original) {
      expect(saved.get(name)!.shape, name).toEqual(t.shape);
      expect(maxAbsDiff(saved.get(name)!.data, t.data), name).toBe(0);
    }
    expect(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).toBe(readFileSync(`${LLAMA_TINY}/tokenizer.json`, 'utf8'));

    const reloaded = await loadModel(dir);
    expect(maxAbsDiff(logitsOf(reloaded), logitsOf(base))).toBe(0);
    reloaded.dispose();
  });

  it('stores bf16 (tied embeddings, no lm_head tensor) with logits close to the f32 model, and replaces an existing folder', async () => {
    const config = parseModelConfig({
      architectures: ['LlamaForCausalLM'], vocab_size: 300, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 2, head_dim: 8, tie_word_embeddings: true, rope_theta: 10000,
      rms_norm_eps: 1e-5, bos_token_id: 256, eos_token_id: 257, initializer_range: 0.2,
    });
    const model = createModel(config, { seed: 5 });
    const dir = join(work, 'bf16');
    await saveModel(model, dir, { dtype: 'float32', tokenizerFiles: { 'tokenizer_config.json': { eos_token: 'x' } } });
    await saveModel(model, dir, { dtype: 'bfloat16', tokenizerFiles: { 'chat_template.jinja': '{{ messages[0].content }}' }, generationConfig: { do_sample: false } });
    expect(readdirSync(dir).sort()).toEqual(['chat_template.jinja', 'config.json', 'generation_config.json', 'model.safetensors']);
    expect(readdirSync(work).filter((f) => f.startsWith('.'))).toEqual([]); // no staging folder left behind

    const header = readSafetensorsHeader(join(dir, 'model.safetensors'));
    expect(header['lm_head.weight']).toBeUndefined();
    expect(header['model.layers.1.self_attn.k_proj.weight']).toEqual({ dtype: 'BF16', shape: [16, 32] });
    expect(json(join(dir, 'config.json')).torch_dtype).toBe('bfloat16');
    expect(json(join(dir, 'generation_config.json'))).toMatchObject({ bos_token_id: 256, eos_token_id: 257, do_sample: false });

    const ids = [[256, 72, 101, 108, 108, 111, 33]];
    const reloaded = await loadModel(dir);
    expect(reloaded.config.tieWordEmbeddings).toBe(true);
    expect(reloaded.config.eosTokenIds).toEqual([257]);
    const before = tf.tidy(() => model.forward(ids2d(ids)).dataSync() as Float32Array);
    const after = tf.tidy(() => reloaded.forward(ids2d(ids)).dataSync() as Float32Array);
    const scale = Math.max(...Array.from(before, Math.abs));
    const diff = maxAbsDiff(before, after);
    expect(diff).toBeGreaterThan(0); // rounding to bf16 did happen
    expect(diff / scale).toBeLessThan(0.03);
    reloaded.dispose();
    model.dispose();
  });

  it('refuses an unmerged LoRA adapter and leaves no folder', async () => {
    const config = parseModelConfig(json(`${LLAMA_TINY}/config.json`));
    const model = createModel(config, { seed: 1 });
    attachLora(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj'], useRslora: false, seed: 0 });
    const dir = join(work, 'lora');
    await expect(saveModel(model, dir, { dtype: 'float32' })).rejects.toThrow(/unmerged LoRA adapter/);
    expect(existsSync(dir)).toBe(false);
    model.dispose();
  });
});
