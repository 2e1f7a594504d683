// Generation with our WebGPU decode loop (engines/webgpu/rollout-engine.ts) on random-init models of
// real shapes, next to Hugging Face generate (torch, bf16) in the same run, and the fraction of the card's
// memory bandwidth each decode step reaches (bytes a step must move / step time / DECODE_BANDWIDTH).
// Run: `npm run bench -- decode` (or bundled, see engines/webgpu/NOTES.md). One JSON line per run, as it
// finishes (a run cut short by a time limit keeps the lines before it).
// Knobs: DECODE_RUNS (`shape:prompts×gens,...`; default: the reference step smollm2-135m:8x8, then
// qwen2.5-0.5b / llama3.2-1b / llama3.2-3b at 8, 32 and 64 sequences), DECODE_NEW (new tokens, 256),
// DECODE_PROMPT (prompt tokens, 128), DECODE_PRECISION (f16 | f32; default f16 where the adapter is a
// GPU), DECODE_TORCH_PEER (path of ../shared/bench/peer_torch_grpo.py: also runs the peer per run),
// DECODE_BANDWIDTH (bytes/s, default 4.8e12: the H200), DECODE_CHUNK (steps per read-back, 16).
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { Rng } from '../core/rng.js';
import type { DecoderConfig, HostParameters } from '../engines/webgpu/decode/decoder.js';
import type { WeightPrecision } from '../engines/webgpu/decode/linear.js';
import { createGpuContext, type GpuContext } from '../engines/webgpu/device.js';
import { WebGpuRolloutEngine } from '../engines/webgpu/rollout-engine.js';

/** The peer's shapes (peer_torch_grpo.py), as our config. */
const SHAPES: Record<string, { hidden: number; inter: number; layers: number; heads: number; kv: number; vocab: number; theta: number }> = {
  /** llama-tiny's dimensions: a bundle check on lavapipe, no peer. */
  tiny: { hidden: 64, inter: 160, layers: 2, heads: 4, kv: 2, vocab: 1006, theta: 500000 },
  'smollm2-135m': { hidden: 576, inter: 1536, layers: 30, heads: 9, kv: 3, vocab: 49152, theta: 100000 },
  'qwen2.5-0.5b': { hidden: 896, inter: 4864, layers: 24, heads: 14, kv: 2, vocab: 151936, theta: 1000000 },
  'llama3.2-1b': { hidden: 2048, inter: 8192, layers: 16, heads: 32, kv: 8, vocab: 128256, theta: 500000 },
  'llama3.2-3b': { hidden: 3072, inter: 8192, layers: 28, heads: 24, kv: 8, vocab: 128256, theta: 500000 },
};

const DEFAULT_RUNS = ['smollm2-135m:8x8', ...['qwen2.5-0.5b', 'llama3.2-1b', 'llama3.2-3b'].flatMap((s) => [`${s}:1x8`, `${s}:4x8`, `${s}:8x8`])];

function configOf(name: string): DecoderConfig & { eosTokenIds: number[]; maxPositionEmbeddings: number } {
  const s = SHAPES[name];
  if (!s) throw new Error(`decode bench: unknown shape "${name}" (known: ${Object.keys(SHAPES).join(', ')})`);
  return {
    vocabSize: s.vocab,
    hiddenSize: s.hidden,
    numLayers: s.layers,
    numHeads: s.heads,
    numKvHeads: s.kv,
    headDim: s.hidden / s.heads,
    intermediateSize: s.inter,
    rmsNormEps: 1e-5,
    ropeTheta: s.theta,
    tieWordEmbeddings: true,
    attentionBias: false,
    outputBias: false,
    mlpBias: false,
    qkNorm: false,
    eosTokenIds: [],
    maxPositionEmbeddings: 4096,
  };
}

/** Random weights (normal · 0.02, norms 1) from one 4M-value pool tiled over every tensor (from a shifting
 *  start): timing does not depend on the values, and drawing billions of normals in JavaScript takes minutes. */
function parametersFor(config: DecoderConfig, seed: number): HostParameters {
  const rng = new Rng(seed);
  const pool = Float32Array.from({ length: 1 << 22 }, () => rng.normal() * 0.02);
  let offset = 0;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const { hiddenSize: h, intermediateSize: m, vocabSize: v } = config;
  const sizes: [RegExp, number][] = [
    [/embed_tokens|lm_head/, v * h],
    [/norm\.weight$/, -1],
    [/q_proj\.weight$/, q * h],
    [/[kv]_proj\.weight$/, kv * h],
    [/o_proj\.weight$/, h * q],
    [/(gate|up)_proj\.weight$/, m * h],
    [/down_proj\.weight$/, h * m],
  ];
  return (name) => {
    const size = sizes.find(([re]) => re.test(name))?.[1];
    if (size === undefined) throw new Error(`decode bench: no shape for ${name}`);
    if (size === -1) return new Float32Array(name.includes('q_norm') || name.includes('k_norm') ? config.headDim : h).fill(1);
    const out = new Float32Array(size);
    for (let at = 0; at < size; at += pool.length) {
      const n = Math.min(pool.length, size - at);
      const start = (offset + at) % (pool.length - n + 1);
      out.set(pool.subarray(start, start + n), at);
    }
    offset = (offset + 7919) % pool.length;
    return out;
  };
}

/** Bytes one decode step must move at least: every weight once, each sequence's cache (K and V, f32) up to
 *  the mean context, and the logits written and read. */
function bytesPerStep(c: DecoderConfig, precision: WeightPrecision, sequences: number, meanContext: number): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
  const weights = (c.numLayers * perLayer + c.hiddenSize * c.vocabSize) * (precision === 'f16' ? 2 : 4);
  const cache = sequences * c.numLayers * 2 * kv * 4 * meanContext;
  const logits = sequences * c.vocabSize * 4 * 2;
  return weights + cache + logits;
}

interface PeerResult {
  gen_s: number;
  gen_tok_per_s: number;
}

function runPeer(script: string, shape: string, prompts: number, gens: number, promptLen: number, newTokens: number): PeerResult | { error: string } {
  const r = spawnSync('python3', [script, '--shape', shape, '--prompts', String(prompts), '--gens', String(gens), '--prompt-len', String(promptLen), '--new', String(newTokens), '--steps', '2'], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  const last = r.stdout?.trim().split('\n').pop() ?? '';
  try {
    const parsed = JSON.parse(last) as PeerResult;
    if (typeof parsed.gen_s === 'number') return parsed;
  } catch {
    // fall through
  }
  return { error: `peer exited ${r.status}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
}

export async function run(log: (line: string) => void = console.log, ctxIn?: GpuContext): Promise<unknown[]> {
  const ctx = ctxIn ?? (await createGpuContext());
  if (!ctx) throw new Error('decode bench: no WebGPU adapter');
  const precision = (process.env.DECODE_PRECISION as WeightPrecision | undefined) ?? (ctx.caps.software ? 'f32' : 'f16');
  const newTokens = Number(process.env.DECODE_NEW ?? 256);
  const promptLen = Number(process.env.DECODE_PROMPT ?? 128);
  const bandwidth = Number(process.env.DECODE_BANDWIDTH ?? 4.8e12);
  const chunk = Number(process.env.DECODE_CHUNK ?? 16);
  const peer = process.env.DECODE_TORCH_PEER;
  const runs = (process.env.DECODE_RUNS ?? DEFAULT_RUNS.join(',')).split(',').map((spec) => {
    const m = /^([\w.-]+):(\d+)x(\d+)$/.exec(spec.trim());
    if (!m) throw new Error(`DECODE_RUNS: "${spec}" is not shape:PROMPTSxGENS`);
    return { shape: m[1], prompts: Number(m[2]), gens: Number(m[3]) };
  });
  log(JSON.stringify({ device: ctx.caps.adapterDescription, precision, newTokens, promptLen, chunk }));
  const rows: unknown[] = [];
  let engine: WebGpuRolloutEngine | undefined;
  let loaded = '';
  for (const { shape, prompts, gens } of runs) {
    const config = configOf(shape);
    if (loaded !== shape) {
      await engine?.close();
      engine?.weights.destroy();
      const t = performance.now();
      engine = await WebGpuRolloutEngine.create(ctx, { config, parameters: parametersFor(config, 1), lora: { rank: 16, scale: 2 }, precision, chunk, defaultBatch: 64 });
      await ctx.finish();
      log(JSON.stringify({ shape, load_s: +((performance.now() - t) / 1000).toFixed(2) }));
      loaded = shape;
    }
    const rng = new Rng(prompts * 1000 + gens);
    const promptIds = Array.from({ length: prompts }, () => Array.from({ length: promptLen }, () => rng.int(config.vocabSize)));
    const sequences = prompts * gens;
    const options = { temperature: 1, seed: 1, maxBatch: sequences, eosTokenIds: [] as number[] };
    // Warm-up: pipelines compile, the workspace is allocated at full size.
    await engine!.sample(promptIds, gens, { ...options, maxNewTokens: 2 });
    const first = await engine!.sample(promptIds, gens, { ...options, maxNewTokens: 1 });
    const timed = await engine!.sample(promptIds, gens, { ...options, maxNewTokens: newTokens });
    const decodeSeconds = Math.max(1e-9, timed.seconds - first.seconds);
    const stepSeconds = decodeSeconds / Math.max(1, newTokens - 1);
    const bytes = bytesPerStep(config, precision, sequences, promptLen + newTokens / 2);
    const row: Record<string, unknown> = {
      shape,
      sequences,
      new_tokens: newTokens,
      gen_s: +timed.seconds.toFixed(3),
      prefill_and_first_token_s: +first.seconds.toFixed(3),
      tokens_per_s: +((sequences * newTokens) / timed.seconds).toFixed(1),
      decode_step_ms: +(stepSeconds * 1000).toFixed(3),
      bytes_per_step_mb: +(bytes / 1e6).toFixed(1),
      bandwidth_fraction: +(bytes / stepSeconds / bandwidth).toFixed(4),
    };
    if (timed.completionIds.length !== sequences * newTokens) row.error = `expected ${sequences * newTokens} tokens, got ${timed.completionIds.length}`;
    if (peer) {
      const p = runPeer(peer, shape, prompts, gens, promptLen, newTokens);
      if ('error' in p) row.peer_error = p.error;
      else {
        row.peer_gen_s = p.gen_s;
        row.ratio_to_peer = +(timed.seconds / p.gen_s).toFixed(3);
      }
    }
    log(JSON.stringify(row));
    rows.push(row);
  }
  await engine?.close();
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run();
  process.exit(0);
}
