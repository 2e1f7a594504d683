// Backend selection: explicit names, auto with its one-line explanation, clear errors.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend, probeWebgpuAdapter, softwareAdapter, vulkanLoaderMissing, type BackendName } from '../../engines/tfjs/backend.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

describe('initBackend', () => {
  it('selects cpu and wasm by name', async () => {
    expect((await initBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend('wasm')).name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it('auto picks the first that works and says once why each earlier one was skipped', async () => {
    const lines: string[] = [];
    const { name, notes } = await initBackend('auto', (line) => lines.push(line));
    expect(lines).toEqual(notes);
    expect(lines.length).toBe(1);
    expect(tf.getBackend()).toBe(name);
    expect(lines[0]).toContain(`backend ${name} (auto`);
    // tfjs-node is not installed here, so the tensorflow backend is always skipped with its reason
    if (name !== 'tensorflow') expect(lines[0]).toMatch(/skipped tensorflow: .*tfjs-node/);
    if (name === 'wasm') expect(lines[0]).toMatch(/webgpu: /);
  });

  it('an explicit backend that cannot start is an error that says why', async () => {
    await expect(initBackend('tensorflow')).rejects.toThrow(/backend "tensorflow" is not available: .*tfjs-node/);
    await expect(initBackend('tpu' as BackendName)).rejects.toThrow(/unknown backend "tpu"; choose one of auto, tensorflow, webgpu, wasm, cpu/);
  });
});

describe('vulkanLoaderMissing (auto skips WebGPU on Linux without the Vulkan loader, before Dawn warns on stderr)', () => {
  it('never on macOS or Windows (Dawn uses Metal / D3D12 there)', () => {
    expect(vulkanLoaderMissing('darwin', {})).toBe(false);
    expect(vulkanLoaderMissing('win32', {})).toBe(false);
  });
  it('finds libvulkan.so.1 on LD_LIBRARY_PATH', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vulkan-'));
    try {
      writeFileSync(join(dir, 'libvulkan.so.1'), '');
      expect(vulkanLoaderMissing('linux', { LD_LIBRARY_PATH: `/nonexistent:${dir}` })).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('software adapters (auto skips them; --backend webgpu still uses them)', () => {
  it('names llvmpipe, lavapipe, SwiftShader and CPU-type adapters as software, real GPUs not', () => {
    // As Dawn reports Mesa's llvmpipe through lavapipe on this machine.
    const llvmpipe = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)', isFallbackAdapter: true };
    expect(softwareAdapter(llvmpipe)).toMatch(/^llvmpipe: Mesa .* is a fallback \(software\) adapter$/);
    expect(softwareAdapter({ ...llvmpipe, isFallbackAdapter: undefined })).toMatch(/software renderer/);
    expect(softwareAdapter({ vendor: 'mesa', description: 'lavapipe' })).toMatch(/software renderer/);
    expect(softwareAdapter({ vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader Device (Subzero)' })).toMatch(/SwiftShader Device .* software renderer/);
    expect(softwareAdapter({ vendor: 'unknown', description: 'some adapter', adapterType: 'CPU' })).toMatch(/CPU adapter/);
    expect(softwareAdapter({ vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3', adapterType: 'discrete GPU', isFallbackAdapter: false })).toBeUndefined();
    expect(softwareAdapter({ vendor: 'mesa', architecture: 'rdna-3', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' })).toBeUndefined();
  });

  const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.json';
  describe.skipIf((!existsSync(LAVAPIPE) || vulkanLoaderMissing()) && !process.env.CI)('with Mesa lavapipe as the only Vulkan driver', () => {
    const saved = { icd: process.env.VK_ICD_FILENAMES, runtime: process.env.XDG_RUNTIME_DIR };
    beforeAll(() => {
      process.env.VK_ICD_FILENAMES = LAVAPIPE;
      process.env.XDG_RUNTIME_DIR ??= tmpdir();
    });
    afterAll(() => {
      if (saved.icd === undefined) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved.icd;
      if (saved.runtime === undefined) delete process.env.XDG_RUNTIME_DIR;
    });

    it('the adapter probe (a child process) sees a software adapter', async () => {
      const info = await probeWebgpuAdapter();
      expect(info).not.toBeNull();
      expect(softwareAdapter(info!)).toMatch(/llvmpipe|lavapipe/);
    });

    it('auto chooses wasm and says it skipped the software adapter', async () => {
      const { name, notes } = await initBackend('auto');
      expect(name).toBe('wasm');
      expect(notes[0]).toMatch(/webgpu: llvmpipe.*\(software\).*; --backend webgpu uses it anyway/);
      // Dawn was never loaded in this process.
      expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBeUndefined();
    });
  });
});
