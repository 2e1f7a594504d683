// Backend selection: explicit names, auto with its one-line explanation, clear errors.
import { describe, expect, it } from 'vitest';
import { tf } from '../../engines/tfjs/tf.js';
import { initBackend, vulkanLoaderMissing, type BackendName } from '../../engines/tfjs/backend.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
