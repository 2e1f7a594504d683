// TensorBoard event files (`events.out.tfevents.*`), written as TensorBoard's own reader expects them.
// No maintained npm package writes these (tfjs-node's summary writer needs libtensorflow), and the
// format is small:
// - a TFRecord stream: each record is u64 length (LE), u32 masked CRC32C of those 8 bytes, the data,
//   u32 masked CRC32C of the data;
// - each record's data is a `tensorflow.Event` protobuf; the first one carries `file_version:
//   "brain.Event:2"`, the others `summary { value { tag, simple_value } }` (what `SummaryWriter.add_scalar`
//   writes).
// Field numbers from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }

// ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table driven ----

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC32C_TABLE[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** TFRecord's masked CRC: rotate right by 15 bits and add a constant (so CRCs of CRCs stay useful). */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** One TFRecord: length, masked CRC of the length, data, masked CRC of the data. */
export function tfRecord(data: Uint8Array): Buffer {
  const out = Buffer.alloc(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

// ---- protobuf wire format: just the field types an Event with scalar summaries uses ----

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

/** Base-128 varint of a non-negative integer, or of a negative one as protobuf's int64 (two's complement, 10 bytes). */
export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const bytes: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Uint8Array.from(bytes);
}

const key = (field: number, wire: number) => varint((field << 3) | wire);

function concat(parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

function lengthDelimited(field: number, payload: Uint8Array): Uint8Array {
  return concat([key(field, WIRE_LENGTH_DELIMITED), varint(payload.length), payload]);
}

function doubleField(field: number, value: number): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return concat([key(field, WIRE_FIXED64), b]);
}

function floatField(field: number, value: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeFloatLE(value);
  return concat([key(field, WIRE_FIXED32), b]);
}

export interface ScalarEvent {
  /** Seconds since the epoch. */
  wallTime: number;
  step: number;
  /** Tag → value; TensorBoard stores simple_value as a 32-bit float. */
  scalars: Record<string, number>;
}

export const FILE_VERSION = 'brain.Event:2';

/** The first event of every file: `file_version`, which TensorBoard checks. */
export function fileVersionEvent(wallTime: number): Uint8Array {
  return concat([doubleField(1, wallTime), lengthDelimited(3, Buffer.from(FILE_VERSION, 'utf8'))]);
}

/** An Event with one Summary holding a `simple_value` per tag. */
export function scalarEvent(event: ScalarEvent): Uint8Array {
  const values = Object.entries(event.scalars).map(([tag, value]) =>
    lengthDelimited(1, concat([lengthDelimited(1, Buffer.from(tag, 'utf8')), floatField(2, value)])),
  );
  return concat([doubleField(1, event.wallTime), key(2, WIRE_VARINT), varint(Math.trunc(event.step)), lengthDelimited(5, concat(values))]);
}

/** The file name TensorBoard globs for (`*tfevents*`), unique per writer as TensorFlow names it. */
export function eventFileName(wallTimeSeconds: number, host: string, pid: number): string {
  return `events.out.tfevents.${Math.floor(wallTimeSeconds)}.${host}.${pid}.0`;
}
