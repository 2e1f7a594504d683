// The tokenizer and chat template of the project's from-scratch models: byte-level (ids 0–255 are the
// bytes) plus six special tokens, and a compact template (templates/byte-chat.jinja) with one marker per
// turn and no whitespace between turns, since every byte costs a tiny model a position.
import { readFileSync } from 'node:fs';
import { ChatTemplate } from './chat-template.js';
import { Tokenizer, buildByteLevelTokenizerJson } from './tokenizer.js';

export const BYTE_CHAT_SPECIAL_TOKENS = ['<|begin_of_text|>', '<|system|>', '<|user|>', '<|assistant|>', '<|end|>', '<|pad|>'] as const;
export const BYTE_CHAT_BOS = '<|begin_of_text|>';
/** Closes every turn; generation stops on it. */
export const BYTE_CHAT_EOS = '<|end|>';
export const BYTE_CHAT_PAD = '<|pad|>';
export const BYTE_CHAT_VOCAB_SIZE = 256 + BYTE_CHAT_SPECIAL_TOKENS.length;

const idOf = (token: string) => 256 + BYTE_CHAT_SPECIAL_TOKENS.indexOf(token as (typeof BYTE_CHAT_SPECIAL_TOKENS)[number]);
export const BYTE_CHAT_BOS_ID = idOf(BYTE_CHAT_BOS);
export const BYTE_CHAT_EOS_ID = idOf(BYTE_CHAT_EOS);
export const BYTE_CHAT_PAD_ID = idOf(BYTE_CHAT_PAD);

export const BYTE_CHAT_TEMPLATE_PATH = new URL('./templates/byte-chat.jinja', import.meta.url);

export function byteChatTemplateSource(): string {
  return readFileSync(BYTE_CHAT_TEMPLATE_PATH, 'utf8');
}

/** tokenizer.json, tokenizer_config.json and generation_config.json contents of the byte-level tokenizer. */
export function byteChatTokenizerFiles(): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>; generationConfig: Record<string, unknown> } {
  return {
    tokenizerJson: buildByteLevelTokenizerJson([...BYTE_CHAT_SPECIAL_TOKENS]),
    tokenizerConfig: {
      tokenizer_class: 'PreTrainedTokenizerFast',
      bos_token: BYTE_CHAT_BOS,
      eos_token: BYTE_CHAT_EOS,
      pad_token: BYTE_CHAT_PAD,
      clean_up_tokenization_spaces: false,
      model_max_length: 4096,
    },
    generationConfig: { bos_token_id: BYTE_CHAT_BOS_ID, eos_token_id: BYTE_CHAT_EOS_ID, pad_token_id: BYTE_CHAT_PAD_ID },
  };
}

export function byteChatTokenizer(): Tokenizer {
  const files = byteChatTokenizerFiles();
  return new Tokenizer(files.tokenizerJson, files.tokenizerConfig, files.generationConfig);
}

export function byteChatTemplate(): ChatTemplate {
  return new ChatTemplate(byteChatTemplateSource(), { name: 'byte-chat', bosToken: BYTE_CHAT_BOS, eosToken: BYTE_CHAT_EOS, endOfTurn: BYTE_CHAT_EOS });
}
