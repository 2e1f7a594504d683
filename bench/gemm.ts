// Our WGSL GEMM kernels (engines/webgpu/kernels/gemm.ts): TFLOP/s at n³ (default 4096 and 8192) per
// variant and layout, the relative error of sampled entries against a float64 reference, and, where
// GEMM_TORCH_PEER names ../shared/bench/peer_torch_grpo.py, torch's bf16 matmul measured in the same
// run, each rate printed as a ratio to it. Before timing, every variant is checked on irregular shapes
// (edges, all three layouts) against a full float64 reference.
// Run: `npm run bench -- gemm` (GEMM_SIZES=4096,8192 by default; GEMM_TILINGS=BMxBNxBK/SGMxSGN,... to sweep).
// Timing: R products recorded into one command buffer, median of 3 submissions; "gpu_ms" from
// timestamp queries around the pass, "wall_ms" from the host clock (the difference is dispatch cost).
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { createGpuContext, DAWN_TOGGLES, type GpuContext } from '../engines/webgpu/device.js';
import { f16BitsToF32, f32ToF16Bits } from '../engines/webgpu/f16.js';
import { chooseGemmVariant, DEFAULT_TILING, Gemm, type GemmLayout, type GemmShape, type GemmVariant, type SubgroupMatrixTiling } from '../engines/webgpu/kernels/gemm.js';

interface Candidate {
  name: string;
  variant: GemmVariant;
  input: 'f16' | 'f32';
  tiling?: SubgroupMatrixTiling;
}

function parseTiling(text: string): SubgroupMatrixTiling {
  const m = /^(\d+)x(\d+)x(\d+)\/(\d+)x(\d+)(u?)$/.exec(text.trim());
  if (!m) throw new Error(`GEMM_TILINGS: '${text}' is not BMxBNxBK/SGMxSGN[u] (e.g. 128x128x32/2x2, u: unrolled)`);
  const [BM, BN, BK, SGM, SGN] = m.slice(1, 6).map(Number);
  return { BM, BN, BK, SGM, SGN, unroll: m[6] === 'u' };
}

const tilingName = (t: SubgroupMatrixTiling) => `${t.BM}x${t.BN}x${t.BK}/${t.SGM}x${t.SGN}${t.unroll ? 'u' : ''}`;

/** Random operands drawn from a pool of f16 values in [-1, 1): both the f16 bits the GPU reads and
 *  their exact values (f32 operands get the same values, so every variant computes the same product). */
function operands(count: number, seed: number) {
  const pool = new Uint16Array(4096);
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s;
  };
  for (let i = 0; i < pool.length; i++) pool[i] = f32ToF16Bits((next() / 2 ** 32) * 2 - 1);
  const bits = new Uint16Array(count);
  for (let i = 0; i < count; i++) bits[i] = pool[next() >>> 20];
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = f16BitsToF32(bits[i]);
  return { bits, values };
}

function refEntry(s: GemmShape, a: Float32Array, b: Float32Array, m: number, n: number): number {
  let sum = 0;
  for (let k = 0; k < s.K; k++) {
    const av = s.layout === 'tn' ? a[k * s.M + m] : a[m * s.K + k];
    const bv = s.layout === 'nt' ? b[n * s.K + k] : b[k * s.N + n];
    sum += av * bv;
  }
  return sum;
}

/** ‖out − ref‖ / ‖ref‖ over `samples` entries (all entries when samples ≥ M·N). */
function sampledError(s: GemmShape, a: Float32Array, b: Float32Array, out: Float32Array, samples: number): number {
  let num = 0;
  let den = 0;
  const all = samples >= s.M * s.N;
  for (let i = 0; i < (all ? s.M * s.N : samples); i++) {
    const idx = all ? i : Math.floor(Math.random() * s.M * s.N);
    const m = Math.floor(idx / s.N);
    const n = idx % s.N;
    const ref = refEntry(s, a, b, m, n);
    const got = out[m * s.N + n];
    if (!Number.isFinite(got)) return Infinity;
    num += (got - ref) ** 2;
    den += ref ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function runOnce(ctx: GpuContext, s: GemmShape, c: Candidate, a: { bits: Uint16Array; values: Float32Array }, b: { bits: Uint16Array; values: Float32Array }) {
  const gemm = await Gemm.create(ctx, s, { variant: c.variant, tiling: c.tiling });
  const bufA = ctx.upload(c.input === 'f16' ? a.bits : a.values);
  const bufB = ctx.upload(c.input === 'f16' ? b.bits : b.values);
  const bufC = ctx.upload(new Float32Array(s.M * s.N).fill(NaN));
  return { gemm, bufA, bufB, bufC, release: () => [bufA, bufB, bufC].forEach((x) => x.destroy()) };
}

/** Median wall and GPU milliseconds per product over 3 submissions of `reps` recorded products. */
async function time(ctx: GpuContext, gemm: Gemm, bufs: GPUBuffer[], reps: number): Promise<{ wall: number; gpu: number | null }> {
  const dispatches = Array.from({ length: reps }, () => gemm.dispatch(bufs[0], bufs[1], bufs[2]));
  const query = ctx.caps.timestampQuery ? ctx.device.createQuerySet({ type: 'timestamp', count: 2 }) : null;
  const resolved = query ? ctx.device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
  const walls: number[] = [];
  const gpus: number[] = [];
  ctx.submit(dispatches.slice(0, 2)); // warm-up
  await ctx.finish();
  for (let i = 0; i < 3; i++) {
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass(query ? { timestampWrites: { querySet: query, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined);
    for (const d of dispatches) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
    }
    pass.end();
    if (query && resolved) encoder.resolveQuerySet(query, 0, 2, resolved, 0);
    const t0 = performance.now();
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.finish();
    walls.push((performance.now() - t0) / reps);
    if (resolved) {
      const ts = new BigUint64Array(await ctx.read(resolved, 16));
      gpus.push(Number(ts[1] - ts[0]) / 1e6 / reps);
    }
  }
  query?.destroy();
  resolved?.destroy();
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return { wall: median(walls), gpu: gpus.length && gpus.every((g) => g > 0) ? median(gpus) : null };
}

function torchPeer(log: (line: string) => void): Map<number, number> {
  const script = process.env.GEMM_TORCH_PEER;
  const rates = new Map<number, number>();
  if (!script) return rates;
  const r = spawnSync('python3', [script, '--matmul'], { encoding: 'utf8' });
  if (r.status !== 0) {
    log(JSON.stringify({ peer: 'torch-bf16-matmul', error: (r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ') }));
    return rates;
  }
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const row = JSON.parse(line) as { n: number; tflops: number };
    rates.set(row.n, row.tflops);
    log(line);
  }
  return rates;
}

export async function run(log: (line: string) => void = (line) => console.log(line)): Promise<void> {
  const peer = torchPeer(log);
  // GEMM_DAWN_EXTRA=toggle,... appends Dawn toggles (e.g. disable_robustness) to measure what they cost.
  const extra = process.env.GEMM_DAWN_EXTRA;
  const ctx = await createGpuContext(extra ? { flags: [`${DAWN_TOGGLES[0]},${extra}`] } : {});
  if (!ctx) throw new Error('no WebGPU adapter (is a Vulkan driver installed?)');
  const caps = ctx.caps;
  log(JSON.stringify({ bench: 'gemm', dawn_extra: extra ?? null, adapter: caps.adapterDescription, software: caps.software, f16: caps.shaderF16, subgroup_matrix: caps.subgroupMatrix.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`), subgroup_size: [caps.subgroupMinSize, caps.subgroupMaxSize] }));
  const tensorCores = chooseGemmVariant(caps, { input: 'f16' }) === 'subgroup-matrix';
  const tilings = process.env.GEMM_TILINGS ? process.env.GEMM_TILINGS.split(',').map(parseTiling) : [DEFAULT_TILING];
  const candidates: Candidate[] = [
    ...(tensorCores ? tilings.map((t) => ({ name: `subgroup-matrix-f16 ${tilingName(t)}`, variant: 'subgroup-matrix' as const, input: 'f16' as const, tiling: t })) : []),
    ...(caps.shaderF16 ? [{ name: 'simt-f16', variant: 'simt' as const, input: 'f16' as const }] : []),
    { name: 'simt-f32', variant: 'simt', input: 'f32' },
  ];
  const layouts: GemmLayout[] = ['nn', 'nt', 'tn'];
  // GEMM_ONLY=prefix keeps the candidates whose name starts with it (a sweep of tilings alone).
  if (process.env.GEMM_ONLY) candidates.splice(0, candidates.length, ...candidates.filter((c) => c.name.startsWith(process.env.GEMM_ONLY!)));

  // Correctness first: every candidate, every layout, on shapes with edges, against a full reference.
  let failed = 0;
  const usable: Candidate[] = [];
  for (const c of candidates) {
    try {
    for (const layout of layouts) {
      for (const [M, N, K] of [[200, 136, 72], [256, 256, 128], [130, 66, 40]]) {
        const s: GemmShape = { M, N, K, layout, input: c.input };
        const a = operands(M * K, M * 7 + K);
        const b = operands(K * N, N * 13 + K);
        const r = await runOnce(ctx, s, c, a, b);
        ctx.submit([r.gemm.dispatch(r.bufA, r.bufB, r.bufC)]);
        const out = new Float32Array(await ctx.read(r.bufC, M * N * 4));
        r.release();
        const err = sampledError(s, a.values, b.values, out, Infinity);
        if (!(err < 1e-5)) failed++;
        log(JSON.stringify({ check: c.name, layout, M, N, K, rel_err: Number(err.toExponential(2)), ok: err < 1e-5 }));
      }
    }
      usable.push(c);
    } catch (err) {
      // A tiling the compiler or the adapter refuses is reported and left out; the others still run.
      failed++;
      log(JSON.stringify({ check: c.name, error: (err as Error).message.slice(0, 2000) }));
    }
  }

  const sizes = (process.env.GEMM_SIZES ?? '4096,8192').split(',').map(Number);
  const timingLayouts = (process.env.GEMM_LAYOUTS ?? 'nn,nt,tn').split(',') as GemmLayout[];
  const rows: Array<Record<string, unknown>> = [];
  for (const n of sizes) {
    const a = operands(n * n, 1);
    const b = operands(n * n, 2);
    const reps = Math.min(40, Math.max(8, Math.round((20 * 4096 ** 3) / n ** 3)));
    for (const c of usable) {
      for (const layout of timingLayouts) {
        const s: GemmShape = { M: n, N: n, K: n, layout, input: c.input };
        const r = await runOnce(ctx, s, c, a, b);
        const t = await time(ctx, r.gemm, [r.bufA, r.bufB, r.bufC], c.input === 'f32' ? Math.max(2, reps >> 1) : reps);
        const out = new Float32Array(await ctx.read(r.bufC));
        r.release();
        const err = sampledError(s, a.values, b.values, out, 64);
        const flops = 2 * n ** 3;
        const kernelMs = t.gpu ?? t.wall;
        const tflops = flops / kernelMs / 1e9;
        const torch = peer.get(n);
        const row = { variant: c.name, layout, n, wall_ms: +t.wall.toFixed(3), gpu_ms: t.gpu === null ? null : +t.gpu.toFixed(3), tflops: +tflops.toPrecision(4), rel_err: Number(err.toExponential(2)), torch_bf16_tflops: torch ?? null, ratio_to_torch: torch ? +(tflops / torch).toFixed(3) : null };
        rows.push(row);
        log(JSON.stringify(row));
      }
    }
  }
  const best = new Map<number, Record<string, unknown>>();
  for (const row of rows) if (!best.has(row.n as number) || (row.tflops as number) > (best.get(row.n as number)!.tflops as number)) best.set(row.n as number, row);
  log(JSON.stringify({ bench: 'gemm', summary: [...best.values()].map((r) => ({ n: r.n, best: `${r.variant} ${r.layout}`, tflops: r.tflops, ratio_to_torch: r.ratio_to_torch })), checks_failed: failed, target_ratio: 0.4 }));
  ctx.destroy();
  if (failed) throw new Error(`${failed} GEMM correctness checks failed`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run()
    .then(() => process.exit(0))
    .catch((err) => {
      console.error(`bench gemm: ${(err as Error).message}`);
      process.exit(1);
    });
}
