// Supervised fine-tuning examples: a prompt record rendered through the chat template, followed by its
// gold completion and the end-of-turn token. Only the completion tokens (eos included) carry loss.
import type { ChatTemplate } from '../llm/chat-template.js';
import type { Tokenizer } from '../llm/tokenizer.js';
import type { PromptRecord } from '../prompt-record.js';

export interface SftExample {
  id: string;
  promptIds: number[];
  /** The gold completion's ids, ending with the eos id. */
  completionIds: number[];
}

export interface SftEncodeOptions {
  /** Field of `record.fields` holding the gold completion text. */
  completionField: string;
  /** Longest prompt + completion in tokens; longer examples are an error (they would train a cut answer). */
  maxLength: number;
}

export function encodeSftExample(record: PromptRecord, tokenizer: Tokenizer, template: ChatTemplate, options: SftEncodeOptions): SftExample {
  const completion = record.fields[options.completionField];
  if (typeof completion !== 'string' || completion.length === 0) {
    const present = Object.keys(record.fields).join(', ') || 'none';
    throw new Error(`SFT example "${record.id}": fields.${options.completionField} must be a non-empty string (the gold completion); fields present: ${present}`);
  }
  const eos = tokenizer.eosTokenId;
  if (eos === undefined) throw new Error('SFT: the tokenizer has no eos token (tokenizer_config.json "eos_token"), so a completion cannot be ended');
  const promptIds = tokenizer.encode(template.render(record.messages, { addGenerationPrompt: true }), { addSpecialTokens: false });
  const completionIds = [...tokenizer.encode(completion, { addSpecialTokens: false }), eos];
  const length = promptIds.length + completionIds.length;
  if (length > options.maxLength) {
    throw new Error(`SFT example "${record.id}": ${length} tokens (prompt ${promptIds.length} + completion ${completionIds.length}) exceed max_length ${options.maxLength}`);
  }
  return { id: record.id, promptIds, completionIds };
}
