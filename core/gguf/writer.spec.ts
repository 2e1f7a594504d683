import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gguf as parseGguf } from '@huggingface/gguf';
import { GgmlType } from './format.js';
import { gguf, writeGguf } from './writer.js';

const dir = mkdtempSync(join(tmpdir(), 'grpoflow-gguf-writer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeGguf', () => {
  it('writes a file @huggingface/gguf parses: every value type, tensor shapes reversed, offsets aligned', async () => {
    const path = join(dir, 'small.gguf');
    const written = new Map([
      ['general.architecture', gguf.string('llama')],
      ['test.u32', gguf.u32(7)],
      ['test.f32', gguf.f32(0.5)],
      ['test.bool', gguf.bool(true)],
      ['test.strings', gguf.strings(['a', 'é b', ''])],
      ['test.i32s', gguf.i32s([1, -2, 3])],
    ]);
    writeGguf(path, written, [
      { name: 'a', shape: [3, 32], type: GgmlType.Q8_0, values: () => new Float32Array(96).fill(1) },
      { name: 'b', shape: [5], type: GgmlType.F32, values: () => new Float32Array(5) },
      { name: 'c', shape: [2, 256], type: GgmlType.Q4_K, values: () => new Float32Array(512) },
    ]);
    const { metadata, tensorInfos, tensorDataOffset } = await parseGguf(path, { allowLocalFile: true });
    const read = metadata as unknown as Record<string, unknown>;
    expect(read.version).toBe(3);
    expect(read['test.u32']).toBe(7);
    expect(read['test.f32']).toBe(0.5);
    expect(read['test.bool']).toBe(true);
    expect(read['test.strings']).toEqual(['a', 'é b', '']);
    expect(read['test.i32s']).toEqual([1, -2, 3]);
    expect(tensorInfos.map((t) => [t.name, t.shape.map(Number), t.dtype, Number(t.offset)])).toEqual([
      ['a', [32, 3], GgmlType.Q8_0, 0],
      ['b', [5], GgmlType.F32, 128], // 3 × 34 = 102 bytes, padded to 128
      ['c', [256, 2], GgmlType.Q4_K, 160],
    ]);
    expect(Number(tensorDataOffset) % 32).toBe(0);
  });

  it('leaves no file behind when a tensor does not fit its type or its shape', () => {
    const path = join(dir, 'bad.gguf');
    expect(() => writeGguf(path, new Map(), [{ name: 'x', shape: [2, 100], type: GgmlType.Q4_0, values: () => new Float32Array(200) }])).toThrow(/"x" \[2,100\] as Q4_0: a row of 100 values/);
    expect(() => writeGguf(path, new Map(), [{ name: 'y', shape: [2, 32], type: GgmlType.F32, values: () => new Float32Array(3) }])).toThrow(/"y" has shape \[2,32\] but 3 values/);
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('bad.gguf'))).toEqual([]);
  });
});
