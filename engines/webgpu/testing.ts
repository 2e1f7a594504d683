// Shared by the kernel specs and the GEMM bench: the device to test on, seeded random inputs, and the
// error measure against a float64 reference.
import { existsSync } from 'node:fs';
import { createGpuContext, type GpuContext } from './device.js';
import { fromF16, toF16 } from './f16.js';

const LAVAPIPE_ICD = '/usr/share/vulkan/icd.d/lvp_icd.json';
let shared: Promise<GpuContext | null> | null = null;

/** The device the specs run on. Where Mesa's lavapipe is installed and no Vulkan driver is chosen
 *  explicitly, it is lavapipe (CI machines have no GPU; the variables must be set before Dawn starts
 *  Vulkan). Null where there is no WebGPU adapter at all: specs then skip and say so, except in CI
 *  (`CI` set), where that is an error. */
export function testGpu(): Promise<GpuContext | null> {
  if (!shared) {
    if (existsSync(LAVAPIPE_ICD) && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) process.env.VK_ICD_FILENAMES = LAVAPIPE_ICD;
    process.env.XDG_RUNTIME_DIR ??= '/tmp';
    // In CI a missing adapter is a failure, not a skip: .ci/run installs lavapipe so every kernel spec runs.
    shared = createGpuContext()
      .catch((err: unknown) => {
        console.warn(`WebGPU device: ${(err as Error).message}`);
        return null;
      })
      .then((ctx) => {
        if (!ctx && process.env.CI) throw new Error('CI: no WebGPU adapter (.ci/run installs lavapipe, so every kernel spec must run)');
        return ctx;
      });
  }
  return shared;
}

export const NO_ADAPTER = 'no WebGPU adapter on this machine (install mesa-vulkan-drivers for lavapipe): GPU kernel specs skipped';

/** A seeded generator (mulberry32) of uniform values in [-1, 1). */
export function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function randomArray(n: number, rnd: () => number, scale = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rnd() * scale;
  return out;
}

/** Values as the GPU will see them in `type`, as float64 for the reference, plus the bytes to upload. */
export function asType(values: Float64Array, type: 'f16' | 'f32'): { exact: Float64Array; data: Uint16Array | Float32Array } {
  if (type === 'f16') {
    const data = toF16(values);
    return { exact: Float64Array.from(fromF16(data)), data };
  }
  const data = Float32Array.from(values);
  return { exact: Float64Array.from(data), data };
}

export async function readValues(ctx: GpuContext, buffer: GPUBuffer, n: number, type: 'f16' | 'f32'): Promise<Float32Array> {
  const raw = await ctx.read(buffer, n * (type === 'f16' ? 2 : 4));
  return type === 'f16' ? fromF16(new Uint16Array(raw)) : new Float32Array(raw);
}

/** ‖out − ref‖ / ‖ref‖; Infinity where any output is not finite (NaN never passes). */
export function relativeError(out: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(out[i])) return Infinity;
    num += (out[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num) / Math.max(Math.sqrt(den), 1e-30);
}

/** Largest |out − ref| / (|ref| + floor): for element-wise checks where every entry must be close. */
export function maxElementError(out: ArrayLike<number>, ref: ArrayLike<number>, floor = 1e-3): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(out[i])) return Infinity;
    worst = Math.max(worst, Math.abs(out[i] - ref[i]) / (Math.abs(ref[i]) + floor));
  }
  return worst;
}

/** A buffer of n values of `type`, every word set to NaN, so an unwritten output cannot pass. */
export function poisoned(ctx: GpuContext, n: number, type: 'f16' | 'f32'): GPUBuffer {
  return ctx.upload(type === 'f16' ? new Uint16Array(n).fill(0x7e00) : new Float32Array(n).fill(NaN));
}

/** dy·∂f/∂x by central differences in float64: a backward reference that shares no formula with the
 *  kernel under test. `f` maps x to its output; cost is two evaluations per input entry. */
export function numericVjp(f: (x: Float64Array) => Float64Array, x: Float64Array, dy: Float64Array, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  const probe = Float64Array.from(x);
  for (let i = 0; i < x.length; i++) {
    probe[i] = x[i] + h;
    const up = f(probe);
    probe[i] = x[i] - h;
    const down = f(probe);
    probe[i] = x[i];
    let sum = 0;
    for (let j = 0; j < dy.length; j++) sum += (dy[j] * (up[j] - down[j])) / (2 * h);
    grad[i] = sum;
  }
  return grad;
}
