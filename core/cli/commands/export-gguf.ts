// `grpoflow export-gguf`: a Hugging Face model folder (and optionally a PEFT adapter) to a GGUF file
// for llama.cpp, Ollama and node-llama-cpp. Plain TypeScript: no tensor library is loaded.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { GGUF_FILE_TYPE_NAMES } from '../../gguf/format.js';
import { checkFileType, exportGguf } from '../../gguf/export.js';
import { parseOptions, requireDir, UsageError, type CommandIO } from '../command.js';

export const name = 'export-gguf';
export const summary = 'Write a model (optionally with a LoRA adapter merged in) or a LoRA adapter as GGUF for llama.cpp';
export const usage = `grpoflow export-gguf --model DIR [--adapter DIR [--merge]] --type TYPE --out FILE

  --model DIR     a Hugging Face model folder (Llama, Mistral, Qwen2, Qwen3; byte-level BPE tokenizer)
  --adapter DIR   a PEFT LoRA adapter folder trained on that model:
                    with --merge, the model is written with the adapter folded into its weights;
                    without, the adapter alone is written as a GGUF LoRA adapter (type f32, f16 or bf16),
                    which llama.cpp applies on top of the model's own GGUF (llama-cli --lora FILE)
  --type TYPE     ${GGUF_FILE_TYPE_NAMES.join(' | ')}   (q4_k_m: llama.cpp's k-quant mix, q6_K on the
                  output matrix and on half of attn_v/ffn_down; rows that are not whole 256-blocks fall
                  back to q5_0/q8_0 as llama-quantize does)
  --out FILE      the GGUF file (written to FILE.partial-PID, then renamed)`;

export async function runExportGguf(argv: string[], io: CommandIO, options: { progress?: boolean } = {}): Promise<number> {
  try {
    const o = parseOptions(argv, {
      model: { type: 'string' },
      adapter: { type: 'string' },
      merge: { type: 'boolean' },
      type: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    });
    if (o.help) {
      io.out(`${usage}\n`);
      return 0;
    }
    if (!o.model) throw new UsageError('--model DIR is required');
    if (!o.type) throw new UsageError(`--type is required (${GGUF_FILE_TYPE_NAMES.join(', ')})`);
    if (!o.out) throw new UsageError('--out FILE is required');
    if (o.merge && !o.adapter) throw new UsageError('--merge needs --adapter DIR');
    let type;
    try {
      type = checkFileType(o.type, '--type');
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    requireDir(o.model, 'model');
    if (o.adapter) requireDir(o.adapter, 'adapter');
    if (!existsSync(dirname(o.out) || '.')) throw new UsageError(`--out: folder ${dirname(o.out)} does not exist`);

    const started = Date.now();
    const result = await exportGguf({
      modelDir: o.model,
      adapterDir: o.adapter,
      merge: o.merge,
      type,
      out: o.out,
      onTensor: options.progress ? (i, count, tensor) => io.err(`\r[${i + 1}/${count}] ${tensor.padEnd(40)}`) : undefined,
    });
    if (options.progress) io.err('\n');
    for (const note of result.notes) io.err(`note: ${note}\n`);
    const counts = new Map<string, number>();
    for (const t of result.tensors) counts.set(t.type, (counts.get(t.type) ?? 0) + 1);
    const mix = [...counts].map(([t, n]) => `${n} ${t}`).join(', ');
    const bytes = statSync(result.path).size;
    io.out(`wrote ${result.path}: ${(bytes / 2 ** 20).toFixed(1)} MiB, ${result.tensors.length} tensors (${mix}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return 0;
  } catch (err) {
    io.err(`grpoflow export-gguf: ${(err as Error).message.split('\n')[0]}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

export function run(argv: string[]): Promise<number> {
  return runExportGguf(
    argv,
    { out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) },
    { progress: process.stderr.isTTY },
  );
}
