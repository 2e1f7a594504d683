// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then raw
// little-endian data. Every float type is read into float32; writing supports f32, bf16 and f16.
import { closeSync, fstatSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export type SafetensorsWriteDtype = 'float32' | 'bfloat16' | 'float16';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const BYTES_PER_ELEMENT: Record<string, number> = { F32: 4, F16: 2, BF16: 2 };
/** Bytes read from disk per call while decoding one tensor: bounds the raw copy held beside its float32 values. */
const READ_CHUNK_BYTES = 64 * 1024 * 1024;

/**
 * One safetensors file read through a file handle: the header on open, then each tensor from its own
 * offset when asked for (never the whole file in one buffer: shards of real checkpoints are ~5 GB, past
 * what one Buffer holds, and a whole model at float32 may not fit in host memory). Close it when done.
 */
export class SafetensorsFile {
  readonly header: Readonly<Record<string, HeaderEntry>>;
  private readonly dataStart: number;
  private readonly size: number;
  private fd: number | undefined;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.size = fstatSync(this.fd).size;
      const { header, dataStart } = this.parseHeader();
      this.header = header;
      this.dataStart = dataStart;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  get names(): string[] {
    return Object.keys(this.header);
  }

  /** Reads one tensor, converting it to float32 (bf16 and f16 exactly) chunk by chunk. */
  read(name: string): HostTensor {
    const entry = this.header[name];
    if (!entry) throw new Error(`${this.path}: no tensor "${name}"`);
    const width = BYTES_PER_ELEMENT[entry.dtype];
    if (width === undefined) {
      throw new Error(`${this.path}: tensor "${name}" has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`);
    }
    const count = entry.shape.reduce((a, b) => a * b, 1);
    const [begin, end] = entry.data_offsets;
    if (end - begin !== count * width) {
      throw new Error(`${this.path}: tensor "${name}" of shape [${entry.shape}] (${entry.dtype}) needs ${count * width} bytes but its offsets span ${end - begin}`);
    }
    if (this.dataStart + end > this.size) throw new Error(`${this.path}: tensor "${name}" runs past the end of the file (truncated?)`);
    const data = new Float32Array(count);
    const elementsPerChunk = Math.max(1, Math.floor(READ_CHUNK_BYTES / width));
    const chunk = Buffer.allocUnsafe(Math.min(count, elementsPerChunk) * width);
    for (let first = 0; first < count; first += elementsPerChunk) {
      const n = Math.min(elementsPerChunk, count - first);
      this.readAt(chunk, n * width, this.dataStart + begin + first * width);
      decodeInto(new DataView(chunk.buffer, chunk.byteOffset, n * width), entry.dtype, data, first, n);
    }
    return { shape: entry.shape, data };
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private readAt(target: Buffer, length: number, position: number): void {
    if (this.fd === undefined) throw new Error(`${this.path}: read after close`);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, target, done, length - done, position + done);
      if (n === 0) throw new Error(`${this.path}: unexpected end of file at byte ${position + done} (truncated?)`);
      done += n;
    }
  }

  private parseHeader(): { header: Record<string, HeaderEntry>; dataStart: number } {
    if (this.size < 8) throw new Error(`${this.path}: not a safetensors file (shorter than 8 bytes)`);
    const lengthBytes = Buffer.alloc(8);
    this.readAt(lengthBytes, 8, 0);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (8 + headerLength > this.size) throw new Error(`${this.path}: not a safetensors file (header length ${headerLength} exceeds file size)`);
    const headerBytes = Buffer.alloc(headerLength);
    this.readAt(headerBytes, headerLength, 8);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(headerBytes.toString('utf8'));
    } catch (err) {
      throw new Error(`${this.path}: safetensors header is not valid JSON (${(err as Error).message})`);
    }
    delete parsed.__metadata__;
    return { header: parsed as Record<string, HeaderEntry>, dataStart: 8 + headerLength };
  }
}

/** Opens `path`, hands it to `use`, and closes it however `use` ends. */
export function withSafetensorsFile<T>(path: string, use: (file: SafetensorsFile) => T): T {
  const file = new SafetensorsFile(path);
  try {
    return use(file);
  } finally {
    file.close();
  }
}

/** The tensor names, dtypes and shapes of a safetensors file (reads the header only). */
export function readSafetensorsHeader(path: string): Record<string, { dtype: string; shape: number[] }> {
  return withSafetensorsFile(path, (file) => {
    const out: Record<string, { dtype: string; shape: number[] }> = {};
    for (const [name, e] of Object.entries(file.header)) out[name] = { dtype: e.dtype, shape: e.shape };
    return out;
  });
}

/** Read every tensor of a safetensors file into float32 (for small files: adapters, tests). */
export function readSafetensors(path: string): Map<string, HostTensor> {
  return withSafetensorsFile(path, (file) => new Map(file.names.map((name) => [name, file.read(name)])));
}

/** Decodes `count` little-endian values of `dtype` from `view` into `out[first ...]`. */
function decodeInto(view: DataView, dtype: string, out: Float32Array, first: number, count: number): void {
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[first + i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'BF16') {
    // bf16 is the top half of a float32: the conversion is exact.
    const bits = new Uint32Array(out.buffer, out.byteOffset);
    for (let i = 0; i < count; i++) bits[first + i] = view.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < count; i++) out[first + i] = halfToFloat(view.getUint16(i * 2, true));
  }
}

/** IEEE half bits → float (exact). */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, rounding to nearest even (as torch does). */
export function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return (bits >>> 16) | 0x40; // keep NaN a NaN
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → IEEE half bits, rounding to nearest even. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half; // a carry into the exponent is the correct rounding (up to infinity)
}

/** Write tensors to a safetensors file (atomically: a temporary file, then a rename). */
export function writeSafetensors(
  path: string,
  tensors: Record<string, HostTensor>,
  options: { dtype?: SafetensorsWriteDtype; metadata?: Record<string, string> } = {},
): void {
  const dtype = options.dtype ?? 'float32';
  const tag = dtype === 'float32' ? 'F32' : dtype === 'bfloat16' ? 'BF16' : 'F16';
  const width = BYTES_PER_ELEMENT[tag];
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: options.metadata ?? { format: 'pt' } };
  let offset = 0;
  for (const name of names) {
    const { shape, data } = tensors[name];
    const count = shape.reduce((a, b) => a * b, 1);
    if (count !== data.length) throw new Error(`writeSafetensors: tensor "${name}" has shape [${shape}] but ${data.length} values`);
    header[name] = { dtype: tag, shape, data_offsets: [offset, offset + count * width] };
    offset += count * width;
  }
  let headerText = JSON.stringify(header);
  headerText += ' '.repeat((8 - (headerText.length % 8)) % 8); // the data starts 8-byte aligned
  const headerBytes = Buffer.from(headerText, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const data = tensors[name].data;
    if (tag === 'F32') {
      for (let i = 0; i < data.length; i++, pos += 4) out.writeFloatLE(data[i], pos);
    } else {
      const convert = tag === 'BF16' ? floatToBf16 : floatToHalf;
      for (let i = 0; i < data.length; i++, pos += 2) out.writeUInt16LE(convert(data[i]), pos);
    }
  }
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, out);
  renameSync(temporary, path);
}
