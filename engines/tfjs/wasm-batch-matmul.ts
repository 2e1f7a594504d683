// A batched matrix product for the wasm backend, in WebAssembly SIMD, working on tfjs-backend-wasm's own
// memory. The backend's BatchMatMul runs batched products (attention: one small product per sequence and
// head) through a scalar loop at ~2 GFLOP/s on this machine, a tenth of its 2-D (XNNPACK) rate; attention
// was 37 % of a GRPO train step and 45 % of a decode step on the embedded model. This kernel keeps a 4×8
// block of the output in registers and reaches several times that.
//
// The module is written below as WebAssembly text, assembled with wabt at load, and imports the wasm
// backend's memory, so it reads and writes tensors where they are (no copies).
import { tf } from './tf.js';

/** The kernel name `batchMatMul` dispatches to on wasm. */
export const SIMD_BATCH_MATMUL = 'GrpoflowSimdBatchMatMul';

/** Registers of one output block: `rows` rows × `vecs` four-float vectors. */
function blockFunction(rows: number, vecs: number): string {
  const acc = (r: number, v: number) => `$acc${r}_${v}`;
  const locals: string[] = [];
  for (let r = 0; r < rows; r++) for (let v = 0; v < vecs; v++) locals.push(`(local ${acc(r, v)} v128)`);
  for (let v = 0; v < vecs; v++) locals.push(`(local $b${v} v128)`);
  for (let r = 1; r < rows; r++) locals.push(`(local $pa${r} i32)`);
  const body: string[] = [];
  for (let r = 1; r < rows; r++) body.push(`(local.set $pa${r} (i32.add (local.get $pa) (i32.mul (local.get $lda) (i32.const ${r}))))`);
  body.push('(local.set $end (i32.add (local.get $pa) (i32.shl (local.get $k) (i32.const 2))))');
  const step: string[] = [];
  for (let v = 0; v < vecs; v++) step.push(`(local.set $b${v} (v128.load offset=${16 * v} (local.get $pb)))`);
  for (let r = 0; r < rows; r++) {
    step.push(`(local.set $a (f32x4.splat (f32.load (local.get ${r === 0 ? '$pa' : `$pa${r}`}))))`);
    for (let v = 0; v < vecs; v++) step.push(`(local.set ${acc(r, v)} (f32x4.add (local.get ${acc(r, v)}) (f32x4.mul (local.get $a) (local.get $b${v}))))`);
  }
  step.push('(local.set $pa (i32.add (local.get $pa) (i32.const 4)))');
  for (let r = 1; r < rows; r++) step.push(`(local.set $pa${r} (i32.add (local.get $pa${r}) (i32.const 4)))`);
  step.push('(local.set $pb (i32.add (local.get $pb) (local.get $ldb)))');
  body.push(`(block $done (loop $next
    (br_if $done (i32.ge_u (local.get $pa) (local.get $end)))
    ${step.join('\n    ')}
    (br $next)))`);
  for (let r = 0; r < rows; r++) {
    const row = r === 0 ? '(local.get $pc)' : `(i32.add (local.get $pc) (i32.mul (local.get $ldc) (i32.const ${r})))`;
    for (let v = 0; v < vecs; v++) body.push(`(v128.store offset=${16 * v} ${row} (local.get ${acc(r, v)}))`);
  }
  return `(func $block${rows}x${vecs} (param $pa i32) (param $pb i32) (param $pc i32) (param $k i32) (param $lda i32) (param $ldb i32) (param $ldc i32)
  (local $end i32) (local $a v128) ${locals.join(' ')}
  ${body.join('\n  ')})`;
}

/** The column loop over one band of `rows` output rows starting at row $i: 8-wide, then 4-wide, then one by one. */
function columnLoop(rows: number): string {
  const args = (j: string) =>
    `(i32.add (local.get $a) (i32.mul (local.get $i) (local.get $lda))) (i32.add (local.get $b) (i32.shl ${j} (i32.const 2))) (i32.add (local.get $c) (i32.add (i32.mul (local.get $i) (local.get $ldc)) (i32.shl ${j} (i32.const 2)))) (local.get $k) (local.get $lda) (local.get $ldb) (local.get $ldc)`;
  const scalar: string[] = [];
  for (let r = 0; r < rows; r++) {
    const row = `(i32.add (local.get $i) (i32.const ${r}))`;
    scalar.push(`(f32.store (i32.add (local.get $c) (i32.add (i32.mul ${row} (local.get $ldc)) (i32.shl (local.get $j) (i32.const 2))))
        (call $dot (i32.add (local.get $a) (i32.mul ${row} (local.get $lda))) (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))) (local.get $k) (local.get $ldb)))`);
  }
  return `(local.set $j (i32.const 0))
      (block $wide_done (loop $wide
        (br_if $wide_done (i32.gt_s (i32.add (local.get $j) (i32.const 8)) (local.get $n)))
        (call $block${rows}x2 ${args('(local.get $j)')})
        (local.set $j (i32.add (local.get $j) (i32.const 8)))
        (br $wide)))
      (if (i32.le_s (i32.add (local.get $j) (i32.const 4)) (local.get $n)) (then
        (call $block${rows}x1 ${args('(local.get $j)')})
        (local.set $j (i32.add (local.get $j) (i32.const 4)))))
      (block $tail_done (loop $tail
        (br_if $tail_done (i32.ge_s (local.get $j) (local.get $n)))
        ${scalar.join('\n        ')}
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $tail)))`;
}

/** C[b] = A[b] · B[b] for `batch` row-major float32 matrices A [m, k], B [k, n], C [m, n] (byte addresses). */
export function batchMatMulWat(): string {
  return `(module
  (import "env" "memory" (memory 0))
  (func $dot (param $pa i32) (param $pb i32) (param $k i32) (param $ldb i32) (result f32)
    (local $s f32) (local $end i32)
    (local.set $end (i32.add (local.get $pa) (i32.shl (local.get $k) (i32.const 2))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $pa) (local.get $end)))
      (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $pa)) (f32.load (local.get $pb)))))
      (local.set $pa (i32.add (local.get $pa) (i32.const 4)))
      (local.set $pb (i32.add (local.get $pb) (local.get $ldb)))
      (br $next)))
    (local.get $s))
  ${blockFunction(4, 2)}
  ${blockFunction(4, 1)}
  ${blockFunction(1, 2)}
  ${blockFunction(1, 1)}
  (func (export "bmm") (param $a i32) (param $b i32) (param $c i32) (param $batch i32) (param $m i32) (param $k i32) (param $n i32)
    (local $lda i32) (local $ldb i32) (local $ldc i32) (local $i i32) (local $j i32) (local $item i32)
    (local.set $lda (i32.shl (local.get $k) (i32.const 2)))
    (local.set $ldb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $ldc (i32.shl (local.get $n) (i32.const 2)))
    (block $items_done (loop $items
      (br_if $items_done (i32.ge_s (local.get $item) (local.get $batch)))
      (local.set $i (i32.const 0))
      (block $bands_done (loop $bands
        (br_if $bands_done (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
        ${columnLoop(4)}
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $bands)))
      (block $rows_done (loop $rows
        (br_if $rows_done (i32.ge_s (local.get $i) (local.get $m)))
        ${columnLoop(1)}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
      (local.set $a (i32.add (local.get $a) (i32.mul (local.get $m) (local.get $lda))))
      (local.set $b (i32.add (local.get $b) (i32.mul (local.get $k) (local.get $ldb))))
      (local.set $c (i32.add (local.get $c) (i32.mul (local.get $m) (local.get $ldc))))
      (local.set $item (i32.add (local.get $item) (i32.const 1)))
      (br $items))))
)`;
}

type Bmm = (a: number, b: number, c: number, batch: number, m: number, k: number, n: number) => void;

interface WasmBackendInternals {
  wasm: { asm?: { memory?: WebAssembly.Memory } };
  dataIdMap: { get(dataId: object): { memoryOffset: number } };
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

let registered: Promise<boolean> | undefined;

/**
 * Assembles the kernel and registers it for the wasm backend (once per thread). Resolves false, with the
 * reason in `simdBatchMatMulUnavailable`, where it cannot run (no SIMD, backend internals changed).
 */
export function registerSimdBatchMatMul(): Promise<boolean> {
  registered ??= (async () => {
    try {
      const backend = tf.findBackend('wasm') as unknown as WasmBackendInternals | null;
      const memory = backend?.wasm?.asm?.memory;
      if (!backend || !(memory instanceof WebAssembly.Memory) || !backend.dataIdMap || !backend.makeOutput) {
        throw new Error('the wasm backend does not expose its memory');
      }
      const wabt = await (await import('wabt')).default();
      const parsed = wabt.parseWat('batch-matmul.wat', batchMatMulWat(), { simd: true });
      const { buffer } = parsed.toBinary({});
      parsed.destroy();
      const module = await WebAssembly.compile(new Uint8Array(buffer));
      const instance = await WebAssembly.instantiate(module, { env: { memory } });
      const bmm = instance.exports.bmm as Bmm;
      tf.registerKernel({
        kernelName: SIMD_BATCH_MATMUL,
        backendName: 'wasm',
        kernelFunc: ({ inputs, backend: kernelBackend }) => {
          const wasmBackend = kernelBackend as unknown as WasmBackendInternals;
          const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
          const m = a.shape[a.shape.length - 2];
          const k = a.shape[a.shape.length - 1];
          const n = b.shape[b.shape.length - 1];
          const batchShape = a.shape.slice(0, -2);
          const out = wasmBackend.makeOutput([...batchShape, m, n], 'float32');
          const offset = (t: tf.TensorInfo) => wasmBackend.dataIdMap.get(t.dataId).memoryOffset;
          const batch = batchShape.reduce((x, y) => x * y, 1);
          if (batch * m * n > 0) bmm(offset(a), offset(b), offset(out), batch, m, k, n);
          return out;
        },
      });
      return true;
    } catch (err) {
      simdBatchMatMulUnavailable = (err as Error).message;
      return false;
    }
  })();
  return registered;
}

/** Why the SIMD kernel is not in use, once `registerSimdBatchMatMul` resolved false. */
export let simdBatchMatMulUnavailable: string | undefined;

/** Whether `batchMatMul` can send this product to the SIMD kernel. */
function simdApplies(a: tf.Tensor, b: tf.Tensor): boolean {
  if (a.rank < 3 || a.rank !== b.rank || a.dtype !== 'float32' || b.dtype !== 'float32') return false;
  if (tf.getBackend() !== 'wasm' || !tf.getKernel(SIMD_BATCH_MATMUL, 'wasm')) return false;
  for (let i = 0; i < a.rank - 2; i++) if (a.shape[i] !== b.shape[i]) return false;
  return a.shape[a.rank - 1] === b.shape[b.rank - 2];
}

/** a · b over the last two axes; batched products of equal batch shape go to the SIMD kernel on wasm. */
export function batchMatMul<T extends tf.Tensor>(a: T, b: tf.Tensor): T {
  if (!simdApplies(a, b)) return tf.matMul(a as unknown as tf.Tensor3D, b as tf.Tensor3D) as unknown as T;
  return tf.engine().runKernel(SIMD_BATCH_MATMUL, { a, b } as unknown as tf.NamedTensorMap, {}) as T;
}
