// WebGPU in Node has no synchronous read-back (dataSync/arraySync throw there). This keeps the training
// and export paths free of them: on the cpu backend with the synchronous reads made to throw, the GRPO
// step bench (generation + one step, KL on), μ = 2 (old log-probs), clipping, the AdamW state, the
// adapter snapshot and save, a merged export and an SFT step all run.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpoStepBench } from '../../bench/grpo-step.js';
import { clipGradNorm } from '../../engines/tfjs/grpo/optimizer.js';
import { GrpoTrainer } from '../../engines/tfjs/grpo/train-step.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { parseModelConfig } from '../../core/llm/config.js';
import { attachLora, detachLora, loraSnapshotAsync, savePeftAdapter, withLoraMerged } from '../../engines/tfjs/lora.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { createModel } from '../../engines/tfjs/model-loader.js';
import { saveModel } from '../../engines/tfjs/save-model.js';
import { tf } from '../../engines/tfjs/tf.js';
import type { SftBatch } from '../../engines/tfjs/sft/batch.js';
import { SftTrainer } from '../../engines/tfjs/sft/trainer.js';
import type { TrainingBatch } from '../../core/ports.js';

const TINY = {
  architectures: ['LlamaForCausalLM'],
  vocab_size: 64,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  head_dim: 8,
  tie_word_embeddings: true,
  rope_theta: 10000,
  rms_norm_eps: 1e-5,
  bos_token_id: 1,
  eos_token_id: 2,
  initializer_range: 0.2,
};
const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const SYNC_READS = ['dataSync', 'arraySync', 'bufferSync'] as const;

type Proto = Record<(typeof SYNC_READS)[number], unknown>;
const proto = tf.Tensor.prototype as unknown as Proto;
const originals = Object.fromEntries(SYNC_READS.map((name) => [name, proto[name]]));
let work: string;

beforeAll(async () => {
  await initBackend('cpu');
  work = mkdtempSync(join(tmpdir(), 'async-readback-'));
  for (const name of SYNC_READS) {
    proto[name] = function () {
      throw new Error(`synchronous read-back (${name}) on a path that must run on WebGPU`);
    };
  }
});
afterAll(() => {
  for (const name of SYNC_READS) proto[name] = originals[name];
  rmSync(work, { recursive: true, force: true });
});

function tinyModel(): CausalLM {
  const model = createModel(parseModelConfig(TINY), { seed: 3 });
  attachLora(model, { r: 2, alpha: 4, targetModules: PROJECTIONS, seed: 1 });
  return model;
}

describe('no synchronous read-back on the training and export paths', () => {
  it('the patch is in force: dataSync throws', () => {
    const t = tf.tensor1d([1]);
    expect(() => t.dataSync()).toThrow(/synchronous read-back \(dataSync\)/);
    expect(() => t.arraySync()).toThrow(/synchronous read-back/);
    t.dispose();
  });

  it('the GRPO step bench (generation, reference pass, micro-batches, clipping) runs and reports finite numbers', async () => {
    const options = { config: TINY, prompts: 2, generations: 3, newTokens: 4, promptTokens: 8, microBatch: 2, warmUp: true };
    await grpoStepBench(options);
    // (The first run leaves a few one-time tensors of the model code behind; a second must add none.)
    const tensors = tf.memory().numTensors;
    let result!: Awaited<ReturnType<typeof grpoStepBench>>;
    const { kernels } = await tf.profile(async () => {
      result = await grpoStepBench(options);
    });
    // Kernels that tfjs-webgpu runs on the CPU after a synchronous read (no cpu-backend analogue throws):
    // Tile of rank ≥ 5 (a broadcastTo of a rank-5 mask broke the shared prompt pass on the H100).
    expect(kernels.filter((k) => k.name === 'Tile' && (k.inputShapes[0]?.length ?? 0) >= 5).map((k) => k.inputShapes[0])).toEqual([]);
    expect(result.generated_tokens).toBe(2 * 3 * 4); // no eos: every completion runs to the limit
    for (const name of ['loss', 'kl', 'grad_norm', 'entropy']) expect(Number.isFinite(result.metrics[name]), name).toBe(true);
    expect(result.metrics.grad_norm).toBeGreaterThan(0);
    expect(result.train_s).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('μ = 2 with clipping, the AdamW state, clipGradNorm, snapshots, the PEFT adapter and a merged export', async () => {
    const model = tinyModel();
    const trainer = new GrpoTrainer(model, { learningRate: 0.05, numIterations: 2, beta: 0.04, maxGradNorm: 1e-3, microBatchSize: 2 });
    const completion = (ids: number[]) => ({ text: '', ids, logprobs: ids.map(() => -1), finishReason: 'length' as const });
    const batch: TrainingBatch = {
      index: 0,
      policyVersion: 0,
      groups: [
        { prompt: { id: 'a', messages: [], fields: {} }, promptText: '', promptIds: [1, 5, 6], completions: [completion([7, 8]), completion([9, 10, 11])] },
        { prompt: { id: 'b', messages: [], fields: {} }, promptText: '', promptIds: [1, 12], completions: [completion([13]), completion([14, 15])] },
      ],
      rewards: [{ name: 'r', weight: 1, values: [[1, 0], [0, 1]] }],
      totals: [[1, 0], [0, 1]],
      advantages: [[0.7, -0.7], [-0.7, 0.7]],
    };
    const before = await loraSnapshotAsync(model);
    const metrics = await trainer.trainOnBatch(batch);
    expect(metrics).toHaveLength(2);
    expect(metrics.every((m) => Number.isFinite(m.loss) && m.grad_norm > 0)).toBe(true);
    const after = await loraSnapshotAsync(model);
    const name = Object.keys(after).find((n) => n.endsWith('lora_B.weight'))!;
    expect(Array.from(after[name].data)).not.toEqual(Array.from(before[name].data));

    const state = await trainer.exportState();
    expect(state.optimizer.step).toBe(2);
    expect(state.optimizer.m.every((m) => m instanceof Float32Array)).toBe(true);

    const grads = [tf.tensor1d([3, 4])];
    const clipped = clipGradNorm(grads, 1);
    expect((await clipped.norm.data())[0]).toBeCloseTo(5, 5);
    tf.dispose([...grads, ...clipped.grads, clipped.norm]);

    await savePeftAdapter(model, join(work, 'adapter'));
    await withLoraMerged(model, () => saveModel(model, join(work, 'merged'), { dtype: 'bfloat16' }));
    trainer.dispose();
    detachLora(model);
    model.dispose();
  });

  it('an SFT step reads its loss and grad norm asynchronously', async () => {
    const model = createModel(parseModelConfig(TINY), { seed: 4 });
    model.trainBaseWeights();
    const trainer = new SftTrainer(model, { learningRate: () => 1e-3, weightDecay: 0, maxGradNorm: 1 });
    const inputs = tf.tensor2d([[1, 5, 6, 7]], [1, 4], 'int32');
    const targets = tf.tensor2d([[5, 6, 7, 2]], [1, 4], 'int32');
    const attentionMask = tf.ones([1, 4], 'int32') as tf.Tensor2D;
    const lossMask = tf.tensor2d([[0, 0, 1, 1]]);
    const batch: SftBatch = { inputs, targets, attentionMask, lossMask, lossWeight: 2, completionTokens: 2, dispose: () => tf.dispose([inputs, targets, attentionMask, lossMask]) };
    const result = await trainer.step(batch);
    expect(Number.isFinite(result.loss) && result.gradNorm > 0).toBe(true);
    batch.dispose();
    trainer.dispose();
    model.dispose();
  });
});
