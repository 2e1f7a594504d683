// The llama.cpp engine's options, as a graph gives them (`rollout.generate: {engine: llama.cpp,
// engine_options: {...}}`): checked here so a typo is an error naming the key, not a silent default.
import { availableParallelism } from 'node:os';
import { z } from 'zod';

export const LLAMA_CPP_GPUS = ['auto', 'cuda', 'vulkan', 'metal'] as const;

export const llamaCppOptionsSchema = z.strictObject({
  gpu: z
    .union([z.enum(LLAMA_CPP_GPUS), z.literal(false)])
    .default('auto')
    .describe("node-llama-cpp's prebuilt binary: auto (the best one installed and usable), cuda, vulkan, metal, or false (CPU). Nothing is compiled or downloaded."),
  gguf_type: z
    .enum(['f32', 'f16', 'q8_0'])
    .optional()
    .describe('The type the base model is written in once per run: default f16 on a GPU device, f32 without one (exact); q8_0 for faster rollouts.'),
  threads: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("CPU threads per llama.cpp context; default all cores but one (the trainer's). More threads than idle cores make ggml's spinning workers crawl."),
  max_context: z.number().int().min(16).optional().describe("Largest context per sequence in tokens (default the model's max_position_embeddings)."),
});

export type LlamaCppOptions = z.output<typeof llamaCppOptionsSchema>;

/** The options, or an error saying which key is wrong and where. */
export function parseLlamaCppOptions(raw: Record<string, unknown> | undefined, where: string): LlamaCppOptions {
  const parsed = llamaCppOptionsSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(options)'}: ${i.message}`).join('; ');
    throw new Error(`${where}: engine_options for llama.cpp: ${issues}`);
  }
  return parsed.data;
}

/** The default thread count: every core but one, which the trainer on the main thread uses. */
export function defaultThreads(): number {
  return Math.max(1, availableParallelism() - 1);
}
