import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, from } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../engines/tfjs/backend.js';
import { byteChatTemplate, byteChatTokenizer, BYTE_CHAT_PAD_ID } from '../core/llm/byte-chat.js';
import { generate } from '../engines/tfjs/generate.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import type { PromptRecord } from '../core/ports.js';
import { packSftBatch } from '../engines/tfjs/sft/batch.js';
import { encodeSftExample } from '../core/sft/examples.js';
import { builtinEngineServices } from '../test/nodes/node-context.js';
import { fakeContext } from '../test/data/fake-context.js';
import { modelCreate } from './model-create.js';
import { tfjsModel } from '../engines/tfjs/model-engine.js';
import { trainSft } from './train-sft.js';

const tokenizer = byteChatTokenizer();
const template = byteChatTemplate();
const QUESTION = 'Ann has 2 pens and buys 3 more. How many pens does she have?';
const GOLD = '<reasoning>2 + 3 = 5</reasoning><answer>5</answer>';
const record = (id: string, fields: Record<string, unknown> = { completion: GOLD, answer: '5', level: 1 }): PromptRecord => ({
  id, messages: [{ role: 'user', content: QUESTION }], fields,
});

let work: string;
beforeAll(async () => {
  await initBackend('wasm');
  work = mkdtempSync(join(tmpdir(), 'train-sft-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function tinyModel() {
  const { ctx } = fakeContext(modelCreate.config.parse({ hidden_size: 32, num_layers: 1, num_heads: 2, num_kv_heads: 1, head_dim: 16, intermediate_size: 64, seed: 1 }), { services: builtinEngineServices });
  return tfjsModel(await firstValueFrom((await modelCreate.run(ctx, {})).model!));
}

describe('SFT examples and batches', () => {
  it('puts loss on exactly the completion tokens and its eos, predicted from the position before each', () => {
    const a = encodeSftExample(record('a'), tokenizer, template, { completionField: 'completion', maxLength: 256 });
    expect(tokenizer.decode(a.promptIds)).toBe(template.render(record('a').messages, { addGenerationPrompt: true }));
    expect(tokenizer.decode(a.completionIds)).toBe(`${GOLD}<|end|>`);
    const b = { id: 'b', promptIds: [256, 258, 65, 260, 259], completionIds: [66, 260] };
    const batch = packSftBatch([a, b], BYTE_CHAT_PAD_ID);
    const width = a.promptIds.length + a.completionIds.length - 1;
    expect(batch.inputs.shape).toEqual([2, width]);
    const mask = batch.lossMask.arraySync() as number[][];
    const targets = batch.targets.arraySync() as number[][];
    expect(mask[0].reduce((s, v) => s + v, 0)).toBe(a.completionIds.length);
    expect(targets[0].filter((_, t) => mask[0][t] === 1)).toEqual(a.completionIds);
    expect(mask[1].slice(0, 7)).toEqual([0, 0, 0, 0, 1, 1, 0]); // positions 4, 5 predict 66 and eos
    expect(targets[1].slice(4, 6)).toEqual([66, 260]);
    expect((batch.attentionMask.arraySync() as number[][])[1].slice(0, 7)).toEqual([1, 1, 1, 1, 1, 1, 0]);
    expect(batch.completionTokens).toBe(a.completionIds.length + 2);
    expect(batch.lossWeight).toBe(batch.completionTokens);
    batch.dispose();

    // prompt_loss_weight: prompt targets (from the second token on) at that weight, padding still 0
    const weighted = packSftBatch([b], BYTE_CHAT_PAD_ID, 0.25);
    expect(weighted.lossMask.arraySync()).toEqual([[0.25, 0.25, 0.25, 0.25, 1, 1]]);
    expect(weighted.lossWeight).toBe(2 + 4 * 0.25);
    weighted.dispose();
  });

  it('names the record and the field when the gold completion is missing, and refuses examples over max_length', () => {
    expect(() => encodeSftExample(record('r7', { answer: '5' }), tokenizer, template, { completionField: 'completion', maxLength: 256 })).toThrow(
      /SFT example "r7": fields.completion must be a non-empty string.*fields present: answer/,
    );
    expect(() => encodeSftExample(record('r8'), tokenizer, template, { completionField: 'completion', maxLength: 40 })).toThrow(/"r8": \d+ tokens .* exceed max_length 40/);
  });
});

describe('train.sft', () => {
  it('trains every weight from scratch until the completion is learned, probes accuracy by level, stops early, and saves a loadable model', async () => {
    const model = await tinyModel();
    const before = Float32Array.from(model.weights.layers[0].proj.q_proj.weightT.dataSync() as Float32Array);
    const saveTo = join(work, 'model');
    const config = trainSft.config.parse({
      batch_size: 4, learning_rate: 0.01, warmup_steps: 2, max_steps: 150, eval_every: 10, eval_max_new_tokens: 60,
      stop_accuracy: { '1': 1 }, save_to: saveTo, save_dtype: 'float32',
    });
    const { ctx, events } = fakeContext(config, { services: builtinEngineServices });
    const published: { step: number; values: Record<string, number> }[] = [];
    ctx.metrics.publish = (step, values) => published.push({ step, values });
    const prompts = from(Array.from({ length: 600 }, (_, i) => record(`train-${i}`)));
    const test = from([record('test-0')]);
    const out = await trainSft.run(ctx, { model, tokenizer, template, prompts, test });
    await out.done;

    const losses = published.filter((p) => 'sft/loss' in p.values).map((p) => p.values['sft/loss']);
    const probes = published.filter((p) => 'sft/accuracy/level1' in p.values);
    expect(losses[0]).toBeGreaterThan(4);
    expect(losses.at(-1)!).toBeLessThan(0.5);
    // stopped at the first probe that reached 100%, well before max_steps
    expect(probes.at(-1)!.values['sft/accuracy/level1']).toBe(1);
    expect(probes.slice(0, -1).every((p) => p.values['sft/accuracy/level1'] < 1)).toBe(true);
    expect(losses.length).toBe(probes.at(-1)!.step);
    expect(losses.length).toBeLessThan(150);
    expect(events.some((e) => /stop_accuracy reached/.test(e.message))).toBe(true);
    expect(Array.from(model.weights.layers[0].proj.q_proj.weightT.dataSync())).not.toEqual(Array.from(before));

    const saved = await loadModel(saveTo);
    const promptIds = tokenizer.encode(template.render(record('x').messages, { addGenerationPrompt: true }));
    const [greedy] = await generate(saved, [{ promptIds, maxNewTokens: 60 }], { temperature: 0, tokenizer });
    const [trained] = await generate(model, [{ promptIds, maxNewTokens: 60 }], { temperature: 0, tokenizer });
    expect(greedy.text).toMatch(/^<reasoning>.+<\/reasoning><answer>5<\/answer>$/);
    expect(greedy.finishReason).toBe('eos');
    expect(greedy.ids).toEqual(trained.ids); // the saved float32 checkpoint is the trained model
    saved.dispose();
    model.dispose();
  });

  it('fails clearly when stop_accuracy has no held-out input to measure', async () => {
    const model = await tinyModel();
    const { ctx } = fakeContext(trainSft.config.parse({ stop_accuracy: { '1': 0.5 } }), { services: builtinEngineServices });
    const out = await trainSft.run(ctx, { model, tokenizer, template, prompts: from([record('a')]), test: undefined });
    await expect(out.done).rejects.toThrow(/stop_accuracy needs held-out records/);
    model.dispose();
  });
});
