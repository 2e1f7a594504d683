import { describe, expect, it } from 'vitest';
import { preTokenizerType, tokenizerMetadata } from './tokenizer-metadata.js';

const split = (regex: string) => ({ pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex } }, { type: 'ByteLevel', use_regex: false }] } });

describe('tokenizer metadata', () => {
  it("names the pre-tokenizer as llama.cpp does: Llama 3's and Qwen2's regexes, GPT-2's and SmolLM's ByteLevel", () => {
    const llama3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    expect(preTokenizerType(split(llama3), 'x')).toBe('llama-bpe');
    expect(preTokenizerType(split(llama3.replace('\\p{N}{1,3}', '\\p{N}')), 'x')).toBe('qwen2');
    expect(preTokenizerType({ pre_tokenizer: { type: 'ByteLevel', use_regex: true } }, 'x')).toBe('gpt-2');
    expect(preTokenizerType({ pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, { type: 'ByteLevel', use_regex: true }] } }, 'x')).toBe('smollm');
    expect(() => preTokenizerType(split('\\s+'), 'dir/tokenizer.json')).toThrow(/dir\/tokenizer.json: pre-tokenizer split pattern "\\\\s\+" is not one llama.cpp knows/);
    expect(() => preTokenizerType({ pre_tokenizer: { type: 'Metaspace' } }, 'x')).toThrow(/not supported for GGUF export/);
  });

  it('pads the vocabulary to the embedding rows with unused tokens and marks special tokens as control', async () => {
    const meta = await tokenizerMetadata('test/fixtures/llama-tiny', 1010);
    const tokens = meta.get('tokenizer.ggml.tokens') as unknown as { value: string[] };
    const types = meta.get('tokenizer.ggml.token_type') as unknown as { value: Int32Array };
    expect(tokens.value).toHaveLength(1010);
    expect(tokens.value[1004]).toBe('<|eot_id|>');
    expect(types.value[1004]).toBe(3);
    expect(tokens.value[1007]).toBe('[PAD1007]');
    expect(types.value[1007]).toBe(5);
    expect(types.value[5]).toBe(1);
    expect(meta.get('tokenizer.ggml.add_bos_token')).toEqual({ type: 'bool', value: true });
    expect((meta.get('tokenizer.ggml.merges') as unknown as { value: string[] }).value[0]).toBe('Ġ t');
    await expect(tokenizerMetadata('test/fixtures/llama-tiny', 1000)).rejects.toThrow(/id 1000, outside the model's vocabulary of 1000/);
  });
});
