import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { buildByteLevelTokenizerJson, Tokenizer } from '../../core/llm/tokenizer.js';

const dir = 'test/fixtures/llama-tiny';
const reference = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as {
  tokenize: { text: string; ids: number[]; decoded: string }[];
  chats: { rendered: string; ids: number[] }[];
};

describe('Tokenizer on llama-tiny', async () => {
  const tokenizer = await Tokenizer.fromDir(dir);

  it.each(reference.tokenize.map((c) => [c.text, c] as const))('encodes and decodes %j like transformers', (_, c) => {
    const ids = tokenizer.encode(c.text, { addSpecialTokens: false });
    expect(ids).toEqual(c.ids);
    expect(tokenizer.decode(ids)).toBe(c.decoded);
  });

  it('tokenizes rendered chats (special tokens inside the text) like transformers', () => {
    for (const chat of reference.chats) expect(tokenizer.encode(chat.rendered, { addSpecialTokens: false })).toEqual(chat.ids);
  });

  it('reads special tokens from tokenizer_config and generation_config', () => {
    expect(tokenizer.bosToken).toBe('<|begin_of_text|>');
    expect(tokenizer.bosTokenId).toBe(1000);
    expect(tokenizer.eosTokenId).toBe(1004);
    expect([...tokenizer.eosTokenIds].sort()).toEqual([1001, 1004]);
    expect(tokenizer.vocabSize).toBe(1006);
    expect(tokenizer.tokenToId('<|eot_id|>')).toBe(1004);
    expect(tokenizer.idToToken(1002)).toBe('<|start_header_id|>');
    expect(tokenizer.specialTokens.map((t) => t.id)).toEqual([1000, 1001, 1002, 1003, 1004, 1005]);
  });

  it('adds bos with special tokens on, and skips specials on decode when asked', () => {
    const ids = tokenizer.encode('Hello world');
    expect(ids).toEqual([1000, ...reference.tokenize[0].ids]);
    expect(tokenizer.decode([...ids, 1004], { skipSpecialTokens: true })).toBe('Hello world');
    expect(tokenizer.decode([...ids, 1004])).toBe('<|begin_of_text|>Hello world<|eot_id|>');
  });

  it('stop matcher finds a stop string completed by the newest token, across token boundaries', () => {
    const ids = tokenizer.encode('<reasoning>x</reasoning><answer>42</answer> and more', { addSpecialTokens: false });
    const matcher = tokenizer.stopMatcher(['</answer>']);
    let firstHit = -1;
    for (let n = 1; n <= ids.length && firstHit < 0; n++) if (matcher.check(ids.slice(0, n))) firstHit = n;
    expect(firstHit).toBeGreaterThan(0);
    expect(tokenizer.decode(ids.slice(0, firstHit)).endsWith('</answer>')).toBe(true);
    expect(tokenizer.decode(ids.slice(0, firstHit - 1)).includes('</answer>')).toBe(false);
    expect(matcher.cut(tokenizer.decode(ids))).toBe('<reasoning>x</reasoning><answer>42');
    expect(() => tokenizer.stopMatcher([''])).toThrow(/non-empty/);
  });

  it('names the folder when tokenizer.json is missing', async () => {
    await expect(Tokenizer.fromDir('test/fixtures/gsm8k')).rejects.toThrow(/no tokenizer\.json in test\/fixtures\/gsm8k/);
  });
});

describe('buildByteLevelTokenizerJson', () => {
  const specials = ['<|bos|>', '<|eos|>', '<|pad|>'];
  const json = buildByteLevelTokenizerJson(specials);
  const texts = [
    'plain ascii',
    '  spaces  \n\ttabs\r\n',
    'Ünïcödé — 東京 🚀 ﷽ \u0000\u0001\u007f',
    '<|bos|>special<|eos|> inside',
  ];

  it('round-trips arbitrary text through @huggingface/tokenizers', () => {
    const raw = new HfTokenizer(json, {});
    for (const text of texts) {
      const ids = raw.encode(text, { add_special_tokens: false }).ids;
      expect(raw.decode(ids)).toBe(text);
    }
  });

  it('uses one id per byte and the listed specials after them', () => {
    const tokenizer = new Tokenizer(json, { bos_token: '<|bos|>', eos_token: '<|eos|>', pad_token: '<|pad|>' });
    expect(tokenizer.vocabSize).toBe(256 + specials.length);
    const text = 'é!';
    expect(tokenizer.encode(text, { addSpecialTokens: false })).toEqual([...Buffer.from(text, 'utf8')]);
    expect(tokenizer.encode('<|eos|>', { addSpecialTokens: false })).toEqual([257]);
    expect(tokenizer.decode(tokenizer.encode('', { addSpecialTokens: false }))).toBe('');
    expect(tokenizer.bosTokenId).toBe(256);
    expect(tokenizer.eosTokenIds).toEqual([257]);
    expect(tokenizer.padTokenId).toBe(258);
    expect(() => buildByteLevelTokenizerJson(['<a>', '<a>'])).toThrow(/twice/);
  });
});
