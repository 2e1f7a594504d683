// A model's parameters resident on our WebGPU device, named and laid out as the checkpoint has them (the
// one parameter list of engines/tfjs/parameters.ts): base weights uploaded once, frozen, and the LoRA
// adapters (PEFT's lora_A [r, in] / lora_B [out, r], f32, trainable) beside them.
//   precision 'f16': projection weights [out, in] in f16 (tensor-core GEMM inputs), everything else f32;
//   precision 'f32': every weight f32 (exact mode, what the fixtures are checked in).
// The embedding, the lm_head, norms and biases are f32 in both: the embedding gather and the fused
// lm_head/log-softmax kernels read f32, and norms/biases are tiny.
import type { ModelConfig } from '../../core/llm/config.js';
import { checkpointFiles } from '../../core/llm/checkpoint-files.js';
import { readModelConfig } from '../../core/llm/config.js';
import { PEFT_PREFIX, loraScale, readPeftAdapterConfig } from '../../core/llm/peft-config.js';
import { PROJECTIONS, projectionPath, type ProjectionName } from '../../core/llm/projections.js';
import { SafetensorsFile, readSafetensors } from '../../core/llm/safetensors.js';
import { Rng } from '../../core/rng.js';
import { parameterSpecs, projectionShape, type ParameterSpec } from '../tfjs/parameters.js';

export { projectionShape };
import type { GpuContext } from './device.js';
import { toF16 } from './f16.js';

export type Precision = 'f16' | 'f32';

/** Adapter weights by PEFT tensor name (`base_model.model.<path>.lora_A.weight`), as PolicyWeights carry them. */
export type AdapterTensors = Record<string, { shape: number[]; data: Float32Array }>;

export interface GpuLinear {
  /** Module path as in the checkpoint, e.g. `model.layers.0.self_attn.q_proj`. */
  path: string;
  inFeatures: number;
  outFeatures: number;
  /** [out, in] (the checkpoint's layout) in the model's precision. */
  weight: GPUBuffer;
  /** [out], f32. */
  bias?: GPUBuffer;
}

export interface GpuDecoderLayer {
  inputNorm: GPUBuffer;
  postAttentionNorm: GPUBuffer;
  /** [headDim] (Qwen3). */
  qNorm?: GPUBuffer;
  kNorm?: GPUBuffer;
  proj: Record<ProjectionName, GpuLinear>;
}

/** Takes the host values of one named parameter (checkpoint name and shape). A projection weight may
 *  come as f16 bits (Uint16Array) already when the precision is f16 (benches with random weights). */
export type HostWeightSource = (spec: ParameterSpec) => Float32Array | Uint16Array;

/** The frozen base model on the device. */
export class GpuModelWeights {
  private constructor(
    private readonly ctx: GpuContext,
    readonly config: ModelConfig,
    readonly precision: Precision,
    /** [V, H] f32. */
    readonly embedTokens: GPUBuffer,
    /** [V, H] f32; the same buffer as embedTokens when the embeddings are tied. */
    readonly lmHead: GPUBuffer,
    readonly finalNorm: GPUBuffer,
    readonly layers: GpuDecoderLayer[],
    /** Bytes uploaded. */
    readonly bytes: number,
  ) {}

  /** Uploads every parameter of the list, each taken from `take` (one tensor on the host at a time). */
  static fromHost(ctx: GpuContext, config: ModelConfig, precision: Precision, take: HostWeightSource): GpuModelWeights {
    checkSupported(config);
    if (precision === 'f16' && !ctx.caps.shaderF16) throw new Error(`precision f16: this adapter (${ctx.caps.adapterDescription}) has no shader-f16; use precision f32`);
    const slots = new Map<string, GPUBuffer>();
    let bytes = 0;
    for (const spec of parameterSpecs(config)) {
      const host = take(spec);
      const count = spec.shape.reduce((a, b) => a * b, 1);
      if (host.length !== count) throw new Error(`weights: ${spec.name} has ${host.length} values, expected [${spec.shape}]`);
      const halve = precision === 'f16' && spec.slot.kind === 'projection' && spec.slot.part === 'weight';
      if (host instanceof Uint16Array && !halve) throw new Error(`weights: ${spec.name} came as f16 bits, but it is held in f32`);
      const data = halve && host instanceof Float32Array ? toF16(host) : host;
      const buffer = ctx.upload(data);
      bytes += buffer.size;
      slots.set(spec.name, buffer);
    }
    const get = (name: string) => {
      const b = slots.get(name);
      if (!b) throw new Error(`weights: no parameter ${name}`);
      return b;
    };
    const layers: GpuDecoderLayer[] = [];
    for (let layer = 0; layer < config.numLayers; layer++) {
      const prefix = `model.layers.${layer}`;
      const proj = {} as Record<ProjectionName, GpuLinear>;
      for (const p of PROJECTIONS) {
        const path = projectionPath(layer, p);
        const [outFeatures, inFeatures] = projectionShape(config, p);
        proj[p] = { path, inFeatures, outFeatures, weight: get(`${path}.weight`), bias: slots.get(`${path}.bias`) };
      }
      layers.push({
        inputNorm: get(`${prefix}.input_layernorm.weight`),
        postAttentionNorm: get(`${prefix}.post_attention_layernorm.weight`),
        qNorm: slots.get(`${prefix}.self_attn.q_norm.weight`),
        kNorm: slots.get(`${prefix}.self_attn.k_norm.weight`),
        proj,
      });
    }
    const embed = get('model.embed_tokens.weight');
    const head = config.tieWordEmbeddings ? embed : get('lm_head.weight');
    return new GpuModelWeights(ctx, config, precision, embed, head, get('model.norm.weight'), layers, bytes);
  }

  /** A checkpoint folder (config.json + safetensors shards). */
  static fromCheckpoint(ctx: GpuContext, dir: string, precision: Precision): GpuModelWeights {
    const config = readModelConfig(dir);
    const shards = checkpointFiles(dir).map((path) => new SafetensorsFile(path));
    try {
      const where = new Map<string, SafetensorsFile>();
      for (const shard of shards) for (const name of shard.names) where.set(name, shard);
      return GpuModelWeights.fromHost(ctx, config, precision, (spec) => {
        const shard = where.get(spec.name);
        if (!shard) throw new Error(`${dir}: checkpoint has no tensor "${spec.name}" (expected shape [${spec.shape}])`);
        const stored = shard.header[spec.name].shape;
        if (stored.length !== spec.shape.length || stored.some((d, i) => d !== spec.shape[i])) {
          throw new Error(`${shard.path}: tensor "${spec.name}" has shape [${stored}], expected [${spec.shape}]`);
        }
        return shard.read(spec.name).data;
      });
    } finally {
      for (const shard of shards) shard.close();
    }
  }

  /** Random weights drawn exactly as engines/tfjs/model-loader.ts's createModel draws them (same seed,
   *  same values): normal(0, initializer_range), norms one, biases zero. */
  static random(ctx: GpuContext, config: ModelConfig, precision: Precision, seed: number): GpuModelWeights {
    const rng = new Rng(seed);
    const std = Number(config.raw.initializer_range ?? 0.02);
    return GpuModelWeights.fromHost(ctx, config, precision, (spec) => {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      if (/norm\.weight$/.test(spec.name)) return new Float32Array(count).fill(1);
      if (/\.bias$/.test(spec.name)) return new Float32Array(count);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) data[i] = std * rng.normal();
      return data;
    });
  }

  destroy(): void {
    const all = new Set<GPUBuffer>([this.embedTokens, this.lmHead, this.finalNorm]);
    for (const l of this.layers) {
      for (const b of [l.inputNorm, l.postAttentionNorm, l.qNorm, l.kNorm]) if (b) all.add(b);
      for (const p of PROJECTIONS) {
        all.add(l.proj[p].weight);
        if (l.proj[p].bias) all.add(l.proj[p].bias!);
      }
    }
    for (const b of all) this.ctx.release(b);
  }
}

/** What the engine computes; anything else is refused here with the reason. */
function checkSupported(config: ModelConfig): void {
  if (config.slidingWindow !== undefined && config.slidingWindow < config.maxPositionEmbeddings) {
    throw new Error(`webgpu engine: ${config.architecture} with sliding_window ${config.slidingWindow} is not supported (full causal attention only)`);
  }
  if (config.outputBias || config.mlpBias) throw new Error(`webgpu engine: ${config.architecture} with o_proj/MLP biases is not supported (q/k/v biases are)`);
}

export interface GpuLoraConfig {
  r: number;
  alpha: number;
  /** Projection names (`q_proj` … `down_proj`). */
  targetModules: string[];
  useRslora?: boolean;
  /** LoRA dropout: only 0 is computed here (a clear error otherwise). */
  dropout?: number;
}

/** One projection's adapter: A [r, in], B [out, r], f32, and their gradient buffers (accumulated). */
export interface GpuLoraAdapter {
  path: string;
  layer: number;
  projection: ProjectionName;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  a: GPUBuffer;
  b: GPUBuffer;
  gradA: GPUBuffer;
  gradB: GPUBuffer;
  /** Offsets (in f32 elements) of A and B in the flat parameter vector (the optimizer's layout). */
  offsetA: number;
  offsetB: number;
}

/** The LoRA adapters of a GpuModelWeights: PEFT's init, set from and read back as PEFT-named tensors. */
export class GpuLoraWeights {
  /** Projection path → adapter, in parameter-list order (layer by layer, q … down). */
  readonly adapters = new Map<string, GpuLoraAdapter>();
  /** Total f32 elements over every A and B (the flat vector the optimizer updates). */
  readonly size: number;
  readonly scale: number;
  readonly config: Required<GpuLoraConfig>;

  private constructor(
    private readonly ctx: GpuContext,
    readonly base: GpuModelWeights,
    config: GpuLoraConfig,
  ) {
    const full: Required<GpuLoraConfig> = { useRslora: false, dropout: 0, ...config, targetModules: [...config.targetModules] };
    if (!(Number.isInteger(full.r) && full.r > 0)) throw new Error(`LoRA: r must be a positive integer, got ${full.r}`);
    if (!(full.alpha > 0)) throw new Error(`LoRA: alpha must be positive, got ${full.alpha}`);
    const unknown = full.targetModules.filter((m) => !(PROJECTIONS as readonly string[]).includes(m));
    if (unknown.length || full.targetModules.length === 0) throw new Error(`LoRA: target modules must be among ${PROJECTIONS.join(', ')}; got ${JSON.stringify(full.targetModules)}`);
    if (full.dropout !== 0) throw new Error(`webgpu engine: LoRA dropout ${full.dropout} is not supported (set lora dropout to 0)`);
    this.config = full;
    this.scale = loraScale({ r: full.r, alpha: full.alpha, useRslora: full.useRslora });
    let offset = 0;
    base.layers.forEach((layer, index) => {
      for (const projection of PROJECTIONS) {
        if (!full.targetModules.includes(projection)) continue;
        const { path, inFeatures, outFeatures } = layer.proj[projection];
        const sizeA = full.r * inFeatures;
        const sizeB = outFeatures * full.r;
        this.adapters.set(path, {
          path,
          layer: index,
          projection,
          rank: full.r,
          inFeatures,
          outFeatures,
          a: ctx.storage(sizeA * 4),
          b: ctx.storage(sizeB * 4),
          gradA: ctx.storage(sizeA * 4),
          gradB: ctx.storage(sizeB * 4),
          offsetA: offset,
          offsetB: offset + sizeA,
        });
        offset += sizeA + sizeB;
      }
    });
    this.size = offset;
  }

  /** Fresh adapters as PEFT (and engines/tfjs/lora.ts's attachLora, same seed, same values) initialise
   *  them: A Kaiming-uniform(a=√5), i.e. uniform ±1/√in, B zero. */
  static attach(ctx: GpuContext, base: GpuModelWeights, config: GpuLoraConfig & { seed?: number }): GpuLoraWeights {
    const lora = new GpuLoraWeights(ctx, base, config);
    const rng = new Rng(config.seed ?? 0);
    for (const a of lora.adapters.values()) {
      const bound = 1 / Math.sqrt(a.inFeatures);
      const values = new Float32Array(a.rank * a.inFeatures);
      for (let i = 0; i < values.length; i++) values[i] = (2 * rng.next() - 1) * bound;
      ctx.device.queue.writeBuffer(a.a, 0, values);
      ctx.device.queue.writeBuffer(a.b, 0, new Float32Array(a.outFeatures * a.rank));
    }
    return lora;
  }

  /** A PEFT adapter folder (adapter_config.json + adapter_model.safetensors). */
  static fromPeftFolder(ctx: GpuContext, base: GpuModelWeights, dir: string): GpuLoraWeights {
    const c = readPeftAdapterConfig(dir);
    const lora = new GpuLoraWeights(ctx, base, { r: c.r, alpha: c.alpha, targetModules: c.targetModules, useRslora: c.useRslora, dropout: c.dropout });
    lora.set(Object.fromEntries(readSafetensors(c.weightsPath)), c.weightsPath);
    return lora;
  }

  /** PEFT names of an adapter's two tensors. */
  static names(path: string): { a: string; b: string } {
    return { a: `${PEFT_PREFIX}${path}.lora_A.weight`, b: `${PEFT_PREFIX}${path}.lora_B.weight` };
  }

  /** Writes every adapter from PEFT-named tensors (each must be present with its shape), e.g. a
   *  PolicyWeights' `weights`. Queued: later submissions see the new values. */
  set(tensors: AdapterTensors, where = 'LoRA weights'): void {
    for (const a of this.adapters.values()) {
      const names = GpuLoraWeights.names(a.path);
      for (const [name, shape, buffer] of [[names.a, [a.rank, a.inFeatures], a.a], [names.b, [a.outFeatures, a.rank], a.b]] as const) {
        const entry = tensors[name];
        if (!entry) throw new Error(`${where}: missing tensor "${name}"`);
        if (entry.shape.length !== 2 || entry.shape[0] !== shape[0] || entry.shape[1] !== shape[1]) {
          throw new Error(`${where}: tensor "${name}" has shape [${entry.shape}], expected [${shape}]`);
        }
        this.ctx.device.queue.writeBuffer(buffer, 0, Float32Array.from(entry.data));
      }
    }
  }

  /** Every adapter's A and B by PEFT name, read back in one submission (values as of the call). */
  async read(): Promise<AdapterTensors> {
    const list = [...this.adapters.values()].flatMap((a) => {
      const names = GpuLoraWeights.names(a.path);
      return [
        { name: names.a, shape: [a.rank, a.inFeatures], buffer: a.a },
        { name: names.b, shape: [a.outFeatures, a.rank], buffer: a.b },
      ];
    });
    const values = await readBuffers(this.ctx, list.map((e) => e.buffer));
    return Object.fromEntries(list.map((e, i) => [e.name, { shape: e.shape, data: new Float32Array(values[i]) }]));
  }

  /** The adapter of a layer's projection, if that projection is targeted. */
  of(layer: number, projection: ProjectionName): GpuLoraAdapter | undefined {
    return this.adapters.get(projectionPath(layer, projection));
  }

  destroy(): void {
    for (const a of this.adapters.values()) for (const b of [a.a, a.b, a.gradA, a.gradB]) this.ctx.release(b);
    this.adapters.clear();
  }
}

/** Copies several buffers back in one submission and one wait. */
export async function readBuffers(ctx: GpuContext, buffers: readonly GPUBuffer[]): Promise<ArrayBuffer[]> {
  const total = buffers.reduce((n, b) => n + b.size, 0);
  const staging = ctx.createBuffer({ size: Math.max(4, total), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const encoder = ctx.device.createCommandEncoder();
    let offset = 0;
    for (const b of buffers) {
      encoder.copyBufferToBuffer(b, 0, staging, offset, b.size);
      offset += b.size;
    }
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.finish();
    await ctx.settle(staging.mapAsync(GPUMapMode.READ));
    const all = staging.getMappedRange();
    offset = 0;
    const out = buffers.map((b) => {
      const part = all.slice(offset, offset + b.size);
      offset += b.size;
      return part;
    });
    staging.unmap();
    return out;
  } finally {
    ctx.release(staging);
  }
}
