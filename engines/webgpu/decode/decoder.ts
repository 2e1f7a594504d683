// The decoder of the decode loop: base weights uploaded once (f32 or f16, in the checkpoint's [out, in]
// layout, q|k|v fused into one matrix and gate/up interleaved row by row so each is one launch), LoRA A/B
// in f32 applied on the fly (updated in place by setLora, never reloading the base; a uniform scale set
// to 0 turns the adapters off for the reference pass), the KV cache (one buffer per layer and K/V,
// [slot, position, kvHeads·D]), and passes: the dispatches of one forward over `rows` rows, made once
// with their bind groups, re-recorded every step.
import type { ModelConfig } from '../../../core/llm/config.js';
import { PEFT_PREFIX } from '../../../core/llm/peft-config.js';
import { projectionPath, type ProjectionName } from '../../../core/llm/projections.js';
import type { Dispatch, GpuContext } from '../device.js';
import { RmsNorm } from '../kernels/rmsnorm.js';
import { ropeTable } from '../kernels/rope.js';
import { CacheAttention } from './attention.js';
import { EmbedRows } from './embed.js';
import { Linear, type LinearShape, type WeightPrecision } from './linear.js';

export type DecoderConfig = Pick<
  ModelConfig,
  | 'vocabSize'
  | 'hiddenSize'
  | 'numLayers'
  | 'numHeads'
  | 'numKvHeads'
  | 'headDim'
  | 'intermediateSize'
  | 'rmsNormEps'
  | 'ropeTheta'
  | 'ropeScaling'
  | 'tieWordEmbeddings'
  | 'attentionBias'
  | 'outputBias'
  | 'mlpBias'
  | 'qkNorm'
  | 'slidingWindow'
>;

/** A base parameter by its checkpoint name, in the checkpoint's layout (a projection [out, in]). */
export type HostParameters = (name: string) => Float32Array;

export interface LoraLayout {
  rank: number;
  /** alpha / r (or alpha / √r with rsLoRA). */
  scale: number;
}

/** LoRA matrices by PEFT name (`base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`). */
export type LoraWeights = Record<string, { shape: number[]; data: Float32Array }>;

interface LayerBuffers {
  inputNorm: GPUBuffer;
  postNorm: GPUBuffer;
  qkNorm?: [GPUBuffer, GPUBuffer];
  qkv: GPUBuffer;
  qkvBias?: GPUBuffer;
  o: GPUBuffer;
  oBias?: GPUBuffer;
  gateUp: GPUBuffer;
  gateUpBias?: GPUBuffer;
  down: GPUBuffer;
  downBias?: GPUBuffer;
  lora?: Record<'qkvA' | 'qkvB' | 'oA' | 'oB' | 'guA' | 'guB' | 'downA' | 'downB', GPUBuffer>;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Rows of a and b interleaved (a0, b0, a1, b1, ...), each `width` long. */
function interleaveRows(a: Float32Array, b: Float32Array, width: number): Float32Array {
  const rows = a.length / width;
  const out = new Float32Array(a.length * 2);
  for (let r = 0; r < rows; r++) {
    out.set(a.subarray(r * width, (r + 1) * width), 2 * r * width);
    out.set(b.subarray(r * width, (r + 1) * width), (2 * r + 1) * width);
  }
  return out;
}

export class DecoderWeights {
  readonly layers: LayerBuffers[] = [];
  embed!: GPUBuffer;
  lmHead!: GPUBuffer;
  finalNorm!: GPUBuffer;
  /** The uniform every LoRA epilogue reads its scale from. */
  readonly loraScale: GPUBuffer;
  private adaptersOn = true;

  constructor(
    readonly ctx: GpuContext,
    readonly config: DecoderConfig,
    readonly precision: WeightPrecision,
    readonly lora: LoraLayout | undefined,
    host: HostParameters,
  ) {
    const c = config;
    const weight = (data: Float32Array) => (precision === 'f16' ? this.uploadHalf(data) : ctx.upload(data));
    const f32 = (data: Float32Array) => ctx.upload(data);
    this.embed = weight(host('model.embed_tokens.weight'));
    this.lmHead = c.tieWordEmbeddings ? this.embed : weight(host('lm_head.weight'));
    this.finalNorm = f32(host('model.norm.weight'));
    const p = (layer: number, proj: ProjectionName, part: 'weight' | 'bias') => host(`${projectionPath(layer, proj)}.${part}`);
    for (let l = 0; l < c.numLayers; l++) {
      const layer: LayerBuffers = {
        inputNorm: f32(host(`model.layers.${l}.input_layernorm.weight`)),
        postNorm: f32(host(`model.layers.${l}.post_attention_layernorm.weight`)),
        qkv: weight(concat([p(l, 'q_proj', 'weight'), p(l, 'k_proj', 'weight'), p(l, 'v_proj', 'weight')])),
        o: weight(p(l, 'o_proj', 'weight')),
        gateUp: weight(interleaveRows(p(l, 'gate_proj', 'weight'), p(l, 'up_proj', 'weight'), c.hiddenSize)),
        down: weight(p(l, 'down_proj', 'weight')),
      };
      if (c.qkNorm) layer.qkNorm = [f32(host(`model.layers.${l}.self_attn.q_norm.weight`)), f32(host(`model.layers.${l}.self_attn.k_norm.weight`))];
      if (c.attentionBias) layer.qkvBias = f32(concat([p(l, 'q_proj', 'bias'), p(l, 'k_proj', 'bias'), p(l, 'v_proj', 'bias')]));
      if (c.outputBias) layer.oBias = f32(p(l, 'o_proj', 'bias'));
      if (c.mlpBias) {
        layer.gateUpBias = f32(interleaveRows(p(l, 'gate_proj', 'bias'), p(l, 'up_proj', 'bias'), 1));
        layer.downBias = f32(p(l, 'down_proj', 'bias'));
      }
      if (lora) {
        const r = lora.rank;
        const { hiddenSize: h, intermediateSize: m } = c;
        const qkvOut = (c.numHeads + 2 * c.numKvHeads) * c.headDim;
        const zeros = (n: number) => ctx.upload(new Float32Array(n));
        layer.lora = {
          qkvA: zeros(3 * r * h),
          qkvB: zeros(qkvOut * r),
          oA: zeros(r * c.numHeads * c.headDim),
          oB: zeros(h * r),
          guA: zeros(2 * r * h),
          guB: zeros(2 * m * r),
          downA: zeros(r * m),
          downB: zeros(h * r),
        };
      }
      this.layers.push(layer);
    }
    this.loraScale = ctx.uniform([lora?.scale ?? 0], [true]);
  }

  private halfKernel?: GPUComputePipeline;

  /** Uploads f32 values and packs them to f16 pairs on the GPU: converting billions of weights one by one
   *  in JavaScript (a 3B model) took minutes; pack2x16float does it at copy speed. */
  private uploadHalf(data: Float32Array): GPUBuffer {
    const ctx = this.ctx;
    const pairs = data.length / 2;
    if (!Number.isInteger(pairs)) throw new Error('f16 weights need an even number of values');
    const source = ctx.upload(data);
    const out = ctx.storage(pairs * 4);
    this.halfKernel ??= ctx.device.createComputePipeline({
      layout: 'auto',
      compute: {
        module: ctx.device.createShaderModule({
          code: `@group(0) @binding(0) var<storage, read> src: array<vec2f>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let i = id.y * nw.x * 256u + id.x;
  if (i < arrayLength(&dst)) { dst[i] = pack2x16float(src[i]); }
}`,
        }),
        entryPoint: 'main',
      },
    });
    const groups = Math.ceil(pairs / 256);
    const x = Math.min(groups, 65535);
    ctx.submit([{ pipeline: this.halfKernel, bindGroup: ctx.bindGroup(this.halfKernel, [source, out]), workgroups: [x, Math.ceil(groups / x)] }]);
    // Freed once the queue has run the conversion (WebGPU keeps a destroyed buffer alive for submitted work).
    source.destroy();
    return out;
  }

  /** Sets the adapter matrices from PEFT-named weights (absent targets stay zero: no adapter there). */
  setLora(weights: LoraWeights, where: string): void {
    const lora = this.lora;
    if (!lora) throw new Error(`${where}: carries adapter weights, but the engine's model has no LoRA adapter`);
    const c = this.config;
    const r = lora.rank;
    const seen = new Set<string>();
    const get = (layer: number, proj: ProjectionName, which: 'lora_A' | 'lora_B', rows: number, cols: number): Float32Array => {
      const name = `${PEFT_PREFIX}${projectionPath(layer, proj)}.${which}.weight`;
      const w = weights[name];
      if (!w) return new Float32Array(rows * cols);
      seen.add(name);
      if (w.shape.length !== 2 || w.shape[0] !== rows || w.shape[1] !== cols) throw new Error(`${where}: ${name} has shape [${w.shape}], expected [${rows}, ${cols}]`);
      return w.data;
    };
    const dims: Record<ProjectionName, [number, number]> = {
      q_proj: [c.numHeads * c.headDim, c.hiddenSize],
      k_proj: [c.numKvHeads * c.headDim, c.hiddenSize],
      v_proj: [c.numKvHeads * c.headDim, c.hiddenSize],
      o_proj: [c.hiddenSize, c.numHeads * c.headDim],
      gate_proj: [c.intermediateSize, c.hiddenSize],
      up_proj: [c.intermediateSize, c.hiddenSize],
      down_proj: [c.hiddenSize, c.intermediateSize],
    };
    const A = (l: number, p: ProjectionName) => get(l, p, 'lora_A', r, dims[p][1]);
    const B = (l: number, p: ProjectionName) => get(l, p, 'lora_B', dims[p][0], r);
    const q = this.ctx.device.queue;
    const write = (buffer: GPUBuffer, data: Float32Array) => q.writeBuffer(buffer, 0, data.buffer, data.byteOffset, data.byteLength);
    this.layers.forEach((layer, l) => {
      const b = layer.lora!;
      write(b.qkvA, concat([A(l, 'q_proj'), A(l, 'k_proj'), A(l, 'v_proj')]));
      write(b.qkvB, concat([B(l, 'q_proj'), B(l, 'k_proj'), B(l, 'v_proj')]));
      write(b.oA, A(l, 'o_proj'));
      write(b.oB, B(l, 'o_proj'));
      write(b.guA, concat([A(l, 'gate_proj'), A(l, 'up_proj')]));
      write(b.guB, interleaveRows(B(l, 'gate_proj'), B(l, 'up_proj'), r));
      write(b.downA, A(l, 'down_proj'));
      write(b.downB, B(l, 'down_proj'));
    });
    const unknown = Object.keys(weights).filter((k) => !seen.has(k));
    if (unknown.length) throw new Error(`${where}: ${unknown.length} weights match no projection of the model, e.g. ${unknown[0]}`);
  }

  /** Frees every weight buffer (the engine is unusable after). */
  destroy(): void {
    const buffers = new Set<GPUBuffer>([this.embed, this.lmHead, this.finalNorm, this.loraScale]);
    for (const layer of this.layers) {
      for (const v of Object.values(layer)) {
        if (Array.isArray(v)) v.forEach((b) => buffers.add(b));
        else if (v && typeof v === 'object' && 'destroy' in v) buffers.add(v as GPUBuffer);
        else if (v) Object.values(v as Record<string, GPUBuffer>).forEach((b) => buffers.add(b));
      }
    }
    for (const b of buffers) b.destroy();
  }

  /** Adapters on (the policy) or off (the base model: the KL reference). */
  setAdapters(on: boolean): void {
    if (!this.lora || on === this.adaptersOn) return;
    this.adaptersOn = on;
    this.ctx.device.queue.writeBuffer(this.loraScale, 0, new Float32Array([on ? this.lora.scale : 0]));
  }
}

export class KvCache {
  readonly k: GPUBuffer[];
  readonly v: GPUBuffer[];
  readonly rowBytes: number;
  private readonly scratch: GPUBuffer;

  constructor(
    ctx: GpuContext,
    config: DecoderConfig,
    readonly slots: number,
    readonly maxLength: number,
  ) {
    this.rowBytes = config.numKvHeads * config.headDim * 4;
    const bytes = slots * maxLength * this.rowBytes;
    this.k = Array.from({ length: config.numLayers }, () => ctx.storage(bytes));
    this.v = Array.from({ length: config.numLayers }, () => ctx.storage(bytes));
    this.scratch = ctx.storage(maxLength * this.rowBytes);
  }

  /** Records copies of positions [0, length) of slot `from` into each slot of `to` (a shared prompt's
   *  prefix). Through a scratch slot: WebGPU does not copy a buffer onto itself. */
  copyPrefix(encoder: GPUCommandEncoder, from: number, to: number[], length: number): void {
    const targets = to.filter((t) => t !== from);
    if (length === 0 || targets.length === 0) return;
    const slotBytes = this.maxLength * this.rowBytes;
    const bytes = length * this.rowBytes;
    for (const b of [...this.k, ...this.v]) {
      encoder.copyBufferToBuffer(b, from * slotBytes, this.scratch, 0, bytes);
      for (const t of targets) encoder.copyBufferToBuffer(this.scratch, 0, b, t * slotBytes, bytes);
    }
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v, this.scratch]) b.destroy();
  }
}

/** cos/sin tables [maxLength, D/2] on the GPU, made on the host as transformers does (kernels/rope.ts). */
export function ropeTables(ctx: GpuContext, config: DecoderConfig, maxLength: number): { cos: GPUBuffer; sin: GPUBuffer } {
  const { cos, sin } = ropeTable(config, maxLength);
  return { cos: ctx.upload(cos), sin: ctx.upload(sin) };
}

/** Where a pass's rows come from: the cache slot, position and input token of each row (u32 buffers). */
export interface RowSource {
  slot: GPUBuffer;
  pos: GPUBuffer;
  token: GPUBuffer;
}

/** One forward over `rows` rows through every layer, writing each row's k/v into the cache; `logits` then
 *  holds [rows, V] after `tail`. */
export class DecoderPass {
  readonly layers: Dispatch[] = [];
  readonly tail: Dispatch[] = [];
  logits!: GPUBuffer;
  private readonly owned: GPUBuffer[] = [];

  private constructor(readonly rows: number) {}

  static async create(ctx: GpuContext, w: DecoderWeights, rows: number, source: RowSource, cache: KvCache, rope: { cos: GPUBuffer; sin: GPUBuffer }): Promise<DecoderPass> {
    const c = w.config;
    const H = c.hiddenSize;
    const qWidth = c.numHeads * c.headDim;
    const kvWidth = c.numKvHeads * c.headDim;
    const qkvWidth = qWidth + 2 * kvWidth;
    const M = c.intermediateSize;
    const r = w.lora?.rank ?? 0;
    const pass = new DecoderPass(rows);
    const buf = (floats: number) => {
      const b = ctx.storage(floats * 4);
      pass.owned.push(b);
      return b;
    };
    const x = buf(rows * H);
    const h = buf(rows * H);
    const rstd = buf(rows);
    const qkv = buf(rows * qkvWidth);
    const attn = buf(rows * qWidth);
    const act = buf(rows * M);
    pass.logits = buf(rows * c.vocabSize);

    const linear = (shape: Omit<LinearShape, 'rows' | 'precision'>, precision: WeightPrecision = w.precision) => Linear.create(ctx, { rows, precision, ...shape });
    const withLora = <T extends object>(shape: T, lora: LinearShape['lora']): T & Pick<LinearShape, 'lora'> => (r ? { ...shape, lora } : shape);
    const [embed, norm, attention, qkvProj, oProj, guProj, downProj, lmHead, uQkv, uO, uGu, uDown] = await Promise.all([
      EmbedRows.create(ctx, { rows, vocab: c.vocabSize, hidden: H, precision: w.precision }),
      RmsNorm.create(ctx, { rows, dim: H, eps: c.rmsNormEps }),
      CacheAttention.create(ctx, { rows, heads: c.numHeads, kvHeads: c.numKvHeads, headDim: c.headDim, maxLength: cache.maxLength, window: c.slidingWindow, qkNormEps: c.qkNorm ? c.rmsNormEps : undefined }),
      linear(
        withLora(
          { inFeatures: H, outFeatures: qkvWidth, epilogue: 'store' as const, bias: c.attentionBias },
          {
            rank: r,
            uWidth: 3 * r,
            segments: [
              { end: qWidth, uOffset: 0 },
              { end: qWidth + kvWidth, uOffset: r },
              { end: qkvWidth, uOffset: 2 * r },
            ],
          },
        ),
      ),
      linear(withLora({ inFeatures: qWidth, outFeatures: H, epilogue: 'residual' as const, bias: c.outputBias }, { rank: r, uWidth: r, segments: [{ end: H, uOffset: 0 }] })),
      linear(withLora({ inFeatures: H, outFeatures: 2 * M, epilogue: 'swiglu' as const, bias: c.mlpBias }, { rank: r, uWidth: 2 * r, interleaved: true })),
      linear(withLora({ inFeatures: M, outFeatures: H, epilogue: 'residual' as const, bias: c.mlpBias }, { rank: r, uWidth: r, segments: [{ end: H, uOffset: 0 }] })),
      linear({ inFeatures: H, outFeatures: c.vocabSize, epilogue: 'store' }),
      r ? linear({ inFeatures: H, outFeatures: 3 * r, epilogue: 'store' }, 'f32') : undefined,
      r ? linear({ inFeatures: qWidth, outFeatures: r, epilogue: 'store' }, 'f32') : undefined,
      r ? linear({ inFeatures: H, outFeatures: 2 * r, epilogue: 'store' }, 'f32') : undefined,
      r ? linear({ inFeatures: M, outFeatures: r, epilogue: 'store' }, 'f32') : undefined,
    ]);
    const u = r ? { qkv: buf(rows * 3 * r), o: buf(rows * r), gu: buf(rows * 2 * r), down: buf(rows * r) } : undefined;
    const rowsAt = { slot: source.slot, pos: source.pos };
    const d = pass.layers;
    d.push(embed.dispatch(source.token, w.embed, x));
    w.layers.forEach((layer, l) => {
      const kv = { k: cache.k[l], v: cache.v[l] };
      const lora = (uBuf: GPUBuffer | undefined, B: GPUBuffer | undefined) => (uBuf && B ? { lora: { u: uBuf, B, scale: w.loraScale } } : {});
      d.push(norm.forward(x, layer.inputNorm, h, rstd));
      if (u && layer.lora) d.push(uQkv!.dispatch(h, layer.lora.qkvA, u.qkv));
      d.push(qkvProj.dispatch(h, layer.qkv, qkv, { bias: layer.qkvBias, ...lora(u?.qkv, layer.lora?.qkvB) }));
      d.push(attention.qkRopeCache(rowsAt, rope, qkv, kv, layer.qkNorm));
      d.push(attention.attend(rowsAt, qkv, kv, attn));
      if (u && layer.lora) d.push(uO!.dispatch(attn, layer.lora.oA, u.o));
      d.push(oProj.dispatch(attn, layer.o, x, { bias: layer.oBias, ...lora(u?.o, layer.lora?.oB) }));
      d.push(norm.forward(x, layer.postNorm, h, rstd));
      if (u && layer.lora) d.push(uGu!.dispatch(h, layer.lora.guA, u.gu));
      d.push(guProj.dispatch(h, layer.gateUp, act, { bias: layer.gateUpBias, ...lora(u?.gu, layer.lora?.guB) }));
      if (u && layer.lora) d.push(uDown!.dispatch(act, layer.lora.downA, u.down));
      d.push(downProj.dispatch(act, layer.down, x, { bias: layer.downBias, ...lora(u?.down, layer.lora?.downB) }));
    });
    pass.tail.push(norm.forward(x, w.finalNorm, h, rstd), lmHead.dispatch(h, w.lmHead, pass.logits));
    return pass;
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }
}

