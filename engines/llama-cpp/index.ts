// The llama.cpp engine as the core plugin registers it: the rollout engine `llama.cpp`, on the main
// thread (its compute runs on llama.cpp's own threads, so with `overlap` it samples while the trainer
// works). Graphs pick it with `rollout.generate: {engine: llama.cpp, engine_options: {...}}`.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RolloutEngineDefinition } from '../../core/engine/interfaces.js';
import { parseLlamaCppOptions } from './options.js';
import { LlamaCppRolloutEngine, type LlamaCppModelSource } from './rollout-engine.js';

export const llamaCppRolloutEngine: RolloutEngineDefinition = {
  name: 'llama.cpp',
  description:
    "llama.cpp through node-llama-cpp's prebuilt CPU, CUDA, Vulkan or Metal binaries: the base written once as GGUF, each policy's LoRA adapter as an adapter GGUF; options gpu, gguf_type, threads, max_context.",
  threads: ['main'],
  computesOffThread: true,
  async create({ model, tokenizer, options, workDir, where }) {
    const parsed = parseLlamaCppOptions(options, where ?? 'rollout engine llama.cpp');
    return LlamaCppRolloutEngine.create({
      source: model as LlamaCppModelSource,
      tokenizer,
      options: parsed,
      workDir: workDir ?? mkdtempSync(join(tmpdir(), 'grpoflow-llama-cpp-')),
    });
  },
};
