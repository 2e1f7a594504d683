// Choosing the TensorFlow.js backend. Model code never depends on which one runs.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tf } from './tf.js';
import { registerSimdBatchMatMul, simdBatchMatMulUnavailable } from './wasm-batch-matmul.js';

export type BackendName = 'auto' | 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

type Attempt = () => Promise<string>; // resolves to the tfjs backend name, or throws why it cannot run

async function importOptional(name: string): Promise<unknown> {
  // A variable specifier keeps bundlers and tsc from insisting that the optional package exists.
  const specifier: string = name;
  return import(specifier);
}

async function tryTensorflow(): Promise<string> {
  const reasons: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await importOptional(pkg);
      if (await tf.setBackend('tensorflow')) return 'tensorflow';
      reasons.push(`${pkg} loaded but the tensorflow backend did not initialise`);
    } catch (err) {
      reasons.push(`${pkg}: ${firstLine(err)}`);
    }
  }
  throw new Error(reasons.join('; '));
}

/** What Dawn says about its adapter (GPUAdapterInfo, plus the flags older and newer Dawns put elsewhere). */
export interface AdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** Dawn's own field in newer builds: 'discrete GPU' | 'integrated GPU' | 'CPU' | 'unknown'. */
  adapterType?: string;
  isFallbackAdapter?: boolean;
}

const SOFTWARE_RENDERERS = /llvmpipe|lavapipe|swiftshader|softpipe|\bwarp\b|microsoft basic render/i;

/**
 * Why an adapter is a software rasteriser (Mesa llvmpipe/lavapipe, SwiftShader, WARP), or undefined for
 * a real GPU. On such an adapter every kernel runs on the CPU behind a Vulkan emulation: slower than wasm
 * by an order of magnitude (a 3-step graph took 35.7 s on llvmpipe, 2.1 s on wasm).
 */
export function softwareAdapter(info: AdapterInfo): string | undefined {
  const name = [info.description, info.device, info.architecture].find((s) => s && s.trim()) ?? info.vendor ?? 'unnamed adapter';
  const text = [info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ');
  if (info.isFallbackAdapter) return `${name} is a fallback (software) adapter`;
  if (/^cpu$/i.test(info.adapterType ?? '')) return `${name} is a CPU adapter`;
  if (info.architecture === 'software' || SOFTWARE_RENDERERS.test(text)) return `${name} is a software renderer`;
  return undefined;
}

function adapterInfo(adapter: { info?: AdapterInfo; isFallbackAdapter?: boolean }): AdapterInfo {
  const info = adapter.info ?? {};
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    adapterType: info.adapterType,
    isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter,
  };
}

function webgpuModuleUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
}

/**
 * Asks Dawn for its default adapter in a child process, so that Dawn's own stderr warnings (printed by
 * native code, which no JavaScript can silence) never reach this process's terminal when `auto` then
 * decides against WebGPU. Resolves to the adapter's info, or null when there is none.
 */
export function probeWebgpuAdapter(timeoutMs = 60_000): Promise<AdapterInfo | null> {
  const script = `
    const { create, globals } = await import(${JSON.stringify(webgpuModuleUrl())});
    Object.assign(globalThis, globals);
    const adapter = await create([]).requestAdapter();
    const info = adapter ? (adapter.info ?? {}) : null;
    process.stdout.write(JSON.stringify(info && { vendor: info.vendor, architecture: info.architecture, device: info.device,
      description: info.description, adapterType: info.adapterType, isFallbackAdapter: info.isFallbackAdapter ?? adapter.isFallbackAdapter }));
    process.exit(0);`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout) => {
      if (error) return reject(new Error(`the WebGPU adapter probe failed: ${firstLine(error)}`));
      try {
        resolve(JSON.parse(stdout) as AdapterInfo | null);
      } catch {
        reject(new Error(`the WebGPU adapter probe printed no adapter description`));
      }
    });
  });
}

/** Remarks about the adapter that `tryWebgpu` chose, said with the choice. */
let webgpuAdapterRemark = '';

async function tryWebgpu(acceptSoftware = true): Promise<string> {
  if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    const { create, globals } = (await importOptional('webgpu')) as { create: (o: string[]) => unknown; globals: object };
    // tfjs-backend-webgpu registers itself only if navigator.gpu exists when it is imported.
    Object.assign(globalThis, globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true, writable: true });
  }
  const gpu = (globalThis as unknown as { navigator: { gpu: { requestAdapter(): Promise<unknown> } } }).navigator.gpu;
  const adapter = (await gpu.requestAdapter()) as { info?: AdapterInfo; isFallbackAdapter?: boolean } | null;
  if (!adapter) throw new Error('no WebGPU adapter found');
  const software = softwareAdapter(adapterInfo(adapter));
  if (software && !acceptSoftware) throw new Error(`${software}; --backend webgpu uses it anyway`);
  webgpuAdapterRemark = software ? `; ${software}: expect it to be slower than wasm` : '';
  await importOptional('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
  return 'webgpu';
}

async function tryWasm(): Promise<string> {
  await importOptional('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  await registerSimdBatchMatMul();
  return 'wasm';
}

/** What the chosen backend runs differently than one would expect, said once with the choice. */
function backendRemarks(chosen: string): string {
  if (chosen === 'wasm' && simdBatchMatMulUnavailable) return `; batched products on tfjs's slower kernel (${simdBatchMatMulUnavailable})`;
  if (chosen === 'webgpu') return webgpuAdapterRemark;
  return '';
}

async function tryCpu(): Promise<string> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
  return 'cpu';
}

const LIBRARY_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/lib64', '/lib', '/usr/local/lib'];

/**
 * On Linux Dawn drives the GPU through Vulkan; without the loader it finds no adapter and prints a
 * warning to stderr (above the terminal UI), so `auto` skips WebGPU up front. `--backend webgpu` still tries.
 */
export function vulkanLoaderMissing(platform = process.platform, env = process.env): boolean {
  if (platform !== 'linux') return false;
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), ...LIBRARY_DIRS];
  if (dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')))) return false;
  for (const ldconfig of ['/sbin/ldconfig', '/usr/sbin/ldconfig', 'ldconfig']) {
    try {
      return !execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('libvulkan.so.1');
    } catch {
      // try the next
    }
  }
  return true;
}

/**
 * `auto`'s WebGPU attempt: only a real GPU. The adapter is probed in a child process first, so that on a
 * machine with only a software adapter Dawn is never loaded here and prints nothing.
 */
async function tryWebgpuIfHardware(): Promise<string> {
  if (vulkanLoaderMissing()) throw new Error('no Vulkan loader (libvulkan.so.1) on this machine; --backend webgpu tries anyway');
  if (!(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu) {
    const info = await probeWebgpuAdapter();
    if (!info) throw new Error('no WebGPU adapter found');
    const software = softwareAdapter(info);
    if (software) throw new Error(`${software}; --backend webgpu uses it anyway`);
  }
  return tryWebgpu(false);
}

const ATTEMPTS: Record<Exclude<BackendName, 'auto'>, Attempt> = {
  tensorflow: tryTensorflow,
  webgpu: () => tryWebgpu(true),
  wasm: tryWasm,
  cpu: tryCpu,
};

const AUTO_ORDER: Exclude<BackendName, 'auto'>[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

/**
 * Select a backend. `auto` tries tfjs-node-gpu, tfjs-node, WebGPU (Dawn), wasm, then cpu; the notes
 * say which was chosen and why each earlier one was skipped (also sent once to `log`, if given).
 */
export async function initBackend(
  name: BackendName = 'auto',
  log?: (line: string) => void,
): Promise<{ name: string; notes: string[] }> {
  const notes: string[] = [];
  if (name !== 'auto') {
    const attempt = ATTEMPTS[name];
    if (!attempt) throw new Error(`unknown backend "${name}"; choose one of auto, ${AUTO_ORDER.join(', ')}`);
    try {
      const chosen = await attempt();
      await tf.ready();
      notes.push(`backend ${chosen} (requested)${backendRemarks(chosen)}`);
      log?.(notes[0]);
      return { name: chosen, notes };
    } catch (err) {
      throw new Error(`backend "${name}" is not available: ${firstLine(err)}`);
    }
  }
  const skipped: string[] = [];
  for (const candidate of AUTO_ORDER) {
    try {
      const chosen = await (candidate === 'webgpu' ? tryWebgpuIfHardware : ATTEMPTS[candidate])();
      await tf.ready();
      notes.push(`backend ${chosen} (auto${skipped.length ? `; skipped ${skipped.join('; ')}` : ''})${backendRemarks(chosen)}`);
      log?.(notes[0]);
      return { name: chosen, notes };
    } catch (err) {
      skipped.push(`${candidate}: ${firstLine(err)}`);
    }
  }
  throw new Error(`no TensorFlow.js backend could start: ${skipped.join('; ')}`);
}
