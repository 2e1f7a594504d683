import { describe, expect, it } from 'vitest';
import { readSafetensors } from '../../core/llm/safetensors.js';
import { readModelConfig } from '../../core/llm/config.js';
import { fromF16 } from './f16.js';
import { NO_ADAPTER, testGpu } from './testing.js';
import { GpuLoraWeights, GpuModelWeights } from './weights.js';

const LLAMA_TINY = 'test/fixtures/llama-tiny';
const ctx = await testGpu();

describe.skipIf(!ctx)(`webgpu weights${ctx ? '' : ` (${NO_ADAPTER})`}`, () => {
  it('uploads the checkpoint once (f32 exact, f16 projections rounded) and a PEFT adapter reads back as loaded', async () => {
    const gpu = ctx!;
    const before = gpu.allocatedBytes;
    const host = readSafetensors(`${LLAMA_TINY}/model.safetensors`);
    for (const precision of ['f32', 'f16'] as const) {
      const base = GpuModelWeights.fromCheckpoint(gpu, LLAMA_TINY, precision);
      const q = base.layers[1].proj.q_proj;
      const expected = host.get('model.layers.1.self_attn.q_proj.weight')!.data;
      const raw = await gpu.read(q.weight, expected.length * (precision === 'f16' ? 2 : 4));
      const values = precision === 'f16' ? fromF16(new Uint16Array(raw)) : new Float32Array(raw);
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(values[i] - expected[i]) / (Math.abs(expected[i]) + 1e-3));
      expect(worst).toBeLessThanOrEqual(precision === 'f32' ? 0 : 2 ** -10);
      const norm = new Float32Array(await gpu.read(base.finalNorm));
      expect(Array.from(norm)).toEqual(Array.from(host.get('model.norm.weight')!.data));

      const lora = GpuLoraWeights.fromPeftFolder(gpu, base, `${LLAMA_TINY}/adapter`);
      const adapter = readSafetensors(`${LLAMA_TINY}/adapter/adapter_model.safetensors`);
      const read = await lora.read();
      expect(Object.keys(read).sort()).toEqual([...adapter.keys()].sort());
      for (const [name, t] of adapter) {
        expect(read[name].shape).toEqual(t.shape);
        expect(Array.from(read[name].data)).toEqual(Array.from(t.data));
      }
      expect(() => lora.set({}, 'snapshot')).toThrow(/snapshot: missing tensor "base_model\.model\.model\.layers\.0/);
      lora.destroy();
      base.destroy();
    }
    expect(gpu.allocatedBytes).toBe(before);
  });

  it('attach() draws PEFT init (B zero, A within ±1/√in) and refuses dropout', async () => {
    const gpu = ctx!;
    const config = readModelConfig(LLAMA_TINY);
    const base = GpuModelWeights.random(gpu, config, 'f32', 1);
    const lora = GpuLoraWeights.attach(gpu, base, { r: 4, alpha: 8, targetModules: ['q_proj', 'down_proj'], seed: 3 });
    expect(lora.adapters.size).toBe(2 * config.numLayers);
    const read = await lora.read();
    const a = read['base_model.model.model.layers.0.mlp.down_proj.lora_A.weight'];
    expect(a.shape).toEqual([4, config.intermediateSize]);
    expect(Math.max(...a.data.map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(config.intermediateSize));
    expect(Math.max(...a.data.map(Math.abs))).toBeGreaterThan(0);
    expect(read['base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight'].data.every((v) => v === 0)).toBe(true);
    expect(() => GpuLoraWeights.attach(gpu, base, { r: 4, alpha: 8, targetModules: ['q_proj'], dropout: 0.1 })).toThrow(/dropout 0.1 is not supported/);
    lora.destroy();
    base.destroy();
  });
});
