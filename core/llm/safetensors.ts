// Reading and writing the safetensors format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}}, then raw
// little-endian data. Every float type is read into float32; writing supports f32, bf16 and f16.
import { closeSync, fstatSync, openSync, readFileSync, readSync, writeFileSync, renameSync } from 'node:fs';

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

/** The tensor names, dtypes and shapes of a safetensors file (without reading the data). */
export function readSafetensorsHeader(path: string): Record<string, { dtype: string; shape: number[] }> {
  const { header } = parseHeader(readFileSync(path), path);
  const out: Record<string, { dtype: string; shape: number[] }> = {};
  for (const [name, e] of Object.entries(header)) out[name] = { dtype: e.dtype, shape: e.shape };
  return out;
}

/** Read every tensor of a safetensors file into float32. */
export function readSafetensors(path: string): Map<string, HostTensor> {
  const bytes = readFileSync(path);
  const { header, dataStart } = parseHeader(bytes, path);
  const out = new Map<string, HostTensor>();
  for (const [name, entry] of Object.entries(header)) {
    const [begin, end] = checkEntry(name, entry, path);
    if (dataStart + end > bytes.length) throw new Error(`${path}: tensor "${name}" runs past the end of the file (truncated?)`);
    const view = new DataView(bytes.buffer, bytes.byteOffset + dataStart + begin, end - begin);
    out.set(name, { shape: entry.shape, data: decode(view, entry.dtype, (end - begin) / BYTES_PER_ELEMENT[entry.dtype]) });
  }
  return out;
}

/** A safetensors file opened for reading one tensor at a time (for files too large to hold whole). */
export interface SafetensorsReader {
  readonly path: string;
  /** Tensor names with their stored dtype and shape. */
  readonly tensors: Map<string, { dtype: string; shape: number[] }>;
  /** Read one tensor into float32. */
  read(name: string): HostTensor;
  close(): void;
}

export function openSafetensors(path: string): SafetensorsReader {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const lengthBytes = Buffer.alloc(8);
    if (size < 8 || readSync(fd, lengthBytes, 0, 8, 0) !== 8) throw new Error(`${path}: not a safetensors file (shorter than 8 bytes)`);
    const headerLength = Number(lengthBytes.readBigUInt64LE(0));
    if (8 + headerLength > size) throw new Error(`${path}: not a safetensors file (header length ${headerLength} exceeds file size)`);
    const headerBytes = Buffer.alloc(8 + headerLength);
    readSync(fd, headerBytes, 0, headerBytes.length, 0);
    const { header, dataStart } = parseHeader(headerBytes, path);
    const tensors = new Map(Object.entries(header).map(([name, e]) => [name, { dtype: e.dtype, shape: e.shape }]));
    return {
      path,
      tensors,
      read(name) {
        const entry = header[name];
        if (!entry) throw new Error(`${path}: no tensor "${name}"`);
        const [begin, end] = checkEntry(name, entry, path);
        if (dataStart + end > size) throw new Error(`${path}: tensor "${name}" runs past the end of the file (truncated?)`);
        const bytes = Buffer.alloc(end - begin);
        readSync(fd, bytes, 0, bytes.length, dataStart + begin);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
        return { shape: entry.shape, data: decode(view, entry.dtype, bytes.length / BYTES_PER_ELEMENT[entry.dtype]) };
      },
      close: () => closeSync(fd),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** A header entry's byte range, after checking its dtype is supported and its size matches its shape. */
function checkEntry(name: string, entry: HeaderEntry, path: string): [number, number] {
  const width = BYTES_PER_ELEMENT[entry.dtype];
  if (width === undefined) {
    throw new Error(`${path}: tensor "${name}" has dtype ${entry.dtype}; only F32, F16 and BF16 are supported`);
  }
  const count = entry.shape.reduce((a, b) => a * b, 1);
  const [begin, end] = entry.data_offsets;
  if (end - begin !== count * width) {
    throw new Error(`${path}: tensor "${name}" of shape [${entry.shape}] (${entry.dtype}) needs ${count * width} bytes but its offsets span ${end - begin}`);
  }
  return [begin, end];
}

function parseHeader(bytes: Buffer, path: string): { header: Record<string, HeaderEntry>; dataStart: number } {
  if (bytes.length < 8) throw new Error(`${path}: not a safetensors file (shorter than 8 bytes)`);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  if (8 + headerLength > bytes.length) throw new Error(`${path}: not a safetensors file (header length ${headerLength} exceeds file size)`);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  } catch (err) {
    throw new Error(`${path}: safetensors header is not valid JSON (${(err as Error).message})`);
  }
  delete parsed.__metadata__;
  return { header: parsed as Record<string, HeaderEntry>, dataStart: 8 + headerLength };
}

function decode(view: DataView, dtype: string, count: number): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true);
  } else if (dtype === 'BF16') {
    // bf16 is the top half of a float32: the conversion is exact.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  } else {
    for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
  }
  return out;
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
