// Batched matrix products at the attention shapes of the default job (arith-tiny: 2 KV heads, head dim 32,
// GQA groups stacked on the query axis): grpoflow's SIMD kernel against tfjs-backend-wasm's BatchMatMul,
// each as GFLOP/s and as a fraction of the backend's 2-D matmul rate measured in the same run.
// Run: `npm run bench -- attention`. Last line: one JSON object.
import { pathToFileURL } from 'node:url';
import { initBackend } from '../engines/tfjs/backend.js';
import { tf } from '../engines/tfjs/tf.js';
import { batchMatMul, simdBatchMatMulUnavailable } from '../engines/tfjs/wasm-batch-matmul.js';
import { measureMatmulGflops } from './matmul.js';

const SHAPES: { name: string; a: number[]; b: number[] }[] = [
  { name: 'train scores (16 rows × 2 heads, 106 queries, 111 keys)', a: [16, 2, 106, 32], b: [16, 2, 32, 111] },
  { name: 'train weighted values', a: [16, 2, 106, 111], b: [16, 2, 111, 32] },
  { name: 'train key gradient', a: [16, 2, 32, 106], b: [16, 2, 106, 111] },
  { name: 'decode scores (64 sequences, 112 cached)', a: [64, 2, 2, 32], b: [64, 2, 32, 112] },
  { name: 'decode weighted values', a: [64, 2, 2, 112], b: [64, 2, 112, 32] },
];

function gflops(f: () => tf.Tensor, flops: number, budgetMs = 400): number {
  for (let i = 0; i < 3; i++) f().dispose();
  let reps = 0;
  const start = performance.now();
  while (performance.now() - start < budgetMs || reps < 3) {
    f().dispose();
    reps++;
  }
  return (flops * reps) / ((performance.now() - start) / 1000) / 1e9;
}

export async function run(log: (line: string) => void = (line) => console.log(line)): Promise<Record<string, unknown>> {
  const backend = await initBackend('wasm');
  if (simdBatchMatMulUnavailable) log(`SIMD kernel unavailable: ${simdBatchMatMulUnavailable}`);
  const limit = await measureMatmulGflops();
  log(`backend ${backend.name}; 2-D matmul ${limit.toFixed(2)} GFLOP/s`);
  const rows = SHAPES.map(({ name, a: shapeA, b: shapeB }) => {
    const a = tf.randomNormal(shapeA, 0, 1, 'float32', 1);
    const b = tf.randomNormal(shapeB, 0, 1, 'float32', 2);
    const [m, k] = shapeA.slice(-2);
    const flops = 2 * shapeA.slice(0, -2).reduce((x, y) => x * y, 1) * m * k * shapeB[shapeB.length - 1];
    const simd = gflops(() => batchMatMul(a, b), flops);
    const tfjs = gflops(() => tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D), flops);
    tf.dispose([a, b]);
    log(`${name}: simd ${simd.toFixed(2)} GFLOP/s (${((100 * simd) / limit).toFixed(0)}% of 2-D), tfjs ${tfjs.toFixed(2)} GFLOP/s (${((100 * tfjs) / limit).toFixed(0)}%), ${(simd / tfjs).toFixed(1)}x`);
    return { shape: name, simd_gflops: Number(simd.toFixed(2)), tfjs_gflops: Number(tfjs.toFixed(2)), speedup: Number((simd / tfjs).toFixed(2)), simd_fraction_of_matmul: Number((simd / limit).toFixed(3)) };
  });
  const summary = { bench: 'attention', backend: backend.name, matmul_gflops: Number(limit.toFixed(2)), simd_kernel: !simdBatchMatMulUnavailable, rows };
  log(JSON.stringify(summary));
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run().catch((err) => {
    console.error(`bench attention: ${(err as Error).message}`);
    process.exit(1);
  });
}
