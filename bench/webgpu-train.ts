// The GRPO train phase on our WebGPU trainer (engines/webgpu/policy-trainer.ts), next to the torch peer
// (../shared/bench/peer_torch_grpo.py: PyTorch + PEFT, bf16) measured in the same run: seconds of one
// optimiser step (after a warm-up step that compiles the kernels) and peak GPU memory, each as a ratio to
// the peer's. Generation is not timed here: the completions are random tokens of full length (the
// peer's sampling does no early eos either), so both sides train on the same shapes.
// `BENCH_BACKEND=webgpu npm run bench -- grpo-step` runs this too.
//
//   npm run bench -- webgpu-train [--shape smollm2-135m|qwen2.5-0.5b|llama3.2-1b|llama3.2-3b] [--prompts 8]
//     [--generations 8] [--new-tokens 256] [--prompt-tokens 128] [--micro-batch 16] [--lora-r 16]
//     [--precision f16|f32] [--beta 0.04] [--steps 2]
//   GRPO_TORCH_PEER=/path/peer_torch_grpo.py: also run the peer with the same shape and print ratios.
// Last line: one JSON object.
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { groupAdvantages } from '../core/grpo/advantages.js';
import { rowsOf } from '../core/engine/rows.js';
import type { StepRows } from '../core/engine/interfaces.js';
import { parseModelConfig } from '../core/llm/config.js';
import { Rng } from '../core/rng.js';
import { createGpuContext } from '../engines/webgpu/device.js';
import { toF16 } from '../engines/webgpu/f16.js';
import { WebGpuPolicyTrainer } from '../engines/webgpu/policy-trainer.js';
import { GpuLoraWeights, GpuModelWeights, type Precision } from '../engines/webgpu/weights.js';

/** The peer's shapes (peer_torch_grpo.py SHAPES), as config.json objects, and a tiny one. */
export const PEER_SHAPES: Record<string, Record<string, unknown>> = {
  'smollm2-135m': { hidden_size: 576, intermediate_size: 1536, num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, vocab_size: 49152, tie_word_embeddings: true, rope_theta: 100000 },
  'qwen2.5-0.5b': { hidden_size: 896, intermediate_size: 4864, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, vocab_size: 151936, tie_word_embeddings: true, rope_theta: 1000000 },
  'llama3.2-1b': { hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, vocab_size: 128256, tie_word_embeddings: true, rope_theta: 500000 },
  // llama-tiny's dimensions (test/fixtures): a smoke run on lavapipe; the peer has no such shape.
  tiny: { hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 1006, tie_word_embeddings: false, rope_theta: 500000 },
  'llama3.2-3b': { hidden_size: 3072, intermediate_size: 8192, num_hidden_layers: 28, num_attention_heads: 24, num_key_value_heads: 8, vocab_size: 128256, tie_word_embeddings: true, rope_theta: 500000 },
};

const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function flags(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: false,
    options: {
      shape: { type: 'string' },
      prompts: { type: 'string' },
      generations: { type: 'string' },
      'new-tokens': { type: 'string' },
      'prompt-tokens': { type: 'string' },
      'micro-batch': { type: 'string' },
      'lora-r': { type: 'string' },
      precision: { type: 'string' },
      beta: { type: 'string' },
      steps: { type: 'string' },
    },
  });
  const int = (key: string, fallback: number) => {
    const v = values[key];
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!(Number.isInteger(n) && n > 0)) throw new Error(`--${key} must be a positive integer (got ${JSON.stringify(v)})`);
    return n;
  };
  const shape = (values.shape as string | undefined) ?? 'smollm2-135m';
  if (!PEER_SHAPES[shape]) throw new Error(`--shape ${shape}: one of ${Object.keys(PEER_SHAPES).join(', ')}`);
  const precision = values.precision as string | undefined;
  if (precision !== undefined && precision !== 'f16' && precision !== 'f32') throw new Error(`--precision must be f16 or f32 (got ${precision})`);
  const beta = values.beta === undefined ? 0.04 : Number(values.beta);
  if (!(beta >= 0)) throw new Error(`--beta must be ≥ 0 (got ${values.beta})`);
  return {
    shape,
    prompts: int('prompts', 8),
    generations: int('generations', 8),
    newTokens: int('new-tokens', 256),
    promptTokens: int('prompt-tokens', 128),
    microBatch: int('micro-batch', 16),
    rank: int('lora-r', 16),
    precision: precision as Precision | undefined,
    beta,
    steps: int('steps', 2),
  };
}

/** Random weights fast enough for 3B parameters: slices of one pool of normal draws (values do not
 *  matter to the timing), the projection weights pre-converted to f16 once. */
function pooledWeights(precision: Precision, seed: number) {
  const rng = new Rng(seed);
  const poolSize = 1 << 22;
  const pool = new Float32Array(poolSize);
  for (let i = 0; i < poolSize; i++) pool[i] = 0.02 * rng.normal();
  const half = precision === 'f16' ? toF16(pool) : undefined;
  return (spec: { name: string; shape: number[]; slot: { kind: string; part?: string } }): Float32Array | Uint16Array => {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (/norm\.weight$/.test(spec.name)) return new Float32Array(count).fill(1);
    if (/\.bias$/.test(spec.name)) return new Float32Array(count);
    const useHalf = half && spec.slot.kind === 'projection' && spec.slot.part === 'weight';
    const out = useHalf ? new Uint16Array(count) : new Float32Array(count);
    const src = useHalf ? half : pool;
    for (let o = 0; o < count; ) {
      const start = rng.int(poolSize);
      const n = Math.min(count - o, poolSize - start);
      out.set(src.subarray(start, start + n) as never, o);
      o += n;
    }
    return out;
  };
}

function peer(script: string, f: ReturnType<typeof flags>, log: (line: string) => void): { train_s: number; peak_gib: number } | undefined {
  const args = [script, '--shape', f.shape, '--prompts', String(f.prompts), '--gens', String(f.generations), '--new', String(f.newTokens), '--prompt-len', String(f.promptTokens), '--micro', String(f.microBatch), '--lora-r', String(f.rank)];
  const r = spawnSync('python3', args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    log(JSON.stringify({ peer: 'torch', error: (r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ') }));
    return undefined;
  }
  const last = r.stdout.trim().split('\n').filter((l) => l.startsWith('{"peer"')).pop();
  if (!last) return undefined;
  log(last);
  return JSON.parse(last);
}

export async function run(log: (line: string) => void = (line) => console.log(line)): Promise<Record<string, unknown>> {
  const f = flags(process.argv.slice(2));
  const ctx = await createGpuContext();
  if (!ctx) throw new Error('no WebGPU adapter (the webgpu package or a Vulkan driver is missing)');
  const precision: Precision = f.precision ?? (ctx.caps.shaderF16 ? 'f16' : 'f32');
  const config = parseModelConfig({ architectures: ['LlamaForCausalLM'], model_type: 'llama', max_position_embeddings: 4096, rms_norm_eps: 1e-5, hidden_act: 'silu', ...PEER_SHAPES[f.shape] }, undefined, `${f.shape} shape`);
  log(
    `webgpu train: ${ctx.caps.adapterDescription}${ctx.caps.subgroupMatrix.length ? ' (subgroup matrices)' : ''}; ${f.shape} shape, precision ${precision}, LoRA r ${f.rank} on all projections; ` +
      `${f.prompts} prompts × ${f.generations} completions × ${f.newTokens} tokens (prompts ${f.promptTokens}), micro-batch ${f.microBatch}, loss grpo, beta ${f.beta}`,
  );
  let t = performance.now();
  const base = GpuModelWeights.fromHost(ctx, config, precision, pooledWeights(precision, 0));
  const lora = GpuLoraWeights.attach(ctx, base, { r: f.rank, alpha: f.rank, targetModules: PROJECTIONS, seed: 0 });
  const trainer = new WebGpuPolicyTrainer(ctx, base, lora, { bucket: 64 });
  log(`weights ${(base.bytes / 2 ** 30).toFixed(2)} GiB uploaded in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  const rng = new Rng(1);
  const prompts = Array.from({ length: f.prompts }, () => Array.from({ length: f.promptTokens }, () => rng.int(config.vocabSize)));
  const B = f.prompts * f.generations;
  const rowsFor = (): StepRows => {
    const completions = Array.from({ length: B }, () => Array.from({ length: f.newTokens }, () => rng.int(config.vocabSize)));
    const rewards = prompts.map(() => Array.from({ length: f.generations }, () => rng.next()));
    const rows = rowsOf(prompts.flatMap((p) => Array.from({ length: f.generations }, () => p)), completions, Array.from({ length: B }, (_, i) => Math.floor(i / f.generations)));
    return { ...rows, advantages: Float32Array.from(groupAdvantages(rewards).advantages.flat()), truncated: new Uint8Array(B).fill(1) };
  };
  const spec = { learningRate: 1e-5, lossType: 'grpo' as const, beta: f.beta, microBatchSize: f.microBatch, maxGradNorm: 1 };
  const times: number[] = [];
  let metrics: Record<string, number> = {};
  for (let s = 0; s < f.steps; s++) {
    const rows = rowsFor();
    if (s === 1) ctx.resetPeak();
    t = performance.now();
    metrics = await trainer.step(rows, spec);
    times.push((performance.now() - t) / 1000);
    log(`step ${s}: ${times[s].toFixed(3)} s${s === 0 ? ' (compiles the kernels)' : ''}; loss ${metrics.loss.toExponential(3)}, grad_norm ${metrics.grad_norm.toExponential(3)}, entropy ${metrics.entropy.toFixed(3)}${metrics.kl === undefined ? '' : `, kl ${metrics.kl.toExponential(2)}`}; ${trainer.lastStepDispatches} dispatches`);
  }
  const trainSeconds = f.steps > 1 ? [...times.slice(1)].sort((a, b) => a - b)[Math.floor((times.length - 1) / 2)] : times[0];
  const peakGib = ctx.peakBytes / 2 ** 30;
  trainer.dispose();
  lora.destroy();
  base.destroy();
  const script = process.env.GRPO_TORCH_PEER;
  const torch = script ? peer(script, f, log) : undefined;
  const round = (x: number, digits = 3) => Number(x.toFixed(digits));
  const summary = {
    bench: 'webgpu-train',
    shape: f.shape,
    precision,
    adapter: ctx.caps.adapterDescription,
    prompts: f.prompts,
    generations: f.generations,
    new_tokens: f.newTokens,
    prompt_tokens: f.promptTokens,
    micro_batch: f.microBatch,
    lora_r: f.rank,
    beta: f.beta,
    train_s: round(trainSeconds),
    train_tokens_per_s: round((B * (f.promptTokens + f.newTokens)) / trainSeconds, 1),
    peak_gib: round(peakGib, 2),
    dispatches: trainer.lastStepDispatches,
    peer_train_s: torch?.train_s,
    peer_peak_gib: torch?.peak_gib,
    train_ratio_to_peer: torch ? round(trainSeconds / torch.train_s) : undefined,
    memory_ratio_to_peer: torch?.peak_gib ? round(peakGib / torch.peak_gib) : undefined,
  };
  log(`train ${summary.train_s} s, peak ${summary.peak_gib} GiB${torch ? `; peer (torch bf16) train ${torch.train_s} s, peak ${torch.peak_gib} GiB: ratio ${summary.train_ratio_to_peer}× time, ${summary.memory_ratio_to_peer}× memory` : ''}`);
  log(JSON.stringify(summary));
  ctx.destroy();
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run()
    .then(() => process.exit(0))
    .catch((err) => {
      console.error(`bench webgpu-train: ${(err as Error).stack ?? err}`);
      process.exit(1);
    });
}
