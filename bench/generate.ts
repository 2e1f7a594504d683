// Generation throughput (tokens/s) at batch 1 and 32, for llama-tiny and a random-init model shaped like
// SmolLM2-135M, on wasm, next to the backend's own matmul GFLOP/s measured in the same run.
// Run: `node --import tsx bench/generate.ts` (or `npm run bench -- generate`). Last line: one JSON object.
import { pathToFileURL } from 'node:url';
import { initBackend } from '../engines/tfjs/backend.js';
import { parseModelConfig } from '../core/llm/config.js';
import { generate, type GenerationModel } from '../engines/tfjs/generate.js';
import { createModel, loadModel } from '../engines/tfjs/model-loader.js';
import type { ModelConfig } from '../core/llm/config.js';
import { Rng } from '../core/rng.js';
import { tf } from '../engines/tfjs/tf.js';
import { measureMatmulGflops } from './matmul.js';
import { smolLM2ShapedConfig, benchBackend } from './shapes.js';

interface Run {
  model: string;
  batch: number;
  prompt_tokens: number;
  new_tokens: number;
  seconds: number;
  /** Generated tokens over the whole call (prefill included). */
  tokens_per_s: number;
  /** Time until every sequence had its first token (the prompts' prefill). */
  prefill_seconds: number;
  /** Tokens after the first over the time after prefill: the decode loop alone. */
  decode_tokens_per_s: number;
  /** Decode-loop GFLOP/s (2 × weights touched per token) as a fraction of the measured matmul GFLOP/s. */
  fraction_of_matmul: number;
}

/** Matmul FLOPs per generated token: 2 × (every projection + the lm_head), ignoring attention over the cache. */
function flopsPerToken(c: ModelConfig): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
  return 2 * (c.numLayers * perLayer + c.hiddenSize * c.vocabSize);
}

async function measure(
  label: string,
  model: GenerationModel & { config: ModelConfig },
  batch: number,
  promptTokens: number,
  newTokens: number,
  matmulGflops: number,
): Promise<Run> {
  const rng = new Rng(batch);
  const requests = Array.from({ length: batch }, () => ({
    promptIds: Array.from({ length: promptTokens }, () => rng.int(model.config.vocabSize)),
    maxNewTokens: newTokens,
  }));
  // Warm up (kernels compile, caches allocate) with a short run, then time.
  await generate(model, requests.slice(0, Math.min(batch, 2)).map((r) => ({ ...r, maxNewTokens: 2 })), { maxBatch: batch, eosTokenIds: [] });
  const started = new Set<number>();
  let prefillDone = 0;
  const start = performance.now();
  const results = await generate(model, requests, {
    maxBatch: batch,
    temperature: 1,
    seed: 1,
    eosTokenIds: [],
    onToken: (request) => {
      started.add(request);
      if (started.size === batch && prefillDone === 0) prefillDone = performance.now();
    },
  });
  const end = performance.now();
  const seconds = (end - start) / 1000;
  const generated = results.reduce((n, r) => n + r.ids.length, 0);
  const tokensPerS = generated / seconds;
  const decodeSeconds = (end - prefillDone) / 1000;
  return {
    model: label,
    batch,
    prompt_tokens: promptTokens,
    new_tokens: newTokens,
    seconds: Number(seconds.toFixed(3)),
    tokens_per_s: Number(tokensPerS.toFixed(2)),
    prefill_seconds: Number(((prefillDone - start) / 1000).toFixed(3)),
    decode_tokens_per_s: Number(((generated - batch) / decodeSeconds).toFixed(2)),
    fraction_of_matmul: Number(((((generated - batch) / decodeSeconds) * flopsPerToken(model.config)) / 1e9 / matmulGflops).toFixed(4)),
  };
}

export async function run(log: (line: string) => void = (line) => console.log(line)): Promise<Record<string, unknown>> {
  const backend = await initBackend(benchBackend());
  const gflops = await measureMatmulGflops();
  log(`backend ${backend.name}; matmul ${gflops.toFixed(2)} GFLOP/s`);
  const runs: Run[] = [];
  const record = (r: Run) => {
    runs.push(r);
    log(`${r.model} batch ${r.batch}: ${r.tokens_per_s} tokens/s overall (${r.new_tokens} new tokens each, ${r.seconds}s; prefill ${r.prefill_seconds}s), decode ${r.decode_tokens_per_s} tokens/s = ${(100 * r.fraction_of_matmul).toFixed(1)}% of matmul`);
  };

  const tiny = await loadModel('test/fixtures/llama-tiny');
  record(await measure('llama-tiny', tiny, 1, 32, 64, gflops));
  record(await measure('llama-tiny', tiny, 32, 32, 32, gflops));
  tiny.dispose();

  const smol = createModel(parseModelConfig(smolLM2ShapedConfig, undefined, 'SmolLM2-135M-shaped config'), { seed: 0 });
  record(await measure('smollm2-135m-shape', smol, 1, 32, 16, gflops));
  record(await measure('smollm2-135m-shape', smol, 32, 32, 8, gflops));
  smol.dispose();

  const headline = runs[runs.length - 1];
  const summary = {
    bench: 'generate',
    model: headline.model,
    backend: backend.name,
    batch: headline.batch,
    tokens_per_s: headline.tokens_per_s,
    matmul_gflops: Number(gflops.toFixed(2)),
    runs,
    tensors_left: tf.memory().numTensors,
  };
  log(JSON.stringify(summary));
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err) => {
    console.error(`bench generate: ${(err as Error).message}`);
    process.exit(1);
  });
}
