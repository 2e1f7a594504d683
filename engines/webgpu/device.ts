// The WebGPU device our own kernels run on: a Dawn device (npm `webgpu`) created with the toggles that
// expose f16 and tensor-core subgroup matrices on NVIDIA, plus the two things that make many small
// kernels cheap: pipelines and bind groups built once and cached, and many dispatches recorded into
// one command buffer (tfjs-webgpu made a uniform buffer and a bind group per op and submitted every 15).
/// <reference types="@webgpu/types" />

/** Dawn toggles: unsafe APIs unlock the experimental subgroup-matrix feature; the NVIDIA toggle turns on
 *  shader-f16 there (without it the H200 offers no f16 and int8 matrices only). */
export const DAWN_TOGGLES = ['enable-dawn-features=allow_unsafe_apis,vulkan_enable_f16_on_nvidia'];
const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';

/** One shape of tensor-core product the adapter offers, e.g. f16×f16→f32 16×16×16. */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

export interface GpuCapabilities {
  adapterDescription: string;
  /** lavapipe/llvmpipe and other CPU implementations: correct, but no use for speed. */
  software: boolean;
  shaderF16: boolean;
  subgroups: boolean;
  subgroupMinSize: number;
  subgroupMaxSize: number;
  subgroupMatrix: SubgroupMatrixConfig[];
  timestampQuery: boolean;
}

/** A recorded kernel launch: everything is made beforehand, so recording costs no allocation. */
export interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: readonly [number, number?, number?];
}

let dawnModule: { create: (flags: string[]) => GPU; globals: object } | null = null;

async function loadDawn(): Promise<{ create: (flags: string[]) => GPU; globals: object } | null> {
  if (dawnModule) return dawnModule;
  try {
    dawnModule = (await import('webgpu')) as unknown as { create: (flags: string[]) => GPU; globals: object };
  } catch {
    return null;
  }
  // The WebGPU constants (GPUBufferUsage, GPUMapMode, ...) are globals in a browser; Dawn hands them out.
  for (const [k, v] of Object.entries(dawnModule.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  return dawnModule;
}

/** Whether a subgroup-matrix config for f16 inputs with f32 results, 16×16×16, is offered. */
export function hasF16TensorCores(caps: GpuCapabilities): boolean {
  return caps.subgroupMatrix.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16);
}

/** A compiled kernel with a fixed launch grid: `dispatch(...buffers)` binds buffers to bindings 0..n-1
 *  (bind group cached per buffer set) and returns the launch to record. */
export class Kernel {
  constructor(
    private readonly ctx: GpuContext,
    readonly pipeline: GPUComputePipeline,
    readonly workgroups: readonly [number, number?, number?],
  ) {}

  dispatch(...buffers: GPUBuffer[]): Dispatch {
    return { pipeline: this.pipeline, bindGroup: this.ctx.bindGroup(this.pipeline, buffers), workgroups: this.workgroups };
  }
}

export class GpuContext {
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly bindGroups = new WeakMap<GPUComputePipeline, Map<string, GPUBindGroup>>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  /** Bytes and count of the buffers made through this context and not yet released: what the engine
   *  holds on the device (Dawn reports no memory use). `peakBytes` is the most held at once. */
  private readonly live = new Map<GPUBuffer, number>();
  allocatedBytes = 0;
  peakBytes = 0;

  constructor(
    readonly device: GPUDevice,
    readonly caps: GpuCapabilities,
    /** The Dawn instance: held so it outlives the device (dawn.node crashes when it is collected first). */
    private readonly instance: GPU,
  ) {}

  /** The compute pipeline for this WGSL source (entry point `main`), compiled once; compile errors throw
   *  with the shader's messages rather than surfacing later as an invalid pipeline. */
  async pipeline(code: string): Promise<GPUComputePipeline> {
    const cached = this.pipelines.get(code);
    if (cached) return cached;
    const module = this.device.createShaderModule({ code });
    const info = await this.settle(module.getCompilationInfo());
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      const lines = code.split('\n');
      throw new Error(`WGSL compile error:\n${errors.map((m) => `  line ${m.lineNum}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`).join('\n')}`);
    }
    this.device.pushErrorScope('validation');
    // Synchronous creation: createComputePipelineAsync aborts the process in dawn.node (webgpu 0.6.2).
    const pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const err = await this.settle(this.device.popErrorScope());
    if (err) throw new Error(`pipeline creation failed: ${err.message}`);
    this.pipelines.set(code, pipeline);
    return pipeline;
  }

  /** The kernel for this WGSL source launched over `workgroups`. */
  async kernel(code: string, workgroups: readonly [number, number?, number?]): Promise<Kernel> {
    return new Kernel(this, await this.pipeline(code), workgroups);
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  /** The bind group binding `buffers` to bindings 0..n-1 of group 0, made once per pipeline and buffer set. */
  bindGroup(pipeline: GPUComputePipeline, buffers: readonly GPUBuffer[]): GPUBindGroup {
    let perPipeline = this.bindGroups.get(pipeline);
    if (!perPipeline) {
      perPipeline = new Map();
      this.bindGroups.set(pipeline, perPipeline);
    }
    const key = buffers.map((b) => this.bufferId(b)).join(',');
    let group = perPipeline.get(key);
    if (!group) {
      group = this.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
      });
      perPipeline.set(key, group);
    }
    return group;
  }

  /** Records the dispatches in order into one compute pass of one command buffer and submits it. WebGPU
   *  orders storage writes between dispatches of a pass, so later kernels see earlier results. */
  submit(dispatches: readonly Dispatch[]): void {
    this.device.queue.submit([this.encode(dispatches)]);
  }

  encode(dispatches: readonly Dispatch[], encoder: GPUCommandEncoder = this.device.createCommandEncoder()): GPUCommandBuffer {
    recordPass(encoder, dispatches);
    return encoder.finish();
  }

  async finish(): Promise<void> {
    await this.settle(this.device.queue.onSubmittedWorkDone());
  }

  /** Awaits a Dawn promise, asking for another queue callback every 20 ms meanwhile. dawn.node only
   *  polls the device while it counts async work in flight, and on lavapipe under load a mapAsync or
   *  onSubmittedWorkDone sometimes never resolved (specs hung for minutes); each new request restarts
   *  the polling, which delivers the stuck callback too. */
  async settle<T>(promise: Promise<T>): Promise<T> {
    const nudge = setInterval(() => void this.device.queue.onSubmittedWorkDone(), 20);
    try {
      return await promise;
    } finally {
      clearInterval(nudge);
    }
  }

  /** createBuffer, counted in allocatedBytes / liveBuffers until release(). */
  createBuffer(descriptor: GPUBufferDescriptor): GPUBuffer {
    const buffer = this.device.createBuffer(descriptor);
    this.live.set(buffer, descriptor.size);
    this.allocatedBytes += descriptor.size;
    this.peakBytes = Math.max(this.peakBytes, this.allocatedBytes);
    return buffer;
  }

  /** Destroys a buffer made here and stops counting it. */
  release(buffer: GPUBuffer | undefined): void {
    if (!buffer) return;
    const size = this.live.get(buffer);
    if (size !== undefined) {
      this.live.delete(buffer);
      this.allocatedBytes -= size;
    }
    buffer.destroy();
  }

  /** Buffers made here and not released. */
  get liveBuffers(): number {
    return this.live.size;
  }

  /** Starts a new peak measurement from what is held now. */
  resetPeak(): void {
    this.peakBytes = this.allocatedBytes;
  }

  /** A storage buffer holding `data` (padded to 4 bytes, as WebGPU requires). */
  upload(data: ArrayBufferView, extraUsage = 0): GPUBuffer {
    const size = Math.max(4, Math.ceil(data.byteLength / 4) * 4);
    const buffer = this.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST | extraUsage, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  /** An uninitialised storage buffer of `bytes` bytes (rounded up to 4). */
  storage(bytes: number): GPUBuffer {
    return this.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  }

  /** A small uniform buffer of u32/f32 parameters, written once (shapes are fixed per op instance). */
  uniform(words: ArrayLike<number>, asFloat: readonly boolean[] = []): GPUBuffer {
    const raw = new ArrayBuffer(Math.max(16, Math.ceil((words.length * 4) / 16) * 16));
    const u32 = new Uint32Array(raw);
    const f32 = new Float32Array(raw);
    for (let i = 0; i < words.length; i++) {
      if (asFloat[i]) f32[i] = words[i];
      else u32[i] = words[i];
    }
    const buffer = this.createBuffer({ size: raw.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(raw));
    buffer.unmap();
    return buffer;
  }

  /** Copies `bytes` bytes of `buffer` back to the host (waits for the queue). */
  async read(buffer: GPUBuffer, bytes = buffer.size): Promise<ArrayBuffer> {
    const staging = this.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, staging.size);
    this.device.queue.submit([encoder.finish()]);
    // Queue first, then map: a mapAsync issued straight after the submit sometimes never resolved under
    // vitest on lavapipe, even with the polling in settle().
    await this.finish();
    await this.settle(staging.mapAsync(GPUMapMode.READ));
    const out = staging.getMappedRange().slice(0, bytes);
    staging.unmap();
    this.release(staging);
    return out;
  }

  destroy(): void {
    this.device.destroy();
  }
}

/** Creates our device, or returns null when there is no WebGPU adapter at all (no `webgpu` package, no
 *  Vulkan driver). Requests shader-f16, subgroups and subgroup matrices where the adapter offers them,
 *  and the adapter's largest buffer limits (GEMM operands at 8192² exceed the defaults). */
export async function createGpuContext(options: { flags?: string[] } = {}): Promise<GpuContext | null> {
  const dawn = await loadDawn();
  if (!dawn) return null;
  const gpu = dawn.create(options.flags ?? DAWN_TOGGLES);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return null;
  const info = adapter.info as GPUAdapterInfo & { subgroupMatrixConfigs?: SubgroupMatrixConfig[] };
  const wanted = ['shader-f16', 'subgroups', SUBGROUP_MATRIX_FEATURE, 'timestamp-query'].filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({
    requiredFeatures: wanted as GPUFeatureName[],
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: adapter.limits.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
    },
  });
  device.addEventListener?.('uncapturederror', (e) => console.error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`));
  let subgroupMatrix: SubgroupMatrixConfig[] = [];
  if (device.features.has(SUBGROUP_MATRIX_FEATURE)) {
    subgroupMatrix = (info.subgroupMatrixConfigs ?? []).map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K }));
  }
  const description = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? info.device ?? ''}`.trim();
  const caps: GpuCapabilities = {
    adapterDescription: description,
    software: info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(description),
    shaderF16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
    subgroupMinSize: (info as { subgroupMinSize?: number }).subgroupMinSize ?? 0,
    subgroupMaxSize: (info as { subgroupMaxSize?: number }).subgroupMaxSize ?? 0,
    subgroupMatrix,
    timestampQuery: device.features.has('timestamp-query'),
  };
  return new GpuContext(device, caps, gpu);
}

/** One compute pass of `dispatches` in order (the pipeline set only when it changes). */
function recordPass(encoder: GPUCommandEncoder, dispatches: readonly Dispatch[]): void {
  const pass = encoder.beginComputePass();
  let bound: GPUComputePipeline | null = null;
  for (const d of dispatches) {
    if (d.pipeline !== bound) {
      pass.setPipeline(d.pipeline);
      bound = d.pipeline;
    }
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.workgroups[0], d.workgroups[1] ?? 1, d.workgroups[2] ?? 1);
  }
  pass.end();
}

/** Records a sequence of dispatches, buffer copies and clears into one command buffer, opening a
 *  compute pass for each run of dispatches (copies and clears sit between passes). */
export class Recorder {
  private encoder: GPUCommandEncoder;
  private pending: Dispatch[] = [];
  /** Dispatches recorded since creation (for the bench's dispatch count). */
  dispatches = 0;

  constructor(private readonly ctx: GpuContext) {
    this.encoder = ctx.device.createCommandEncoder();
  }

  add(...dispatches: Dispatch[]): this {
    this.pending.push(...dispatches);
    this.dispatches += dispatches.length;
    return this;
  }

  private flushPass(): void {
    if (!this.pending.length) return;
    recordPass(this.encoder, this.pending);
    this.pending = [];
  }

  copy(src: GPUBuffer, dst: GPUBuffer, bytes: number = src.size, srcOffset = 0, dstOffset = 0): this {
    this.flushPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    return this;
  }

  clear(buffer: GPUBuffer): this {
    this.flushPass();
    this.encoder.clearBuffer(buffer);
    return this;
  }

  /** Submits what was recorded and starts a fresh command buffer. */
  submit(): void {
    this.flushPass();
    this.ctx.device.queue.submit([this.encoder.finish()]);
    this.encoder = this.ctx.device.createCommandEncoder();
  }
}
