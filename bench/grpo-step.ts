// One full GRPO step, as the reference measurement takes it: a random-init SmolLM2-135M-shaped model
// with LoRA r 16 on the seven projections; 8 prompts × 8 generations × 256 new tokens sampled with
// continuous batching (all 64 sequences in flight, temperature 1, no eos, so every completion is full
// length); then one optimiser step (loss grpo, beta 0.04 so the reference pass runs, micro-batches).
// Prints generation, train and total seconds, tokens/s of each, and each phase's achieved GFLOP/s as a
// fraction of the backend's matmul GFLOP/s measured in the same run. Last line: one JSON object.
//
// Run: `npm run bench -- grpo-step [--prompts 8] [--generations 8] [--new-tokens 256] [--prompt-tokens 64]
//       [--micro-batch 16]`; the backend comes from BENCH_BACKEND (default wasm). The full size takes far
// too long on a small CPU: scale it down there (e.g. --prompts 2 --generations 2 --new-tokens 8).
// Nothing on this path reads tensors synchronously, so it runs on WebGPU in Node
// (test/grpo/async-readback.test.ts keeps it so).
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { groupAdvantages } from '../core/grpo/advantages.js';
import { GrpoTrainer } from '../engines/tfjs/grpo/train-step.js';
import { initBackend } from '../engines/tfjs/backend.js';
import { parseModelConfig } from '../core/llm/config.js';
import { generate, repeatForGroups } from '../engines/tfjs/generate.js';
import { attachLora, detachLora } from '../engines/tfjs/lora.js';
import { createModel } from '../engines/tfjs/model-loader.js';
import { tf } from '../engines/tfjs/tf.js';
import type { TrainingBatch } from '../core/ports.js';
import { Rng } from '../core/rng.js';
import { trainingFlopsPerToken } from './forward.js';
import { measureMatmulGflops } from './matmul.js';
import { benchBackend, smolLM2ShapedConfig } from './shapes.js';

export interface GrpoStepBenchOptions {
  /** A Hugging Face config.json object (random weights are drawn for it). Default: SmolLM2-135M's shape. */
  config?: Record<string, unknown>;
  modelName?: string;
  prompts: number;
  generations: number;
  newTokens: number;
  /** Mean prompt length; prompts vary ±1/8 around it so the batch is left-padded as real ones are. */
  promptTokens: number;
  /** Completions per forward/backward pass; the step accumulates gradients over the micro-batches. */
  microBatch: number;
  /** Tokens per chunk of the log-prob pass over the vocabulary (default: the model code's). */
  logprobChunk?: number;
  /** Run a small generation and train step first (kernels compile, caches allocate). Default true. */
  warmUp?: boolean;
  seed?: number;
}

export interface GrpoStepBenchResult {
  generate_s: number;
  train_s: number;
  total_s: number;
  /** Generated tokens per second of generation. */
  generate_tokens_per_s: number;
  /** Prompt + completion tokens per second of the train step. */
  train_tokens_per_s: number;
  generate_gflops: number;
  train_gflops: number;
  generated_tokens: number;
  train_tokens: number;
  metrics: Record<string, number>;
}

const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function randomPrompts(rng: Rng, count: number, meanLength: number, vocabSize: number): number[][] {
  const spread = Math.floor(meanLength / 8);
  return Array.from({ length: count }, () => {
    const length = Math.max(1, meanLength - spread + rng.int(2 * spread + 1));
    return Array.from({ length }, () => rng.int(vocabSize));
  });
}

/** Samples `generations` completions per prompt and scores them with random rewards (timing only). */
async function sampleBatch(
  model: Parameters<typeof generate>[0],
  prompts: number[][],
  generations: number,
  newTokens: number,
  rng: Rng,
  index: number,
): Promise<TrainingBatch> {
  const requests = repeatForGroups(
    prompts.map((promptIds) => ({ promptIds, maxNewTokens: newTokens })),
    generations,
  );
  const results = await generate(model, requests, { maxBatch: requests.length, temperature: 1, seed: rng.int(2 ** 31), eosTokenIds: [] });
  const totals = prompts.map(() => Array.from({ length: generations }, () => rng.next()));
  return {
    index,
    policyVersion: 0,
    groups: prompts.map((promptIds, g) => ({
      prompt: { id: `bench-${g}`, messages: [], fields: {} },
      promptText: '',
      promptIds,
      completions: results.slice(g * generations, (g + 1) * generations).map((r) => ({ text: '', ids: r.ids, logprobs: r.logprobs, finishReason: r.finishReason })),
    })),
    rewards: [{ name: 'random', weight: 1, values: totals }],
    totals,
    advantages: groupAdvantages(totals).advantages,
  };
}

/** One timed GRPO step (generation, then the optimiser step) on the current backend. */
export async function grpoStepBench(options: GrpoStepBenchOptions): Promise<GrpoStepBenchResult> {
  const config = parseModelConfig(options.config ?? smolLM2ShapedConfig, undefined, `${options.modelName ?? 'bench'} config`);
  const seed = options.seed ?? 0;
  const model = createModel(config, { seed });
  attachLora(model, { r: 16, alpha: 32, dropout: 0, targetModules: PROJECTIONS, seed });
  const rng = new Rng(seed + 1);
  const trainerConfig = {
    learningRate: 1e-6,
    lossType: 'grpo' as const,
    beta: 0.04,
    microBatchSize: options.microBatch,
    maxCompletionLength: options.newTokens,
    maxGradNorm: 1,
    logprobChunkSize: options.logprobChunk,
  };
  try {
    if (options.warmUp ?? true) {
      const warm = await sampleBatch(model, randomPrompts(rng, 1, Math.min(options.promptTokens, 8), config.vocabSize), 2, 2, rng, 0);
      const warmTrainer = new GrpoTrainer(model, { ...trainerConfig, learningRate: 0, microBatchSize: 2 });
      await warmTrainer.trainOnBatch(warm);
      warmTrainer.dispose();
    }
    const trainer = new GrpoTrainer(model, trainerConfig);
    try {
      const prompts = randomPrompts(rng, options.prompts, options.promptTokens, config.vocabSize);
      const start = performance.now();
      const batch = await sampleBatch(model, prompts, options.generations, options.newTokens, rng, 1);
      const generated = performance.now();
      const [metrics] = await trainer.trainOnBatch(batch);
      const end = performance.now();

      const completions = batch.groups.flatMap((g) => g.completions.map((c) => ({ prompt: g.promptIds.length, completion: c.ids.length })));
      const generatedTokens = completions.reduce((n, c) => n + c.completion, 0);
      const trainTokens = completions.reduce((n, c) => n + c.prompt + c.completion, 0);
      // Generation: a forward per prompt token (prefill) and per generated token, at the mean context length.
      const meanContext = completions.reduce((n, c) => n + c.prompt + c.completion / 2, 0) / completions.length;
      const generateFlops = (trainTokens * trainingFlopsPerToken(config, meanContext)) / 2;
      // Training: forward + backward over the padded micro-batches, plus the reference forward (beta ≠ 0).
      const padded = Math.max(...completions.map((c) => c.prompt)) + Math.max(...completions.map((c) => c.completion));
      const trainFlops = completions.length * padded * trainingFlopsPerToken(config, padded) * 1.5;
      const generateSeconds = (generated - start) / 1000;
      const trainSeconds = (end - generated) / 1000;
      return {
        generate_s: generateSeconds,
        train_s: trainSeconds,
        total_s: (end - start) / 1000,
        generate_tokens_per_s: generatedTokens / generateSeconds,
        train_tokens_per_s: trainTokens / trainSeconds,
        generate_gflops: generateFlops / generateSeconds / 1e9,
        train_gflops: trainFlops / trainSeconds / 1e9,
        generated_tokens: generatedTokens,
        train_tokens: trainTokens,
        metrics,
      };
    } finally {
      trainer.dispose();
    }
  } finally {
    detachLora(model); // model.dispose() leaves the adapter's variables alone
    model.dispose();
  }
}

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${flag} must be a positive integer (got ${JSON.stringify(value)})`);
  return n;
}

/** The scale-down flags, from `npm run bench -- grpo-step --prompts 2 ...` or a direct run. */
export function parseBenchFlags(
  argv: string[],
): Pick<GrpoStepBenchOptions, 'prompts' | 'generations' | 'newTokens' | 'promptTokens' | 'microBatch' | 'logprobChunk'> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      prompts: { type: 'string' },
      generations: { type: 'string' },
      'new-tokens': { type: 'string' },
      'prompt-tokens': { type: 'string' },
      'micro-batch': { type: 'string' },
      'logprob-chunk': { type: 'string' },
    },
  });
  return {
    prompts: positiveInt(values.prompts, 8, 'prompts'),
    generations: positiveInt(values.generations, 8, 'generations'),
    newTokens: positiveInt(values['new-tokens'], 256, 'new-tokens'),
    promptTokens: positiveInt(values['prompt-tokens'], 64, 'prompt-tokens'),
    microBatch: positiveInt(values['micro-batch'], 16, 'micro-batch'),
    logprobChunk: values['logprob-chunk'] === undefined ? undefined : positiveInt(values['logprob-chunk'], 0, 'logprob-chunk'),
  };
}

export async function run(log: (line: string) => void = (line) => console.log(line)): Promise<Record<string, unknown>> {
  // On webgpu the train phase runs on our own kernels (engines/webgpu), timed apart from generation.
  if (benchBackend() === 'webgpu') return (await import('./webgpu-train.js')).run(log);
  const flags = parseBenchFlags(process.argv.slice(2));
  const backend = await initBackend(benchBackend());
  const model = 'smollm2-135m-shape';
  log(
    `backend ${backend.name}; ${model}, LoRA r 16 on all projections; ${flags.prompts} prompts × ${flags.generations} generations × ` +
      `${flags.newTokens} new tokens (prompts ~${flags.promptTokens} tokens), micro-batch ${flags.microBatch}, loss grpo, beta 0.04`,
  );
  // The machine may be shared: take the matmul limit just before and just after, and use their mean.
  const before = await measureMatmulGflops();
  const result = await grpoStepBench({ ...flags, modelName: model });
  const matmul = (before + (await measureMatmulGflops())) / 2;
  const pct = (gflops: number) => `${((100 * gflops) / matmul).toFixed(1)}% of matmul`;
  log(`matmul ${matmul.toFixed(2)} GFLOP/s`);
  log(`generate ${result.generate_s.toFixed(2)} s: ${result.generate_tokens_per_s.toFixed(1)} tokens/s, ${result.generate_gflops.toFixed(2)} GFLOP/s = ${pct(result.generate_gflops)}`);
  log(`train    ${result.train_s.toFixed(2)} s: ${result.train_tokens_per_s.toFixed(1)} tokens/s, ${result.train_gflops.toFixed(2)} GFLOP/s = ${pct(result.train_gflops)}`);
  // The step's own metrics, as a sanity check of the numerics (a random model's entropy is about ln V).
  const m = result.metrics;
  log(`total    ${result.total_s.toFixed(2)} s (loss ${m.loss.toFixed(4)}, grad_norm ${m.grad_norm.toExponential(3)}, entropy ${m.entropy.toFixed(3)}, kl ${m.kl.toExponential(2)})`);
  const round = (x: number, digits = 3) => Number(x.toFixed(digits));
  const summary = {
    bench: 'grpo-step',
    model,
    backend: backend.name,
    prompts: flags.prompts,
    generations: flags.generations,
    new_tokens: flags.newTokens,
    micro_batch: flags.microBatch,
    generate_s: round(result.generate_s),
    train_s: round(result.train_s),
    total_s: round(result.total_s),
    // End to end: completion tokens per second of the whole step (generation + training).
    tokens_per_s: round(result.generated_tokens / result.total_s, 2),
    generate_tokens_per_s: round(result.generate_tokens_per_s, 2),
    train_tokens_per_s: round(result.train_tokens_per_s, 2),
    matmul_gflops: round(matmul, 2),
    generate_fraction_of_matmul: round(result.generate_gflops / matmul, 4),
    train_fraction_of_matmul: round(result.train_gflops / matmul, 4),
    tensors_left: tf.memory().numTensors,
  };
  log(JSON.stringify(summary));
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err) => {
    console.error(`bench grpo-step: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
