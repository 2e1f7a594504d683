// The backend's own matmul throughput: a 512×512 by 512×512 product repeated after warm-up. Other
// benches report their figures as a fraction of this limit, measured in the same run.
// Run: `npm run bench -- matmul`.
import { pathToFileURL } from 'node:url';
import { tf } from '../engines/tfjs/tf.js';
import { initBackend, type BackendName } from '../engines/tfjs/backend.js';
import { benchBackend } from './shapes.js';

/** GFLOP/s of an n×n×n float32 matmul on the current backend (2n³ flops each), over about `seconds`. */
export async function measureMatmulGflops(options: { size?: number; seconds?: number } = {}): Promise<number> {
  // A GPU needs large products, several queued per read-back, before it shows its rate; a CPU backend
  // reaches its rate at 512 and runs each product to completion anyway.
  const gpu = !['cpu', 'wasm'].includes(tf.getBackend());
  const n = options.size ?? (gpu ? 4096 : 512);
  const queued = gpu ? 10 : 1;
  const budgetMs = (options.seconds ?? 1) * 1000;
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const once = async () => {
    const products = Array.from({ length: queued }, () => tf.matMul(a, b));
    await products[queued - 1].data(); // wait for the backend to finish (asynchronous backends)
    tf.dispose(products);
  };
  for (let i = 0; i < 3; i++) await once();
  let reps = 0;
  const start = performance.now();
  while (performance.now() - start < budgetMs || reps < 3) {
    await once();
    reps += queued;
  }
  const seconds = (performance.now() - start) / 1000;
  a.dispose();
  b.dispose();
  return (2 * n ** 3 * reps) / seconds / 1e9;
}

export async function run(log: (line: string) => void = (line) => console.log(line), backend: BackendName = benchBackend()): Promise<Record<string, unknown>> {
  const chosen = await initBackend(backend);
  const gflops = await measureMatmulGflops();
  const summary = { bench: 'matmul', model: 'none', backend: chosen.name, size: tf.getBackend() === 'cpu' || tf.getBackend() === 'wasm' ? 512 : 4096, tokens_per_s: null, matmul_gflops: Number(gflops.toFixed(2)) };
  log(JSON.stringify(summary));
  return summary;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run(undefined, (process.argv[2] as BackendName | undefined) ?? 'wasm').catch((err) => {
    console.error(`bench matmul: ${(err as Error).message}`);
    process.exit(1);
  });
}
