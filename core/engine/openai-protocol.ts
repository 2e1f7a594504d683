// The OpenAI-compatible completions protocol as vLLM serves it (legacy `/v1/completions`, with vLLM's
// extensions: `top_k`, `min_p`, `stop_token_ids`, `prompt_logprobs`, `return_tokens_as_token_ids`, and the
// runtime LoRA endpoints). Shared by `grpoflow serve` (which answers it) and the `openai` rollout engine
// (which asks it), so both read the same shapes. Plain data; no tensor library.
import { z } from 'zod';

/** vLLM's spelling of a token when `return_tokens_as_token_ids` is set: `token_id:123`. */
export const TOKEN_ID_PREFIX = 'token_id:';

export function tokenIdString(id: number): string {
  return `${TOKEN_ID_PREFIX}${id}`;
}

/** The id in `token_id:N`, or undefined when `token` is not spelled that way. */
export function parseTokenIdString(token: unknown): number | undefined {
  if (typeof token !== 'string' || !token.startsWith(TOKEN_ID_PREFIX)) return undefined;
  const digits = token.slice(TOKEN_ID_PREFIX.length);
  return /^\d+$/.test(digits) ? Number(digits) : undefined;
}

const stopSchema = z.union([z.string(), z.array(z.string())]).nullish();

/** The `/v1/completions` request fields we read (others, as vLLM does, are accepted and ignored). */
export const completionRequestSchema = z.looseObject({
  model: z.string().min(1),
  prompt: z.union([z.string().min(1), z.array(z.number().int().min(0)).min(1)]),
  n: z.number().int().min(1).default(1),
  max_tokens: z.number().int().min(0).nullish(),
  temperature: z.number().min(0).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  seed: z.number().int().nullish(),
  stop: stopSchema,
  stop_token_ids: z.array(z.number().int().min(0)).nullish(),
  logprobs: z.number().int().min(0).nullish(),
  prompt_logprobs: z.number().int().min(0).nullish(),
  echo: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  return_tokens_as_token_ids: z.boolean().nullish(),
});

export type CompletionRequest = z.input<typeof completionRequestSchema>;

/** One prompt position's log-prob as vLLM reports `prompt_logprobs`: keyed by token id (the first position is null). */
export type PromptLogprobEntry = Record<string, { logprob: number; rank?: number | null; decoded_token?: string }> | null;

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[] | null;
  text_offset: number[];
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  /** `stop` on an eos/stop token or a stop string, `length` at max_tokens. */
  finish_reason: 'stop' | 'length' | null;
  /** vLLM: the stop string or stop token id that ended it; null for the model's eos (or length). */
  stop_reason: string | number | null;
  prompt_logprobs?: PromptLogprobEntry[] | null;
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: CompletionChoice[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

/** vLLM's `POST /v1/load_lora_adapter` body. */
export const loadLoraRequestSchema = z.looseObject({ lora_name: z.string().min(1), lora_path: z.string().min(1) });
/** vLLM's `POST /v1/unload_lora_adapter` body. */
export const unloadLoraRequestSchema = z.looseObject({ lora_name: z.string().min(1) });

export interface ModelCard {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** The base model's id for a LoRA adapter (as vLLM lists them); null for the base model. */
  parent: string | null;
  root: string;
}
