import { describe, expect, it } from 'vitest';
import { asType, NO_ADAPTER, poisoned, random, randomArray, readValues, relativeError, testGpu} from '../testing.js';
import { chooseGemmVariant, DEFAULT_TILING, Gemm, gemmSubgroupMatrixWgsl, type GemmLayout, type GemmShape, type GemmVariant, type SubgroupMatrixTiling } from './gemm.js';

const gpu = await testGpu();
if (!gpu) console.warn(NO_ADAPTER);

/** C = op(A)·op(B) (+ C0) in float64, straight from the layout's definition. */
function reference(s: GemmShape, a: Float64Array, b: Float64Array, c0?: Float64Array): Float64Array {
  const { M, N, K } = s;
  const batch = s.batch ?? 1;
  const out = new Float64Array(batch * M * N);
  for (let z = 0; z < batch; z++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = c0 ? c0[z * M * N + m * N + n] : 0;
        for (let k = 0; k < K; k++) {
          const av = s.layout === 'tn' ? a[z * M * K + k * M + m] : a[z * M * K + m * K + k];
          const bv = s.layout === 'nt' ? b[z * K * N + n * K + k] : b[z * K * N + k * N + n];
          sum += av * bv;
        }
        out[z * M * N + m * N + n] = sum;
      }
    }
  }
  return out;
}

async function check(s: GemmShape, variant: GemmVariant, seed: number, tiling?: SubgroupMatrixTiling): Promise<number> {
  const ctx = gpu!;
  const rnd = random(seed);
  const batch = s.batch ?? 1;
  const a = asType(randomArray(batch * s.M * s.K, rnd), s.input);
  const b = asType(randomArray(batch * s.K * s.N, rnd), s.input);
  const c0 = s.accumulate ? asType(randomArray(batch * s.M * s.N, rnd), 'f32') : undefined;
  const gemm = await Gemm.create(ctx, s, { variant, tiling });
  expect(gemm.variant).toBe(variant);
  const bufA = ctx.upload(a.data);
  const bufB = ctx.upload(b.data);
  const bufC = c0 ? ctx.upload(c0.data) : poisoned(ctx, batch * s.M * s.N, 'f32');
  ctx.submit([gemm.dispatch(bufA, bufB, bufC)]);
  const out = await readValues(ctx, bufC, batch * s.M * s.N, 'f32');
  const ref = reference(s, a.exact, b.exact, c0?.exact);
  for (const buf of [bufA, bufB, bufC]) buf.destroy();
  // f32 accumulation of exactly representable products: only summation-order error remains.
  return relativeError(out, ref);
}

// Shapes: one not a multiple of any tile (edges, scalar loads), one tile-aligned with vector loads,
// a batch of two, accumulation.
const shapes: Array<Omit<GemmShape, 'layout' | 'input'>> = [
  { M: 37, N: 45, K: 29 },
  { M: 128, N: 64, K: 96 },
  { M: 70, N: 68, K: 40, batch: 2 },
  { M: 66, N: 72, K: 48, accumulate: true },
  { M: 40, N: 136, K: 64 },
];
const layouts: GemmLayout[] = ['nn', 'nt', 'tn'];

describe.skipIf(!gpu)('gemm kernels against a float64 reference', () => {
  const variants: Array<{ variant: GemmVariant; input: 'f16' | 'f32'; limit: number }> = [
    { variant: 'simt', input: 'f32', limit: 1e-6 },
    { variant: 'simt', input: 'f16', limit: 1e-6 },
  ];
  for (const { variant, input, limit } of variants) {
    for (const layout of layouts) {
      it(`${variant} ${input} ${layout}`, async () => {
        for (const [i, shape] of shapes.entries()) {
          const s: GemmShape = { ...shape, layout, input };
          const seed = (Date.now() + i) >>> 0;
          const err = await check(s, variant, seed);
          expect(err, `${JSON.stringify(s)} seed ${seed}`).toBeLessThan(limit);
        }
      });
    }
  }

  // Tensor cores: only where the adapter offers f16 subgroup matrices (the H200 does, lavapipe not);
  // the GEMM bench runs the same comparison there.
  const tensorCores = gpu ? chooseGemmVariant(gpu.caps, { input: 'f16' }) === 'subgroup-matrix' : false;
  for (const layout of layouts) {
    it.skipIf(!tensorCores)(`subgroup-matrix f16 ${layout}, looped and unrolled`, async () => {
      for (const tiling of [DEFAULT_TILING, { ...DEFAULT_TILING, unroll: false }]) {
        for (const [i, shape] of [...shapes, { M: 256, N: 256, K: 128 }].entries()) {
          const s: GemmShape = { ...shape, layout, input: 'f16' };
          const seed = (Date.now() + i) >>> 0;
          expect(await check(s, 'subgroup-matrix', seed, tiling), `${JSON.stringify(s)} ${JSON.stringify(tiling)} seed ${seed}`).toBeLessThan(1e-6);
        }
      }
    });
  }

  it('picks SIMT where the adapter has no f16 subgroup matrices, and refuses tensor cores there', async () => {
    const ctx = gpu!;
    if (ctx.caps.subgroupMatrix.length > 0) return;
    expect(chooseGemmVariant(ctx.caps, { input: 'f16' })).toBe('simt');
    await expect(Gemm.create(ctx, { M: 16, N: 16, K: 16, layout: 'nn', input: 'f16' }, { variant: 'subgroup-matrix' })).rejects.toThrow(/no f16 subgroup matrices/);
  });

  it('the unrolled subgroup-matrix source has one product per fragment pair and 16-deep step, no matrix arrays', () => {
    const tiling = { BM: 128, BN: 64, BK: 32, SGM: 2, SGN: 2, unroll: true };
    const code = gemmSubgroupMatrixWgsl({ M: 256, N: 128, K: 64, layout: 'nt', input: 'f16' }, tiling, 32);
    // 4×2 fragments a subgroup (64×32), 2 steps of 16 in BK = 32.
    expect(code.match(/subgroupMatrixMultiplyAccumulate\(/g)).toHaveLength(4 * 2 * 2);
    expect(code.match(/subgroupMatrixLoad<subgroup_matrix_left/g)).toHaveLength(4 * 2);
    expect(code).not.toMatch(/array<subgroup_matrix/);
  });

  it('f32 inputs always use SIMT (exact mode)', () => {
    expect(chooseGemmVariant(gpu!.caps, { input: 'f32' })).toBe('simt');
  });
});
