// LoRA: PEFT init, scaling, dropout only in training, only adapters trainable, adapters-disabled =
// base model, merge/unmerge, snapshots, PEFT save → reload, a finite-difference gradient check on
// llama-tiny, and gradient checkpointing giving the same gradients.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend } from '../../engines/tfjs/backend.js';
import { type CausalLM } from '../../engines/tfjs/model.js';
import { loadModel } from '../../engines/tfjs/model-loader.js';
import {
  attachLora, loadLoraSnapshot, loadPeftAdapter, loraScale, loraSnapshot, loraSnapshotAsync, mergeLora, savePeftAdapter, unmergeLora,
} from '../../engines/tfjs/lora.js';
import { readSafetensorsHeader } from '../../core/llm/safetensors.js';
import { LLAMA_TINY, ids2d, maxAbsDiff, readReference } from './fixture.js';

const reference = readReference();
const PROMPT = reference.chats[1].ids.slice(0, 40);
const ALL_MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

function logits(model: CausalLM, ids = PROMPT, training = false): Float32Array {
  return tf.tidy(() => {
    const h = model.hidden(ids2d([ids]), undefined, undefined, { training });
    return tf.matMul(h.reshape([ids.length, -1]), model.weights.lmHead, false, true).dataSync() as Float32Array;
  });
}

/** Sum of the log-probs of PROMPT[1:] (a scalar loss for gradient checks). */
function sequenceLogprob(model: CausalLM, checkpointLayers = false): tf.Scalar {
  const h = model.hidden(ids2d([PROMPT.slice(0, -1)]), undefined, undefined, { training: true, checkpointLayers });
  return model.tokenLogprobs(h, ids2d([PROMPT.slice(1)]), { chunkSize: 16 }).logprobs.sum() as tf.Scalar;
}

describe('LoRA on llama-tiny', () => {
  let model: CausalLM;
  beforeAll(async () => {
    await initBackend('wasm');
    model = await loadModel(LLAMA_TINY);
  });
  afterAll(() => model.dispose());

  it('initialises as PEFT does: A uniform within ±1/√in, B zero, so outputs are unchanged', () => {
    const base = logits(model);
    const state = attachLora(model, { r: 4, alpha: 8, dropout: 0, targetModules: ALL_MODULES, useRslora: false, seed: 1 });
    expect(state.adapters.size).toBe(2 * 7);
    const q = state.adapters.get('model.layers.0.self_attn.q_proj')!;
    const down = state.adapters.get('model.layers.1.mlp.down_proj')!;
    expect(q.A.shape).toEqual([4, 64]);
    expect(down.A.shape).toEqual([4, 160]);
    expect(down.B.shape).toEqual([64, 4]);
    const a = down.A.dataSync();
    const bound = 1 / Math.sqrt(160);
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    expect(Math.max(...down.B.dataSync().map(Math.abs))).toBe(0);
    expect(maxAbsDiff(logits(model), base)).toBe(0);
    expect(state.scale).toBe(2);
    expect(loraScale({ r: 16, alpha: 8, useRslora: true })).toBe(2);
  });

  it('only LoRA matrices are trainable variables', () => {
    attachLora(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'], useRslora: false, seed: 2 });
    const vars = model.trainableVariables();
    expect(vars.length).toBe(2 * 2 * 2);
    expect(vars.every((v) => v.trainable)).toBe(true);
    const ids = new Set(vars.map((v) => v.id));
    for (const layer of model.weights.layers) for (const p of Object.values(layer.proj)) expect(ids.has(p.weightT.id)).toBe(false);
  });

  it('rejects unknown target modules, naming the valid ones', () => {
    expect(() => attachLora(model, { r: 2, alpha: 4, dropout: 0, targetModules: ['qproj'], useRslora: false, seed: 0 })).toThrow(/q_proj, k_proj/);
  });

  it('dropout applies only while training', () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    model.lora!.config.dropout = 0.5;
    const evalA = logits(model);
    expect(maxAbsDiff(logits(model), evalA)).toBe(0);
    expect(maxAbsDiff(logits(model, PROMPT, true), evalA)).toBeGreaterThan(1e-3);
    // the masks come from model.dropoutRng: restoring its state (a resumed run) redraws the same ones
    const state = model.dropoutRng.state();
    const first = logits(model, PROMPT, true);
    model.dropoutRng.setState(state);
    expect(maxAbsDiff(logits(model, PROMPT, true), first)).toBe(0);
    model.lora!.config.dropout = 0;
    expect(maxAbsDiff(logits(model, PROMPT, true), evalA)).toBe(0);
  });

  it('withAdaptersDisabled gives the base model (the KL reference) without a second copy', async () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const disabled = model.withAdaptersDisabled(() => logits(model));
    const base = await loadModel(LLAMA_TINY);
    expect(maxAbsDiff(disabled, logits(base))).toBe(0);
    base.dispose();
    expect(maxAbsDiff(logits(model), disabled)).toBeGreaterThan(1e-3);
  });

  it('merge then unmerge restores the adapter outputs; merged equals unmerged', async () => {
    const own = await loadModel(LLAMA_TINY); // merging changes base weights (up to rounding): not the shared model
    loadPeftAdapter(own, `${LLAMA_TINY}/adapter`);
    const adapted = logits(own);
    mergeLora(own);
    expect(maxAbsDiff(logits(own), adapted)).toBeLessThan(1e-4);
    unmergeLora(own);
    expect(maxAbsDiff(logits(own), adapted)).toBeLessThan(1e-5);
    own.dispose();
  });

  it('a snapshot loads into fresh adapters and reproduces the outputs', async () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const adapted = logits(model);
    const snap = loraSnapshot(model);
    expect(await loraSnapshotAsync(model)).toEqual(snap);
    expect(Object.keys(snap)).toContain('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    attachLora(model, { r: 8, alpha: 16, dropout: 0, targetModules: ALL_MODULES, useRslora: false, seed: 3 });
    loadLoraSnapshot(model, snap);
    expect(maxAbsDiff(logits(model), adapted)).toBe(0);
    const wrong = { ...snap, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': { shape: [4, 64], data: new Float32Array(256) } };
    expect(() => loadLoraSnapshot(model, wrong)).toThrow(/q_proj\.lora_A\.weight.*shape \[4,64\], expected \[8,64\]/);
  });

  it('saves in PEFT format and reloads to identical outputs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lora-'));
    try {
      attachLora(model, { r: 4, alpha: 16, dropout: 0.05, targetModules: ['q_proj', 'k_proj', 'down_proj'], useRslora: true, seed: 4 });
      // give B non-zero values so the adapter matters
      for (const v of model.trainableVariables()) v.assign(tf.randomNormal(v.shape, 0, 0.05, 'float32', 7));
      const adapted = logits(model);
      await savePeftAdapter(model, dir, { baseModelNameOrPath: 'llama-tiny' });
      const config = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      expect(config).toMatchObject({ peft_type: 'LORA', r: 4, lora_alpha: 16, use_rslora: true, base_model_name_or_path: 'llama-tiny' });
      const header = readSafetensorsHeader(join(dir, 'adapter_model.safetensors'));
      expect(header['base_model.model.model.layers.1.mlp.down_proj.lora_B.weight']).toEqual({ dtype: 'F32', shape: [64, 4] });
      const fresh = await loadModel(LLAMA_TINY);
      loadPeftAdapter(fresh, dir);
      expect(fresh.lora!.scale).toBe(8);
      expect(maxAbsDiff(logits(fresh), adapted)).toBe(0);
      fresh.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('LoRA gradients match central finite differences', () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const vars = model.trainableVariables();
    const { grads } = tf.variableGrads(() => sequenceLogprob(model), vars);
    // a few entries of A and B in different layers and modules
    const picks: [tf.Variable, number][] = [[vars[0], 3], [vars[1], 17], [vars[9], 100], [vars[vars.length - 1], 5], [vars[vars.length - 2], 42]];
    const eps = 1e-2;
    for (const [v, index] of picks) {
      const data = v.dataSync().slice() as Float32Array;
      const at = (delta: number) => {
        const moved = data.slice();
        moved[index] += delta;
        v.assign(tf.tensor(moved, v.shape));
        return tf.tidy(() => sequenceLogprob(model).dataSync()[0]);
      };
      const numeric = (at(eps) - at(-eps)) / (2 * eps);
      v.assign(tf.tensor(data, v.shape));
      const analytic = grads[v.name].dataSync()[index];
      expect(Math.abs(numeric - analytic)).toBeLessThan(2e-2 * Math.max(1, Math.abs(analytic)));
    }
    tf.dispose(grads);
  });

  it('gradient checkpointing gives the same loss and gradients', () => {
    loadPeftAdapter(model, `${LLAMA_TINY}/adapter`);
    const vars = model.trainableVariables();
    const plain = tf.variableGrads(() => sequenceLogprob(model, false), vars);
    const checkpointed = tf.variableGrads(() => sequenceLogprob(model, true), vars);
    expect(Math.abs(plain.value.dataSync()[0] - checkpointed.value.dataSync()[0])).toBeLessThan(1e-4);
    for (const v of vars) expect(maxAbsDiff(plain.grads[v.name].dataSync(), checkpointed.grads[v.name].dataSync())).toBeLessThan(1e-5);
    tf.dispose([plain.value, checkpointed.value, plain.grads, checkpointed.grads]);
  });
});
