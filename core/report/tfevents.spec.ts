import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Subject } from 'rxjs';
import { afterAll, describe, expect, it } from 'vitest';
import type { MetricRecord } from '../ports.js';
import { writeTensorBoardEvents } from '../runtime/writers.js';
import { crc32c, maskedCrc32c, scalarEvent, tfRecord, varint } from './tfevents.js';

const READER = path.resolve(import.meta.dirname, '../../test/tools/read_tfevents.py');
const dir = mkdtempSync(path.join(os.tmpdir(), 'tfevents-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface DecodedEvent {
  wall_time: number;
  step?: number;
  file_version?: string;
  scalars?: Record<string, string>;
}

/** The reader prints floats with Python's repr (`nan`, `inf`, `1.0`). */
function pythonFloat(text: string): number {
  return text === 'nan' ? NaN : text === 'inf' ? Infinity : text === '-inf' ? -Infinity : Number(text);
}

async function writeSample(): Promise<{ file: string; records: MetricRecord[] }> {
  const metrics$ = new Subject<MetricRecord>();
  let t = 1_700_000_000_000;
  const writer = writeTensorBoardEvents(metrics$, dir, () => (t += 250));
  const records: MetricRecord[] = [
    { step: 0, node: 'eval', values: { 'eval/accuracy': 0.1875, 'eval/pass@4': 0.625 } },
    { step: 1, node: 'train', values: { loss: 0.0058, kl: 0, learning_rate: 5e-4, grad_norm: 0.53, 'rewards/format/mean': 2.859375 } },
    { step: 2, node: 'train', values: { loss: -0.026, kl: NaN, learning_rate: 4.9e-4, grad_norm: Infinity } },
    { step: 300, node: 'rollout', values: { 'rollout/tokens_per_s': 495.79123, busy: 1 } },
  ];
  for (const r of records) metrics$.next(r);
  await writer.close();
  return { file: writer.file, records };
}

describe('TensorBoard event files', () => {
  it('computes CRC32C as published (RFC 3720 B.4 and the "123456789" check value)', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    // The mask: rotate right 15, add 0xa282ead8 (mod 2^32).
    const crc = crc32c(Buffer.from('123456789'));
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe((((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0);
  });

  it('encodes varints as protobuf does', () => {
    expect([...varint(0)]).toEqual([0]);
    expect([...varint(1)]).toEqual([1]);
    expect([...varint(150)]).toEqual([0x96, 0x01]); // the protobuf encoding guide's example
    expect([...varint(300)]).toEqual([0xac, 0x02]);
    expect([...varint(2 ** 40)]).toEqual([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    expect([...varint(-1)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });

  it('frames a record as length, masked CRC of the length, data, masked CRC of the data', () => {
    const data = scalarEvent({ wallTime: 1, step: 3, scalars: { a: 1 } });
    const record = tfRecord(data);
    expect(record.length).toBe(data.length + 16);
    expect(record.readBigUInt64LE(0)).toBe(BigInt(data.length));
    expect(record.readUInt32LE(8)).toBe(maskedCrc32c(record.subarray(0, 8)));
    expect(record.subarray(12, 12 + data.length)).toEqual(Buffer.from(data));
    expect(record.readUInt32LE(12 + data.length)).toBe(maskedCrc32c(data));
  });

  it('writes every metric as NODE/NAME, file_version first, readable by an independent decoder', async () => {
    const { file, records } = await writeSample();
    expect(path.basename(file)).toMatch(/^events\.out\.tfevents\.\d+\..+\.\d+\.0$/);
    expect(readdirSync(dir)).toContain(path.basename(file));
    const events = JSON.parse(execFileSync('python3', [READER, file], { encoding: 'utf8' })) as DecodedEvent[];
    expect(events[0].file_version).toBe('brain.Event:2');
    expect(events[0].scalars).toBeUndefined();
    expect(events).toHaveLength(records.length + 1);
    records.forEach((record, i) => {
      const event = events[i + 1];
      expect(event.step).toBe(record.step);
      expect(event.wall_time).toBe(1_700_000_000 + 0.25 * (i + 2));
      const tags = Object.keys(event.scalars!);
      expect(tags).toEqual(Object.keys(record.values).map((name) => `${record.node}/${name}`));
      for (const [name, value] of Object.entries(record.values)) {
        expect(pythonFloat(event.scalars![`${record.node}/${name}`])).toBe(Math.fround(value));
      }
    });
  });

  // TensorBoard's own reader, where the Python that runs the tests has it (TENSORBOARD_PYTHON names
  // another interpreter, e.g. a virtual environment with `tensorboard` installed).
  const tensorboardPython = process.env.TENSORBOARD_PYTHON ?? 'python3';
  const hasTensorBoard = spawnSync(tensorboardPython, ['-c', 'import tensorboard'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasTensorBoard)('reads back with TensorBoard’s EventFileLoader', async () => {
    const { file, records } = await writeSample();
    const events = JSON.parse(execFileSync(tensorboardPython, [READER, '--tensorboard', file], { encoding: 'utf8' })) as DecodedEvent[];
    expect(events[0].file_version).toBe('brain.Event:2');
    expect(events.slice(1).map((e) => e.step)).toEqual(records.map((r) => r.step));
    expect(pythonFloat(events[2].scalars!['train/learning_rate'])).toBe(Math.fround(5e-4));
    expect(pythonFloat(events[3].scalars!['train/grad_norm'])).toBe(Infinity);
  });
});
