import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runExportGguf } from '../../core/cli/commands/export-gguf.js';

const model = 'test/fixtures/llama-tiny';
const tmp = mkdtempSync(join(tmpdir(), 'grpoflow-export-gguf-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runExportGguf(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe('grpoflow export-gguf', () => {
  it('writes the model and says what it wrote; the adapter alone as a LoRA GGUF', async () => {
    const q = await cli(['--model', model, '--type', 'q4_k_m', '--out', join(tmp, 'm.gguf')]);
    expect(q.err).toBe('');
    expect(q.code).toBe(0);
    // llama-tiny's rows of 64 values are not whole q4_K blocks: llama-quantize's fallbacks (q5_0, and q8_0 for the output).
    expect(q.out).toMatch(/wrote .*m\.gguf: [\d.]+ MiB, 21 tensors \(13 Q5_0, 5 F32, 3 Q8_0\)/);
    const a = await cli(['--model', model, '--adapter', `${model}/adapter`, '--type', 'f16', '--out', join(tmp, 'a.gguf')]);
    expect(a.code).toBe(0);
    expect(a.out).toMatch(/28 tensors \(28 F16\)/);
  });

  it.each([
    [['--type', 'f16', '--out', 'x.gguf'], 2, /--model DIR is required/],
    [['--model', model, '--out', 'x.gguf'], 2, /--type is required \(f32, f16, bf16, q8_0, q4_0, q4_k_m\)/],
    [['--model', model, '--type', 'q3_k', '--out', 'x.gguf'], 2, /--type: unknown GGUF type "q3_k"/],
    [['--model', model, '--type', 'f16'], 2, /--out FILE is required/],
    [['--model', model, '--merge', '--type', 'f16', '--out', 'x.gguf'], 2, /--merge needs --adapter DIR/],
    [['--model', model, '--type', 'f16', '--out', 'no/such/dir/x.gguf'], 2, /--out: folder no\/such\/dir does not exist/],
    [['--model', 'no-such-model', '--type', 'f16', '--out', 'x.gguf'], 1, /--model folder no-such-model does not exist/],
    [['--model', 'test/fixtures', '--type', 'f16', '--out', 'x.gguf'], 1, /test\/fixtures: missing config.json/],
    [['--model', model, '--adapter', `${model}/adapter`, '--type', 'q8_0', '--out', 'x.gguf'], 1, /adapter GGUF is written as f32, f16, bf16, not q8_0; to quantize, merge/],
    [['--model', model, '--adapter', model, '--merge', '--type', 'q8_0', '--out', 'x.gguf'], 1, /missing adapter_config.json/],
  ])('%j exits %i with a clear error', async (argv, code, message) => {
    const outIndex = argv.indexOf('--out');
    const args = outIndex >= 0 && argv[outIndex + 1] === 'x.gguf' ? argv.map((v, i) => (i === outIndex + 1 ? join(tmp, 'x.gguf') : v)) : argv;
    const result = await cli(args);
    expect(result.code).toBe(code);
    expect(result.err).toMatch(message);
    expect(result.err.split('\n').filter(Boolean)).toHaveLength(1); // one line, no stack
    expect(existsSync(join(tmp, 'x.gguf'))).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes('partial'))).toEqual([]);
  });
});
