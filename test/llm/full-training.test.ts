// Full training (model.trainBaseWeights()): every base weight gets the gradient of the loss. Checked
// against a dense reference — log-softmax of forward()'s full logits, through tfjs's own gradients — and
// against a finite difference, on a tiny random model with tied embeddings, on the wasm backend.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { parseModelConfig } from '../../core/llm/config.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { createModel } from '../../engines/tfjs/model-loader.js';
import { ids2d, maxAbsDiff } from './fixture.js';

const IDS = [[5, 17, 3, 40, 41, 9, 22], [7, 7, 1, 30, 2, 0, 0]];
const MASK = [[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]];

function tinyModel(): CausalLM {
  const config = parseModelConfig({
    architectures: ['LlamaForCausalLM'], vocab_size: 48, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 2,
    num_attention_heads: 4, num_key_value_heads: 2, head_dim: 4, tie_word_embeddings: true, rms_norm_eps: 1e-5, initializer_range: 0.3,
  });
  const model = createModel(config, { seed: 11 });
  model.trainBaseWeights();
  return model;
}

/** Sum of next-token log-probs over real positions, via hidden + chunked token log-probs. */
function chunkedLoss(model: CausalLM): tf.Scalar {
  const ids = ids2d(IDS.map((r) => r.slice(0, -1)));
  const mask = tf.tensor2d(MASK.map((r) => r.slice(0, -1)));
  const targets = ids2d(IDS.map((r) => r.slice(1)));
  const weights = tf.tensor2d(MASK.map((r) => r.slice(1)));
  const h = model.hidden(ids, mask);
  const { logprobs } = model.tokenLogprobs(h, targets, { chunkSize: 5 });
  return tf.sum(tf.mul(logprobs, weights));
}

/** The same through forward()'s dense logits and tfjs's built-in gradients. */
function denseLoss(model: CausalLM): tf.Scalar {
  const logits = model.forward(ids2d(IDS.map((r) => r.slice(0, -1))), tf.tensor2d(MASK.map((r) => r.slice(0, -1))));
  const logp = tf.logSoftmax(logits, -1);
  const picked = tf.sum(tf.mul(logp, tf.oneHot(ids2d(IDS.map((r) => r.slice(1))), 48).toFloat()), -1);
  return tf.sum(tf.mul(picked, tf.tensor2d(MASK.map((r) => r.slice(1)))));
}

beforeAll(async () => {
  await initBackend('wasm');
});

describe('CausalLM.trainBaseWeights', () => {
  it('lists every base weight once (tied embeddings shared) and gives each the dense reference gradient', () => {
    const model = tinyModel();
    const vars = model.trainableVariables();
    // embed (tied: once), final norm, and per layer 2 norms + 7 projections
    expect(vars).toHaveLength(2 + 2 * 9);
    expect(model.weights.lmHead).toBe(model.weights.embedTokens);
    const chunked = tf.variableGrads(() => chunkedLoss(model), vars);
    const dense = tf.variableGrads(() => denseLoss(model), vars);
    expect(Math.abs(chunked.value.dataSync()[0] - dense.value.dataSync()[0])).toBeLessThan(1e-4);
    for (const v of vars) {
      const a = chunked.grads[v.name].dataSync();
      const b = dense.grads[v.name].dataSync();
      expect(maxAbsDiff(a, b), v.name).toBeLessThan(1e-4);
      expect(Math.max(...Array.from(a, Math.abs)), v.name).toBeGreaterThan(0);
    }
    model.dispose();
  });

  it('matches a finite difference on the tied embedding (used by both lookup and unembedding)', () => {
    const model = tinyModel();
    const table = model.weights.embedTokens as unknown as tf.Variable;
    const { grads } = tf.variableGrads(() => chunkedLoss(model), [table]);
    const g = grads[table.name].dataSync();
    const original = Float32Array.from(table.dataSync() as Float32Array);
    const eps = 1e-2;
    for (const index of [5 * 16 + 3, 17 * 16 + 0, 44 * 16 + 7]) { // ids 5 and 17 are inputs; 44 is used only by the unembedding
      const at = (delta: number) => {
        const data = Float32Array.from(original);
        data[index] += delta;
        table.assign(tf.tensor2d(data, table.shape as [number, number]));
        return tf.tidy(() => chunkedLoss(model).dataSync()[0]);
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      expect(Math.abs(numeric - g[index]), `entry ${index}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
    }
    model.dispose();
  });

  it('leaves a model that is not fully trained without base-weight variables', () => {
    const config = parseModelConfig({ architectures: ['LlamaForCausalLM'], vocab_size: 8, hidden_size: 4, intermediate_size: 4, num_hidden_layers: 1, num_attention_heads: 1, head_dim: 4 });
    const model = createModel(config, { seed: 0 });
    expect(model.trainableVariables()).toEqual([]);
    model.dispose();
  });
});
