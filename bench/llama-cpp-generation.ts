// The reference step's generation phase on the llama.cpp engine (issue 14, item 4's measurement): a
// random-init checkpoint of a given shape (the torch peer's shapes, ../shared/bench/peer_torch_grpo.py)
// written as sharded bf16 safetensors, converted by our GGUF writer, a LoRA adapter (r 16 on every
// projection, as the peer's PEFT model) attached, then P prompts × G completions × N new tokens of
// fixed length (no eos, as the peer: the same work on both sides), temperature 1. Prints one JSON line.
//
// Runs from a self-contained bundle on a GPU machine (node-llama-cpp and its binary packages beside it):
//   npx esbuild bench/llama-cpp-generation.ts --bundle --platform=node --format=esm \
//     --external:node-llama-cpp '--external:@node-llama-cpp/*' --outfile=bench-dist/llama-cpp-generation.mjs
//   node bench-dist/llama-cpp-generation.mjs --shape smollm2-135m --prompts 8 --gens 8 --new 256 --gpu vulkan
// or here: `npm run bench -- llama-cpp-generation --shape tiny --gpu false`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig } from '../core/llm/config.js';
import { PROJECTIONS, projectionPath, type ProjectionName } from '../core/llm/projections.js';
import { writeSafetensors, type HostTensor } from '../core/llm/safetensors.js';
import { Tokenizer } from '../core/llm/tokenizer.js';
import { Rng } from '../core/rng.js';
import { parseLlamaCppOptions } from '../engines/llama-cpp/options.js';
import { LlamaCppRolloutEngine } from '../engines/llama-cpp/rollout-engine.js';

/** The peer's shapes (Llama-family, tied embeddings) and a tiny one to try the bundle on a CPU. */
const SHAPES: Record<string, Record<string, unknown>> = {
  tiny: { hidden_size: 256, intermediate_size: 512, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 4096, rope_theta: 10000 },
  'smollm2-135m': { hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, rope_theta: 100000 },
  'llama3.2-3b': { hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 28, num_attention_heads: 24, num_key_value_heads: 8, vocab_size: 128256, rope_theta: 500000 },
};
const TOKENIZER_SOURCE = 'test/fixtures/llama-tiny';

function configFor(shape: string): Record<string, unknown> {
  const dims = SHAPES[shape];
  if (!dims) throw new Error(`--shape: unknown shape "${shape}" (one of ${Object.keys(SHAPES).join(', ')})`);
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', ...dims, tie_word_embeddings: true, rms_norm_eps: 1e-5,
    max_position_embeddings: 8192, bos_token_id: 1000, eos_token_id: 1004, hidden_act: 'silu',
  };
}

/** Uniform values of the given scale (norm weights around 1). One tensor at a time, so a 3B model never sits in memory whole. */
function uniform(rng: Rng, shape: number[], scale: number, offset = 0): HostTensor {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = offset + scale * (2 * rng.next() - 1);
  return { shape, data };
}

/** A random checkpoint as bf16 shards (embeddings, then one per layer) with model.safetensors.index.json. */
function writeRandomCheckpoint(dir: string, raw: Record<string, unknown>, seed: number): void {
  const config = parseModelConfig(raw);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(raw));
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja']) copyFileSync(join(TOKENIZER_SOURCE, f), join(dir, f));
  const rng = new Rng(seed);
  const h = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const weightMap: Record<string, string> = {};
  const shard = (file: string, tensors: Record<string, HostTensor>) => {
    writeSafetensors(join(dir, file), tensors, { dtype: 'bfloat16' });
    for (const name of Object.keys(tensors)) weightMap[name] = file;
  };
  shard('embeddings.safetensors', { 'model.embed_tokens.weight': uniform(rng, [config.vocabSize, h], 0.05), 'model.norm.weight': uniform(rng, [h], 0.1, 1) });
  const shapes: Record<string, [number, number]> = {
    'self_attn.q_proj': [q, h], 'self_attn.k_proj': [kv, h], 'self_attn.v_proj': [kv, h], 'self_attn.o_proj': [h, q],
    'mlp.gate_proj': [config.intermediateSize, h], 'mlp.up_proj': [config.intermediateSize, h], 'mlp.down_proj': [h, config.intermediateSize],
  };
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    const tensors: Record<string, HostTensor> = { [`${p}.input_layernorm.weight`]: uniform(rng, [h], 0.1, 1), [`${p}.post_attention_layernorm.weight`]: uniform(rng, [h], 0.1, 1) };
    for (const [name, shape] of Object.entries(shapes)) tensors[`${p}.${name}.weight`] = uniform(rng, shape, 1 / Math.sqrt(shape[1]));
    shard(`layer-${String(l).padStart(3, '0')}.safetensors`, tensors);
  }
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

export async function run(log: (line: string) => void = console.log): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(process.argv[1]?.endsWith('run.ts') ? 3 : 2),
    options: {
      shape: { type: 'string', default: 'smollm2-135m' },
      prompts: { type: 'string', default: '8' },
      gens: { type: 'string', default: '8' },
      new: { type: 'string', default: '256' },
      'prompt-len': { type: 'string', default: '128' },
      gpu: { type: 'string', default: 'auto' },
      type: { type: 'string' },
      threads: { type: 'string' },
      'lora-r': { type: 'string', default: '16' },
      rounds: { type: 'string', default: '3' },
      dir: { type: 'string' },
    },
  });
  const raw = configFor(values.shape!);
  const config = parseModelConfig(raw);
  const [P, G, N, promptLength, r, rounds] = [values.prompts, values.gens, values.new, values['prompt-len'], values['lora-r'], values.rounds].map(Number);
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'grpoflow-llama-generation-'));
  const started = performance.now();
  writeRandomCheckpoint(join(dir, 'checkpoint'), raw, 1);
  const checkpointSeconds = (performance.now() - started) / 1000;

  // The PEFT adapter the peer trains: A random, B small and random (a policy some steps in).
  const rng = new Rng(2);
  const adapters = new Map<string, { A: { shape: number[]; data: () => Promise<Float32Array> }; B: { shape: number[]; data: () => Promise<Float32Array> } }>();
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const dims: Record<ProjectionName, [number, number]> = {
    q_proj: [q, config.hiddenSize], k_proj: [kv, config.hiddenSize], v_proj: [kv, config.hiddenSize], o_proj: [config.hiddenSize, q],
    gate_proj: [config.intermediateSize, config.hiddenSize], up_proj: [config.intermediateSize, config.hiddenSize], down_proj: [config.hiddenSize, config.intermediateSize],
  };
  for (let l = 0; l < config.numLayers; l++) {
    for (const name of PROJECTIONS) {
      const [out, inner] = dims[name];
      const A = uniform(rng, [r, inner], 1 / Math.sqrt(inner));
      const B = uniform(rng, [out, r], 0.01);
      adapters.set(projectionPath(l, name), { A: { shape: A.shape, data: async () => A.data as Float32Array }, B: { shape: B.shape, data: async () => B.data as Float32Array } });
    }
  }
  const gpu = values.gpu === 'false' ? false : values.gpu;
  const options = parseLlamaCppOptions({ gpu, ...(values.type ? { gguf_type: values.type } : {}), ...(values.threads ? { threads: Number(values.threads) } : {}) }, 'llama-cpp-generation');
  const tokenizer = await Tokenizer.fromDir(join(dir, 'checkpoint'));
  const loadStarted = performance.now();
  const engine = await LlamaCppRolloutEngine.create({
    source: { dir: join(dir, 'checkpoint'), config, lora: { scale: 2, config: { r }, adapters } },
    tokenizer,
    options,
    workDir: join(dir, 'engine'),
  });
  const ggufSeconds = (performance.now() - loadStarted) / 1000;
  try {
    const prompts = Array.from({ length: P }, (_, p) => Array.from({ length: promptLength }, (_, i) => 1 + ((p * 7919 + i * 104729) % (config.vocabSize - 1))));
    const sample = (seed: number, n = G) => engine.sample(prompts, n, { maxNewTokens: N, temperature: 1, seed, eosTokenIds: [], maxBatch: P * n });
    await sample(0, 1); // warm-up: contexts, kernels
    const runs: { seconds: number; tokens: number }[] = [];
    for (let k = 0; k < rounds; k++) {
      const rows = await sample(k + 1);
      if (rows.completionIds.length !== P * G * N) throw new Error(`expected ${P * G * N} tokens, got ${rows.completionIds.length}`);
      runs.push({ seconds: rows.seconds, tokens: rows.completionIds.length });
      log(`round ${k + 1}: ${rows.seconds.toFixed(2)} s, ${(rows.completionIds.length / rows.seconds).toFixed(0)} tok/s`);
    }
    const median = [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor(runs.length / 2)];
    console.log(
      JSON.stringify({
        bench: 'llama-cpp-generation',
        engine: 'llama.cpp',
        shape: values.shape,
        gpu: engine.gpu,
        ggufType: engine.ggufType,
        loraR: r,
        prompts: P,
        gens: G,
        new: N,
        promptLength,
        gen_s: Number(median.seconds.toFixed(3)),
        gen_tok_per_s: Number((median.tokens / median.seconds).toFixed(1)),
        rounds: runs.map((x) => Number(x.seconds.toFixed(3))),
        checkpoint_write_s: Number(checkpointSeconds.toFixed(1)),
        gguf_write_and_load_s: Number(ggufSeconds.toFixed(1)),
      }),
    );
  } finally {
    await engine.close();
    if (!values.dir) rmSync(dir, { recursive: true, force: true });
  }
}

// Run directly (the bundle): `node llama-cpp-generation.mjs --shape ...`.
if (!process.argv[1]?.endsWith('run.ts') && import.meta.url === `file://${process.argv[1]}`) {
  run().catch((error) => {
    console.error(`llama-cpp-generation: ${(error as Error).message}`);
    process.exit(1);
  });
}
