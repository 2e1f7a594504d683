import { firstValueFrom } from 'rxjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../engines/tfjs/backend.js';
import { generate } from '../engines/tfjs/generate.js';
import { builtinEngineServices } from '../test/nodes/node-context.js';
import { fakeContext } from '../test/data/fake-context.js';
import { modelCreate } from './model-create.js';
import { tfjsModel } from '../engines/tfjs/model-engine.js';

beforeAll(async () => {
  await initBackend('wasm');
});

async function create(config: Record<string, unknown>) {
  const { ctx } = fakeContext(modelCreate.config.parse(config), { services: builtinEngineServices });
  const out = await modelCreate.run(ctx, {});
  return { model: tfjsModel(await firstValueFrom(out.model!)), tokenizer: await firstValueFrom(out.tokenizer!), template: await firstValueFrom(out.template!) };
}

describe('model.create', () => {
  it('builds a random Llama of the given sizes over the byte-level vocabulary, with tied embeddings', async () => {
    const { model } = await create({ hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2, head_dim: 8, intermediate_size: 48, seed: 3 });
    expect(model.config).toMatchObject({
      architecture: 'LlamaForCausalLM', vocabSize: 262, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 8,
      intermediateSize: 48, tieWordEmbeddings: true, bosTokenId: 256, eosTokenIds: [260],
    });
    expect(model.weights.lmHead).toBe(model.weights.embedTokens);
    expect(model.weights.layers[1].proj.k_proj.weightT.shape).toEqual([32, 16]);
    const again = await create({ hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2, head_dim: 8, intermediate_size: 48, seed: 3 });
    expect(Array.from(again.model.weights.embedTokens.dataSync())).toEqual(Array.from(model.weights.embedTokens.dataSync()));
    const other = await create({ hidden_size: 32, num_layers: 2, num_heads: 4, num_kv_heads: 2, head_dim: 8, intermediate_size: 48, seed: 4 });
    expect(Array.from(other.model.weights.embedTokens.dataSync())).not.toEqual(Array.from(model.weights.embedTokens.dataSync()));
    [model, again.model, other.model].forEach((m) => m.dispose());
  });

  it('pairs it with a byte-level tokenizer and a compact chat template that generation can use', async () => {
    const { model, tokenizer, template } = await create({ hidden_size: 16, num_layers: 1, num_heads: 2, num_kv_heads: 1, head_dim: 8, intermediate_size: 16 });
    const prompt = template.render([{ role: 'user', content: 'Tom has 3 pens. Ünïcode ok?' }], { addGenerationPrompt: true });
    expect(prompt).toBe('<|begin_of_text|><|user|>Tom has 3 pens. Ünïcode ok?<|end|><|assistant|>');
    const ids = tokenizer.encode(prompt, { addSpecialTokens: false });
    expect(ids.slice(0, 3)).toEqual([256, 258, 'T'.charCodeAt(0)]);
    expect(ids.slice(-2)).toEqual([260, 259]);
    expect(ids).toHaveLength(3 + Buffer.byteLength('Tom has 3 pens. Ünïcode ok?') + 1); // one token per byte
    expect(tokenizer.decode(ids)).toBe(prompt);
    expect(tokenizer.eosTokenIds).toEqual([260]);
    expect(tokenizer.padTokenId).toBe(261);
    expect(template.render([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }])).toBe('<|begin_of_text|><|user|>a<|end|><|assistant|>b<|end|>');
    expect(() => template.render([{ role: 'tool', content: 'x' }])).toThrow(/unknown role tool/);
    const [result] = await generate(model, [{ promptIds: ids, maxNewTokens: 5 }], { temperature: 0, tokenizer });
    expect(result.ids.length).toBeGreaterThan(0);
    expect(result.ids.every((id) => id >= 0 && id < 262)).toBe(true);
    model.dispose();
  });

  it('rejects sizes that do not fit together', () => {
    expect(() => modelCreate.config.parse({ num_heads: 4, num_kv_heads: 3 })).toThrow(/num_kv_heads must divide num_heads/);
    expect(() => modelCreate.config.parse({ head_dim: 7 })).toThrow(/even/);
    expect(() => modelCreate.config.parse({ hidden: 3 })).toThrow();
  });
});
