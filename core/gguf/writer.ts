// Writing a GGUF file (version 3): header, metadata key/values, tensor infos, then the tensor data, each
// tensor at an offset aligned to 32 bytes. Tensors are produced and written one at a time, so a model of
// several GB never sits in memory whole. The file appears atomically (a temporary file, then a rename).
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { GGML_TYPE_NAME, GGUF_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, GgmlType, GgufValueType, tensorBytes } from './format.js';
import { encodeTensor } from './quantize.js';

export type GgufScalarType = 'uint8' | 'int32' | 'uint32' | 'uint64' | 'float32';

export type GgufMetadataValue =
  | { type: 'string'; value: string }
  | { type: GgufScalarType; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'array'; itemType: 'string'; value: string[] }
  | { type: 'array'; itemType: GgufScalarType; value: ArrayLike<number> };

/** Shorthands for metadata values. */
export const gguf = {
  string: (value: string): GgufMetadataValue => ({ type: 'string', value }),
  u32: (value: number): GgufMetadataValue => ({ type: 'uint32', value }),
  f32: (value: number): GgufMetadataValue => ({ type: 'float32', value }),
  bool: (value: boolean): GgufMetadataValue => ({ type: 'bool', value }),
  strings: (value: string[]): GgufMetadataValue => ({ type: 'array', itemType: 'string', value }),
  i32s: (value: ArrayLike<number>): GgufMetadataValue => ({ type: 'array', itemType: 'int32', value }),
};

export interface GgufTensor {
  name: string;
  /** Row-major shape, outermost first (as torch and safetensors write it); GGUF stores it reversed. */
  shape: number[];
  type: GgmlType;
  /** Produces the values (float32, row-major) when the tensor's turn to be written comes. */
  values: () => Float32Array;
}

const SCALAR: Record<GgufScalarType, { code: GgufValueType; bytes: number; write: (b: Buffer, v: number) => void }> = {
  uint8: { code: GgufValueType.UINT8, bytes: 1, write: (b, v) => b.writeUInt8(v) },
  int32: { code: GgufValueType.INT32, bytes: 4, write: (b, v) => b.writeInt32LE(v) },
  uint32: { code: GgufValueType.UINT32, bytes: 4, write: (b, v) => b.writeUInt32LE(v) },
  uint64: { code: GgufValueType.UINT64, bytes: 8, write: (b, v) => b.writeBigUInt64LE(BigInt(v)) },
  float32: { code: GgufValueType.FLOAT32, bytes: 4, write: (b, v) => b.writeFloatLE(v) },
};

/** Little-endian byte chunks for the header. */
class HeaderBytes {
  readonly chunks: Buffer[] = [];
  length = 0;
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  string(s: string): void {
    const bytes = Buffer.from(s, 'utf8');
    this.u64(bytes.length);
    this.push(bytes);
  }
  scalar(type: GgufScalarType, v: number): void {
    const b = Buffer.alloc(SCALAR[type].bytes);
    SCALAR[type].write(b, v);
    this.push(b);
  }
  value(key: string, v: GgufMetadataValue): void {
    switch (v.type) {
      case 'string':
        this.u32(GgufValueType.STRING);
        this.string(v.value);
        return;
      case 'bool':
        this.u32(GgufValueType.BOOL);
        this.push(Buffer.from([v.value ? 1 : 0]));
        return;
      case 'array':
        this.u32(GgufValueType.ARRAY);
        if (v.itemType === 'string') {
          this.u32(GgufValueType.STRING);
          this.u64(v.value.length);
          for (const s of v.value) this.string(s);
        } else {
          const { code, bytes, write } = SCALAR[v.itemType];
          this.u32(code);
          this.u64(v.value.length);
          const b = Buffer.alloc(bytes * v.value.length);
          for (let i = 0; i < v.value.length; i++) write(b.subarray(i * bytes), v.value[i]);
          this.push(b);
        }
        return;
      default:
        if (!Number.isFinite(v.value)) throw new Error(`GGUF metadata "${key}" is not a finite number (${v.value})`);
        this.u32(SCALAR[v.type].code);
        this.scalar(v.type, v.value);
    }
  }
}

const alignUp = (n: number) => Math.ceil(n / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;

/**
 * Write a GGUF file. `onTensor` is told each tensor as it is written (for progress). Throws (and leaves
 * no file behind) when a tensor's values do not match its shape or its row is not a whole number of blocks.
 */
export function writeGguf(
  path: string,
  metadata: Map<string, GgufMetadataValue>,
  tensors: GgufTensor[],
  onTensor?: (index: number, tensor: GgufTensor) => void,
): void {
  const header = new HeaderBytes();
  header.u32(GGUF_MAGIC);
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.size);
  for (const [key, value] of metadata) {
    header.string(key);
    header.value(key, value);
  }
  const names = new Set<string>();
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF tensor "${t.name}" is written twice`);
    names.add(t.name);
    const columns = t.shape[t.shape.length - 1];
    const rows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    let bytes: number;
    try {
      bytes = tensorBytes(t.type, columns, rows);
    } catch (err) {
      throw new Error(`GGUF tensor "${t.name}" [${t.shape}] as ${GGML_TYPE_NAME[t.type]}: ${(err as Error).message}`);
    }
    header.string(t.name);
    header.u32(t.shape.length);
    for (const dim of [...t.shape].reverse()) header.u64(dim);
    header.u32(t.type);
    header.u64(offset);
    sizes.push(bytes);
    offset = alignUp(offset + bytes);
  }
  header.push(Buffer.alloc(alignUp(header.length) - header.length));

  const temporary = `${path}.partial-${process.pid}`;
  const fd = openSync(temporary, 'w');
  try {
    for (const chunk of header.chunks) writeSync(fd, chunk);
    tensors.forEach((t, i) => {
      const values = t.values();
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (values.length !== count) throw new Error(`GGUF tensor "${t.name}" has shape [${t.shape}] but ${values.length} values`);
      const bytes = encodeTensor(t.type, values);
      if (bytes.length !== sizes[i]) throw new Error(`GGUF tensor "${t.name}": encoded ${bytes.length} bytes, expected ${sizes[i]}`);
      writeSync(fd, bytes);
      const padding = alignUp(bytes.length) - bytes.length;
      if (padding) writeSync(fd, new Uint8Array(padding));
      onTensor?.(i, t);
    });
    closeSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw err;
  }
  renameSync(temporary, path);
}
