// A Hugging Face tokenizer (`tokenizer.json` + `tokenizer_config.json`) through @huggingface/tokenizers,
// plus the special-token facts generation needs (bos, the set of eos ids, pad).
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface EncodeOptions {
  /** Add the tokenizer's own special tokens (bos, ...) as its post-processor says. Default true, as in transformers. */
  addSpecialTokens?: boolean;
}
export interface DecodeOptions {
  /** Drop special tokens (bos, eos, chat markers) from the text. Default false, as in transformers. */
  skipSpecialTokens?: boolean;
}

export interface SpecialToken {
  token: string;
  id: number;
}

/** tokenizer_config.json writes special tokens either as strings or as AddedToken objects. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`${path} is not valid JSON: ${(err as Error).message}`);
  }
}

function idList(value: unknown): number[] {
  if (typeof value === 'number') return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number');
  return [];
}

/** The parsed files a Tokenizer is built from: `new Tokenizer(s.tokenizerJson, s.tokenizerConfig, s.generationConfig)`. */
export interface TokenizerSource {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly bosToken?: string;
  readonly eosToken?: string;
  readonly padToken?: string;
  readonly bosTokenId?: number;
  /** The primary eos id (tokenizer_config's `eos_token`), or the first of `eosTokenIds`. */
  readonly eosTokenId?: number;
  /** Every id that ends a generation: tokenizer_config's eos plus generation_config's `eos_token_id`(s). */
  readonly eosTokenIds: number[];
  readonly padTokenId?: number;
  /** Every added token marked special, by id. */
  readonly specialTokens: SpecialToken[];
  /** The chat template stored in tokenizer_config.json, if any (string or named list, unparsed). */
  readonly configChatTemplate?: unknown;
  private readonly inner: HfTokenizer;
  private readonly specialIds: Set<number>;
  private readonly addBosToken?: boolean;
  /** What it was built from (plain JSON): enough to build the same tokenizer in a worker thread. */
  readonly source: TokenizerSource;

  constructor(
    tokenizerJson: Record<string, unknown>,
    tokenizerConfig: Record<string, unknown> = {},
    generationConfig: Record<string, unknown> = {},
  ) {
    this.source = { tokenizerJson, tokenizerConfig, generationConfig };
    this.inner = new HfTokenizer(tokenizerJson, tokenizerConfig);
    const vocab = this.inner.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;

    const added = (tokenizerJson.added_tokens ?? []) as { id: number; content: string; special?: boolean }[];
    this.specialTokens = added.filter((t) => t.special).map((t) => ({ token: t.content, id: t.id }));
    this.specialIds = new Set(this.specialTokens.map((t) => t.id));

    this.bosToken = tokenContent(tokenizerConfig.bos_token);
    this.eosToken = tokenContent(tokenizerConfig.eos_token);
    this.padToken = tokenContent(tokenizerConfig.pad_token);
    this.bosTokenId = this.bosToken === undefined ? undefined : this.inner.token_to_id(this.bosToken);
    const configEos = this.eosToken === undefined ? undefined : this.inner.token_to_id(this.eosToken);
    const eos = new Set<number>();
    if (configEos !== undefined) eos.add(configEos);
    for (const id of idList(generationConfig.eos_token_id)) eos.add(id);
    this.eosTokenIds = [...eos];
    this.eosTokenId = configEos ?? this.eosTokenIds[0];
    this.padTokenId = this.padToken === undefined ? undefined : this.inner.token_to_id(this.padToken);
    if (this.bosTokenId === undefined && typeof generationConfig.bos_token_id === 'number') {
      this.bosTokenId = generationConfig.bos_token_id;
    }
    this.configChatTemplate = tokenizerConfig.chat_template;
    if (typeof tokenizerConfig.add_bos_token === 'boolean') this.addBosToken = tokenizerConfig.add_bos_token;
  }

  /** Load `tokenizer.json`, `tokenizer_config.json` and (if present) `generation_config.json` from a folder. */
  static async fromDir(dir: string): Promise<Tokenizer> {
    const tokenizerPath = join(dir, 'tokenizer.json');
    if (!existsSync(tokenizerPath)) throw new Error(`no tokenizer.json in ${dir}`);
    const configPath = join(dir, 'tokenizer_config.json');
    const generationPath = join(dir, 'generation_config.json');
    return new Tokenizer(
      readJson(tokenizerPath),
      existsSync(configPath) ? readJson(configPath) : {},
      existsSync(generationPath) ? readJson(generationPath) : {},
    );
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const ids = this.inner.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    // tokenizer_config's add_bos_token overrides the post-processor, as transformers does.
    if (addSpecialTokens && this.addBosToken !== undefined && this.bosTokenId !== undefined) {
      if (this.addBosToken && ids[0] !== this.bosTokenId) return [this.bosTokenId, ...ids];
      if (!this.addBosToken && ids[0] === this.bosTokenId) {
        const plain = this.inner.encode(text, { add_special_tokens: false }).ids;
        if (plain[0] !== this.bosTokenId) return ids.slice(1);
      }
    }
    return ids;
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    // @huggingface/tokenizers rejects an empty list; a completion that is all eos decodes to ''.
    if (ids.length === 0) return '';
    return this.inner.decode(ids as number[], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * A matcher that says, after each new token, whether the generated text now contains one of `stops`.
   * It decodes only a tail window of the ids, so each check costs O(longest stop string), not O(length).
   */
  stopMatcher(stops: readonly string[]): StopMatcher {
    return new StopMatcher(this, stops);
  }
}

export class StopMatcher {
  private readonly window: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    readonly stops: readonly string[],
  ) {
    for (const stop of stops) {
      if (typeof stop !== 'string' || stop.length === 0) throw new Error('stop strings must be non-empty strings');
    }
    // Every token decodes to at least one byte and a character is at most 4 UTF-8 bytes, so the last
    // 4·L tokens always cover a stop string of L characters that ends in the newest token.
    const longest = Math.max(0, ...stops.map((s) => s.length));
    this.window = 4 * longest + 1;
  }

  /** The stop string that the ids' text now contains (looking only at text the newest token can complete). */
  check(ids: readonly number[]): string | undefined {
    if (this.stops.length === 0 || ids.length === 0) return undefined;
    const tail = this.tokenizer.decode(ids.slice(-this.window));
    for (const stop of this.stops) if (tail.includes(stop)) return stop;
    return undefined;
  }

  /** `text` cut before the earliest occurrence of any stop string. */
  cut(text: string): string {
    let end = text.length;
    for (const stop of this.stops) {
      const at = text.indexOf(stop);
      if (at >= 0 && at < end) end = at;
    }
    return text.slice(0, end);
  }
}

/** GPT-2's reversible map from the 256 byte values to printable characters (byte-level BPE's alphabet). */
function byteLevelAlphabet(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const isPrintable = new Set(printable);
  const chars: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    chars[b] = String.fromCodePoint(isPrintable.has(b) ? b : 256 + shifted++);
  }
  return chars;
}

/**
 * A byte-level BPE `tokenizer.json` with no merges: ids 0–255 are the bytes, then `specialTokens` in
 * order. Any text round-trips; the project's from-scratch models use it.
 */
export function buildByteLevelTokenizerJson(specialTokens: string[]): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, id) => (vocab[ch] = id));
  const seen = new Set<string>();
  const added = specialTokens.map((content, i) => {
    if (seen.has(content)) throw new Error(`special token ${JSON.stringify(content)} is listed twice`);
    seen.add(content);
    vocab[content] = 256 + i;
    return { id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}
