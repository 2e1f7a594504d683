import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { tf } from '../engines/tfjs/tf.js';
import { type CausalLM } from '../engines/tfjs/model.js';
import { loadModel } from '../engines/tfjs/model-loader.js';
import { tfjsModel } from '../engines/tfjs/model-engine.js';
import { recordingContext } from '../test/nodes/node-context.js';
import { loraApply } from './lora-apply.js';

const FIXTURE = 'test/fixtures/llama-tiny';
const reference = (await import('../test/fixtures/llama-tiny/reference.json', { with: { type: 'json' } })).default as {
  adapter: { ids: number[]; last_logits: number[] }[];
};

const models: CausalLM[] = [];
afterEach(() => {
  while (models.length) models.pop()!.dispose();
});

async function apply(config: Record<string, unknown>, services = { seed: 5 }) {
  const model = await loadModel(FIXTURE);
  models.push(model);
  const recorded = recordingContext(loraApply.config.parse(config), { baseDir: FIXTURE, services });
  const out = await firstValueFrom((await loraApply.run(recorded.ctx, { model })).model!);
  return { model: tfjsModel(out), events: recorded.events, input: model };
}

const firstA = (model: CausalLM) => [...model.lora!.adapters.values()][0].A.dataSync().slice(0, 8);

describe('lora.apply', () => {
  it('attaches fresh adapters to the chosen projections and logs trainable vs all parameters', async () => {
    const { model, input, events } = await apply({ r: 4, alpha: 8, target_modules: ['q_proj', 'v_proj'] });
    expect(model).toBe(input); // the same model object, now with LoRA
    expect(model.lora!.config).toMatchObject({ r: 4, alpha: 8, targetModules: ['q_proj', 'v_proj'], useRslora: false, seed: 5 });
    expect(model.lora!.scale).toBe(2);
    expect([...model.lora!.adapters.keys()]).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    // q: A [4, 64] + B [64, 4]; v: A [4, 64] + B [32, 4]; two layers.
    const trainable = 2 * (4 * 64 + 64 * 4 + 4 * 64 + 32 * 4);
    const { data } = events[0];
    expect(data).toMatchObject({ trainable, r: 4, alpha: 8 });
    expect(data!.total as number).toBeGreaterThan(trainable);
    expect(events[0].message).toMatch(new RegExp(`trainable params: ${trainable.toLocaleString('en-US')} \\|\\| all params: [\\d,]+ \\|\\| trainable%: \\d+\\.\\d{4}`));
    // B starts at zero: the adapted model computes what the base model does.
    expect([...model.lora!.adapters.values()].every((a) => a.B.dataSync().every((v) => v === 0))).toBe(true);
  });

  it("draws A from the graph's seed unless the node sets its own; rsLoRA scales by alpha/√r", async () => {
    const a = firstA((await apply({ r: 4 })).model);
    const b = firstA((await apply({ r: 4 })).model);
    const c = firstA((await apply({ r: 4 }, { seed: 6 })).model);
    const d = (await apply({ r: 4, seed: 6, use_rslora: true, alpha: 8 }, { seed: 5 })).model;
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(firstA(d)).toEqual(c);
    expect(d.lora!.scale).toBe(4);
  });

  it("loads a PEFT adapter folder: the adapted model reproduces peft's logits", async () => {
    const { model, events } = await apply({ adapter: 'adapter' });
    expect(model.lora!.config).toMatchObject({ r: 8, alpha: 16 });
    expect(events[0].message).toContain('(from adapter)');
    const { ids, last_logits } = reference.adapter[0];
    const logits = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, ids.length], 'int32')).slice([0, ids.length - 1, 0], [1, 1, -1]).reshape([-1]));
    const got = logits.dataSync();
    logits.dispose();
    expect(Math.max(...last_logits.map((v, i) => Math.abs(v - got[i])))).toBeLessThan(1e-4);
  });

  it('says what is wrong', async () => {
    await expect(apply({ adapter: 'no-adapter-here' })).rejects.toThrow(/adapter folder .*no-adapter-here not found/);
    expect(() => loraApply.config.parse({ target_modules: ['qkv_proj'] })).toThrow();
    expect(() => loraApply.config.parse({ r: 0 })).toThrow();
    expect(() => loraApply.config.parse({ dropout: 1 })).toThrow();
  });
});
