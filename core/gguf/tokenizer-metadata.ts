// The tokenizer as GGUF metadata (`tokenizer.ggml.*`), from a Hugging Face byte-level BPE tokenizer.json:
// the keys llama.cpp's converter writes for gpt2-style vocabularies (Llama 3, Qwen2/3, SmolLM, ...).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatTemplate } from '../llm/chat-template.js';
import { Tokenizer } from '../llm/tokenizer.js';
import { gguf, type GgufMetadataValue } from './writer.js';

/** llama.cpp's token types (`enum llama_token_type`). */
const TOKEN_TYPE = { normal: 1, control: 3, userDefined: 4, unused: 5 } as const;

/**
 * The pre-tokenizer split patterns llama.cpp knows by name (its converter recognises them by hashing how
 * they tokenize a test text; we recognise the regex itself). `ByteLevel` with its own regex is GPT-2's.
 */
const PRE_TOKENIZER_PATTERNS: Record<string, string> = {
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'llama-bpe',
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+": 'qwen2',
};

type PreTokenizer = { type?: string; pattern?: { Regex?: string }; pretokenizers?: PreTokenizer[]; use_regex?: boolean; individual_digits?: boolean };

/** llama.cpp's name for the tokenizer's pre-tokenizer, or an error naming what it is. */
export function preTokenizerType(tokenizerJson: Record<string, unknown>, where: string): string {
  const pre = tokenizerJson.pre_tokenizer as PreTokenizer | null | undefined;
  const steps = !pre ? [] : pre.type === 'Sequence' ? (pre.pretokenizers ?? []) : [pre];
  const split = steps.find((s) => s.type === 'Split');
  if (split?.pattern?.Regex !== undefined) {
    const known = PRE_TOKENIZER_PATTERNS[split.pattern.Regex];
    if (known) return known;
    throw new Error(`${where}: pre-tokenizer split pattern ${JSON.stringify(split.pattern.Regex)} is not one llama.cpp knows by name (supported: Llama 3's, Qwen2's, GPT-2's ByteLevel, SmolLM's)`);
  }
  const byteLevel = steps.find((s) => s.type === 'ByteLevel');
  if (byteLevel && byteLevel.use_regex !== false) {
    if (steps.some((s) => s.type === 'Digits' && s.individual_digits)) return 'smollm';
    if (steps.length === 1) return 'gpt-2';
  }
  // Byte-level with no splitting and no merges (models/arith-tiny): every byte is its own token, so any
  // split gives the same ids, and llama.cpp's default split is exact.
  const model = tokenizerJson.model as { merges?: unknown[] } | undefined;
  if (byteLevel && byteLevel.use_regex === false && steps.length === 1 && (model?.merges ?? []).length === 0) return 'default';
  throw new Error(`${where}: pre-tokenizer ${JSON.stringify(pre)} is not supported for GGUF export (supported: Llama 3's, Qwen2's, GPT-2's ByteLevel, SmolLM's)`);
}

/** Whether the tokenizer puts bos before a text (tokenizer_config's add_bos_token, else its post-processor). */
function addsBos(tokenizer: Tokenizer): boolean {
  const config = tokenizer.source.tokenizerConfig;
  if (typeof config.add_bos_token === 'boolean') return config.add_bos_token;
  if (tokenizer.bosTokenId === undefined) return false;
  return tokenizer.encode('a', { addSpecialTokens: true })[0] === tokenizer.bosTokenId;
}

/**
 * `tokenizer.ggml.*` metadata and `tokenizer.chat_template` for a model folder. The vocabulary is padded
 * to `vocabSize` (the embedding's row count) with unused `[PAD{id}]` tokens, as llama.cpp's converter does.
 * `chatTemplate` replaces the folder's own template.
 */
export async function tokenizerMetadata(dir: string, vocabSize: number, chatTemplate?: string): Promise<Map<string, GgufMetadataValue>> {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path)) throw new Error(`${dir}: missing tokenizer.json (GGUF export needs the tokenizer)`);
  const tokenizerJson = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const model = tokenizerJson.model as { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean };
  if (model?.type !== 'BPE') throw new Error(`${path}: tokenizer model ${JSON.stringify(model?.type)} is not supported for GGUF export (only byte-level BPE)`);
  if (model.byte_fallback) throw new Error(`${path}: BPE with byte_fallback (SentencePiece-style) is not supported for GGUF export`);
  const pre = preTokenizerType(tokenizerJson, path);
  const tokenizer = await Tokenizer.fromDir(dir);

  const tokens: (string | undefined)[] = new Array(vocabSize);
  const types = new Int32Array(vocabSize).fill(TOKEN_TYPE.normal);
  const place = (token: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
      throw new Error(`${path}: token ${JSON.stringify(token)} has id ${id}, outside the model's vocabulary of ${vocabSize} (config.json vocab_size)`);
    }
    tokens[id] = token;
  };
  for (const [token, id] of Object.entries(model.vocab ?? {})) place(token, id);
  for (const added of (tokenizerJson.added_tokens ?? []) as { id: number; content: string; special?: boolean }[]) {
    place(added.content, added.id);
    types[added.id] = added.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  for (let id = 0; id < vocabSize; id++) {
    if (tokens[id] === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = TOKEN_TYPE.unused;
    }
  }
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(' ') : m));

  const out = new Map<string, GgufMetadataValue>([
    ['tokenizer.ggml.model', gguf.string('gpt2')],
    ['tokenizer.ggml.pre', gguf.string(pre)],
    ['tokenizer.ggml.tokens', gguf.strings(tokens as string[])],
    ['tokenizer.ggml.token_type', gguf.i32s(types)],
    ['tokenizer.ggml.merges', gguf.strings(merges)],
  ]);
  if (tokenizer.bosTokenId !== undefined) out.set('tokenizer.ggml.bos_token_id', gguf.u32(tokenizer.bosTokenId));
  if (tokenizer.eosTokenId !== undefined) out.set('tokenizer.ggml.eos_token_id', gguf.u32(tokenizer.eosTokenId));
  if (tokenizer.padTokenId !== undefined) out.set('tokenizer.ggml.padding_token_id', gguf.u32(tokenizer.padTokenId));
  out.set('tokenizer.ggml.add_bos_token', gguf.bool(addsBos(tokenizer)));
  const template = chatTemplate ?? (await chatTemplateSource(dir));
  if (template !== undefined) out.set('tokenizer.chat_template', gguf.string(template));
  return out;
}

async function chatTemplateSource(dir: string): Promise<string | undefined> {
  const hasTemplate =
    existsSync(join(dir, 'chat_template.jinja')) ||
    (existsSync(join(dir, 'tokenizer_config.json')) && 'chat_template' in JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  return hasTemplate ? (await ChatTemplate.fromDir(dir)).source : undefined;
}
