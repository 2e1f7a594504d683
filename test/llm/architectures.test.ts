// The other families of the architecture table on tiny random models: Qwen2 (q/k/v bias), Qwen3
// (q/k RMSNorm, head_dim ≠ hidden/heads), tied embeddings, Mistral. No reference outputs exist for
// these, so they are checked for shapes, for the KV-cache path equalling the full forward, for
// padding invariance, and for loading from a written checkpoint equalling the in-memory model.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { PROJECTIONS, type CausalLM } from '../../engines/tfjs/model.js';
import { createModel, loadModel } from '../../engines/tfjs/model-loader.js';
import { parseModelConfig } from '../../core/llm/config.js';
import { writeSafetensors } from '../../core/llm/safetensors.js';
import { modelTensors } from '../../engines/tfjs/save-model.js';
import { Rng } from '../../core/rng.js';
import { ids2d, maxAbsDiff } from './fixture.js';

const common = {
  vocab_size: 97, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
  intermediate_size: 48, rms_norm_eps: 1e-6, max_position_embeddings: 256, rope_theta: 10000, eos_token_id: 2,
};

const FAMILIES: Record<string, Record<string, unknown>> = {
  qwen2: { ...common, architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', tie_word_embeddings: true },
  qwen3: { ...common, architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', head_dim: 24, tie_word_embeddings: true },
  'llama-tied-headdim': { ...common, architectures: ['LlamaForCausalLM'], model_type: 'llama', head_dim: 12, tie_word_embeddings: true, attention_bias: true },
  mistral: { ...common, architectures: ['MistralForCausalLM'], model_type: 'mistral', num_key_value_heads: 1, tie_word_embeddings: false, sliding_window: 3 },
};

/** Random biases and norm weights (createModel starts them at 0 and 1, which would hide bugs). */
function perturbVectors(model: CausalLM, seed: number): void {
  const rng = new Rng(seed);
  const random = (t: tf.Tensor1D) => tf.tensor1d(Array.from({ length: t.shape[0] }, () => 1 + 0.3 * rng.normal()));
  for (const layer of model.weights.layers) {
    for (const key of ['inputNorm', 'postAttentionNorm', 'qNorm', 'kNorm'] as const) {
      const t = layer[key];
      if (t) {
        layer[key] = random(t);
        t.dispose();
      }
    }
    for (const p of PROJECTIONS) {
      const lin = layer.proj[p];
      if (lin.bias) {
        const old = lin.bias;
        lin.bias = tf.tidy(() => tf.sub(random(old), 1) as tf.Tensor1D);
        old.dispose();
      }
    }
  }
}


const PROMPTS = [[5, 17, 33, 8, 61, 2, 44], [9, 90, 12]];

it('Qwen sliding-window settings apply only with use_sliding_window', () => {
  const qwen = FAMILIES.qwen2;
  expect(parseModelConfig({ ...qwen, sliding_window: 4096, use_sliding_window: false }).slidingWindow).toBeUndefined();
  expect(() => parseModelConfig({ ...qwen, sliding_window: 4096, use_sliding_window: true })).toThrow(/use_sliding_window=true .* not supported/);
  expect(parseModelConfig({ ...FAMILIES.mistral, sliding_window: null }).slidingWindow).toBeUndefined();
});

let work: string;
beforeAll(async () => {
  await initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'arch-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

for (const [family, raw] of Object.entries(FAMILIES)) {
  describe(family, () => {
    let model: CausalLM;
    beforeAll(() => {
      model = createModel(parseModelConfig(raw), { seed: 11 });
      perturbVectors(model, 12);
    });
    afterAll(() => model.dispose());

    it('has the traits the table gives it', () => {
      const c = model.config;
      const layer = model.weights.layers[0];
      expect(layer.proj.q_proj.bias !== undefined).toBe(family === 'qwen2' || family === 'llama-tied-headdim');
      expect(layer.proj.o_proj.bias !== undefined).toBe(family === 'llama-tied-headdim');
      expect(layer.qNorm !== undefined).toBe(family === 'qwen3');
      expect(model.weights.lmHead === model.weights.embedTokens).toBe(c.tieWordEmbeddings);
      expect(layer.proj.q_proj.outFeatures).toBe(c.numHeads * c.headDim);
    });

    it('forward gives [B, T, V] logits, and a left-padded batch equals each sequence alone', () => {
      const [long, short] = PROMPTS;
      const pad = long.length - short.length;
      const batch = tf.tidy(() => model.forward(ids2d([long, [...new Array(pad).fill(0), ...short]]), ids2d([long.map(() => 1), [...new Array(pad).fill(0), ...short.map(() => 1)]])).arraySync() as number[][][]);
      expect([batch.length, batch[0].length, batch[0][0].length]).toEqual([2, long.length, 97]);
      const alone = tf.tidy(() => model.forward(ids2d([short])).arraySync() as number[][][]);
      for (let t = 0; t < short.length; t++) expect(maxAbsDiff(batch[1][pad + t], alone[0][t])).toBeLessThan(1e-4);
    });

    it('prefill + decode equals the full forward at every step', () => {
      const cache = model.newCache(2, 32);
      const sequence = [...PROMPTS[0], 7, 70, 30, 3];
      const full = tf.tidy(() => model.forward(ids2d([sequence])).arraySync() as number[][][])[0];
      const first = model.prefillMany(cache, [1], [PROMPTS[0]]);
      expect(maxAbsDiff(first.dataSync(), full[PROMPTS[0].length - 1])).toBeLessThan(1e-4);
      first.dispose();
      for (let t = PROMPTS[0].length; t < sequence.length; t++) {
        const step = model.decode(cache, [1], [sequence[t]]);
        expect(maxAbsDiff(step.dataSync(), full[t])).toBeLessThan(1e-4);
        step.dispose();
      }
      model.disposeCache(cache);
    });

    it.runIf(family === 'mistral')('sliding window: a token beyond the window of every layer does not reach the last position', () => {
      expect(model.config.slidingWindow).toBe(3);
      // 2 layers × a window of 3 → the last of 8 positions sees positions 3..7 at most
      const a = [5, 17, 33, 8, 61, 2, 44, 9];
      const b = [90, 17, 33, 8, 61, 2, 44, 9];
      const c = [5, 17, 33, 80, 61, 2, 44, 9];
      const last = (ids: number[]) => tf.tidy(() => model.forward(ids2d([ids])).slice([0, 7, 0], [1, 1, -1]).dataSync());
      expect(maxAbsDiff(last(a), last(b))).toBe(0);
      expect(maxAbsDiff(last(a), last(c))).toBeGreaterThan(1e-4);
    });

    it('written as a checkpoint, loads back to the same logits', async () => {
      const dir = join(work, family);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
      writeSafetensors(join(dir, 'model.safetensors'), await modelTensors(model));
      const loaded = await loadModel(dir);
      const ids = ids2d([PROMPTS[0]]);
      expect(maxAbsDiff(tf.tidy(() => loaded.forward(ids).dataSync()), tf.tidy(() => model.forward(ids).dataSync()))).toBe(0);
      ids.dispose();
      loaded.dispose();
    });
  });
}
