// Training-forward throughput: forward + backward (LoRA-trainable, r 16 on all projections) through
// the chunked log-prob path, in tokens/s, for llama-tiny and a random-init SmolLM2-135M-shaped model
// on wasm, next to the backend's own matmul GFLOP/s measured around each timing in the same run.
// Run: `npm run bench -- forward`. One JSON line per model; the last is the larger model.
import { pathToFileURL } from 'node:url';
import { tf } from '../engines/tfjs/tf.js';
import { initBackend } from '../engines/tfjs/backend.js';
import { parseModelConfig, type ModelConfig } from '../core/llm/config.js';
import { type CausalLM } from '../engines/tfjs/model.js';
import { createModel, loadModel } from '../engines/tfjs/model-loader.js';
import { attachLora } from '../engines/tfjs/lora.js';
import { Rng } from '../core/rng.js';
import { measureMatmulGflops } from './matmul.js';
import { smolLM2ShapedConfig, benchBackend } from './shapes.js';

/**
 * Matmul flops of one forward + backward per token at sequence length t: the forward's 2·(weights +
 * attention), and the backward's input gradients again as much (frozen base weights get no weight
 * gradient; LoRA's rank-16 terms are left out as small).
 */
export function trainingFlopsPerToken(c: ModelConfig, t: number): number {
  const perLayerWeights =
    c.hiddenSize * (c.numHeads + 2 * c.numKvHeads) * c.headDim + c.numHeads * c.headDim * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
  const attention = 4 * t * c.numHeads * c.headDim; // QKᵀ and PV over the whole (masked) row
  const forward = c.numLayers * (2 * perLayerWeights + attention) + 2 * c.vocabSize * c.hiddenSize;
  return 2 * forward;
}

async function measure(name: string, model: CausalLM, batch: number, length: number, steps: number) {
  attachLora(model, { r: 16, alpha: 32, dropout: 0, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], useRslora: false, seed: 0 });
  const rng = new Rng(1);
  const tokens = Array.from({ length: batch }, () => Array.from({ length: length + 1 }, () => rng.int(model.config.vocabSize)));
  const ids = tf.tensor2d(tokens.map((row) => row.slice(0, -1)), [batch, length], 'int32');
  const targets = tf.tensor2d(tokens.map((row) => row.slice(1)), [batch, length], 'int32');
  const vars = model.trainableVariables();
  const step = async () => {
    const { value, grads } = tf.variableGrads(() => {
      const h = model.hidden(ids, undefined, undefined, { training: true });
      return tf.neg(tf.mean(model.tokenLogprobs(h, targets).logprobs)) as tf.Scalar;
    }, vars);
    await value.data();
    await Promise.all(Object.values(grads).map((g) => g.data()));
    tf.dispose([value, grads]);
  };
  await step(); // warm-up
  // The machine may be shared: take the matmul limit just before and just after, and use their mean.
  const before = await measureMatmulGflops();
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step();
  const seconds = (performance.now() - start) / 1000;
  const gflops = (before + (await measureMatmulGflops())) / 2;
  tf.dispose([ids, targets]);
  const tokensPerS = (batch * length * steps) / seconds;
  const achieved = (tokensPerS * trainingFlopsPerToken(model.config, length)) / 1e9;
  return {
    bench: 'forward',
    model: name,
    backend: tf.getBackend(),
    batch,
    seq_len: length,
    step_seconds: Number((seconds / steps).toFixed(3)),
    tokens_per_s: Number(tokensPerS.toFixed(1)),
    achieved_gflops: Number(achieved.toFixed(2)),
    matmul_gflops: Number(gflops.toFixed(2)),
    fraction_of_matmul: Number((achieved / gflops).toFixed(3)),
  };
}

export async function run(log: (line: string) => void = (line) => console.log(line)): Promise<Record<string, unknown>> {
  await initBackend(benchBackend(), log);

  const tiny = await loadModel('test/fixtures/llama-tiny');
  const tinyResult = await measure('llama-tiny', tiny, 8, 128, 5);
  tiny.dispose();
  log(JSON.stringify(tinyResult));

  const smol = createModel(parseModelConfig(smolLM2ShapedConfig, undefined, 'SmolLM2-135M-shaped config'), { seed: 0 });
  const smolResult = await measure('smollm2-135m-shape', smol, 2, 64, 2);
  smol.dispose();
  log(JSON.stringify(smolResult));
  return smolResult;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err) => {
    console.error(`bench forward: ${(err as Error).message}`);
    process.exit(1);
  });
}
