import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonFile } from './json-file.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'grpo-json-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('readJsonFile', () => {
  it('names the file and the line:col of a syntax error', () => {
    const file = path.join(root, 'config.json');
    writeFileSync(file, '{\n  "hidden_size": 64,\n  "vocab_size": 10,,\n}\n');
    expect(() => readJsonFile(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3:20: not valid JSON: `));
  });

  it('names a missing file', () => {
    const file = path.join(root, 'absent.json');
    expect(() => readJsonFile(file)).toThrow(`${file}: no such file or folder (ENOENT)`);
  });

  it('returns the parsed value', () => {
    const file = path.join(root, 'ok.json');
    writeFileSync(file, '{"a": [1, 2]}');
    expect(readJsonFile(file)).toEqual({ a: [1, 2] });
  });
});
