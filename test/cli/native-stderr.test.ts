// Dawn's warnings (native fprintf to fd 2) must not tear the terminal UI: `grpoflow run` with the UI runs
// in a child whose stderr is filtered, and the warnings land in events.log. Exercised for real with
// Mesa's lavapipe (a software Vulkan driver whose limits make Dawn warn) in a pseudo-terminal.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FILTERED_CHILD_ENV, NATIVE_LOG_LINE, wantsStderrFilter } from '../../core/cli/native-stderr.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.json';

describe('native stderr filter', () => {
  it('applies to `run` drawing the UI only, and never twice', () => {
    expect(wantsStderrFilter(['run', 'g.yaml'], true, {})).toBe(true);
    expect(wantsStderrFilter(['run', 'g.yaml', '--no-tui'], true, {})).toBe(false);
    expect(wantsStderrFilter(['run', 'g.yaml'], false, {})).toBe(false);
    expect(wantsStderrFilter(['validate', 'g.yaml'], true, {})).toBe(false);
    expect(wantsStderrFilter(['run', 'g.yaml'], true, { [FILTERED_CHILD_ENV]: '1' })).toBe(false);
  });

  it("recognises Dawn's log lines and lets errors and Node's own warnings through", () => {
    expect(NATIVE_LOG_LINE.test('Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16')).toBe(true);
    expect(NATIVE_LOG_LINE.test('(node:123) Warning: something')).toBe(false);
    expect(NATIVE_LOG_LINE.test('node "train" failed: out of memory')).toBe(false);
    expect(NATIVE_LOG_LINE.test('Error: Vulkan device lost')).toBe(false);
  });

  it.skipIf((!existsSync(LAVAPIPE) || !existsSync('/usr/bin/script')) && !process.env.CI)(
    'with the UI on a terminal, --backend webgpu on lavapipe: no Dawn warning on screen, all of them in events.log',
    async () => {
      const out = mkdtempSync(path.join(os.tmpdir(), 'native-stderr-'));
      try {
        const command = `${JSON.stringify(process.execPath)} bin/grpoflow.js run graphs/examples/example-plugin.yaml --backend webgpu --out ${JSON.stringify(out)}`;
        const screen = await new Promise<string>((resolve, reject) =>
          execFile('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...process.env, VK_ICD_FILENAMES: LAVAPIPE, XDG_RUNTIME_DIR: os.tmpdir() }, timeout: 110_000 }, (error, stdout) =>
            error ? reject(error) : resolve(stdout),
          ),
        );
        expect(screen).toContain('example-plugin'); // the UI's title: it was drawn
        const events = readFileSync(path.join(out, 'events.log'), 'utf8');
        const native = events.split('\n').filter((line) => line.includes('DEBUG [native] Warning: '));
        expect(native.length).toBeGreaterThan(0);
        for (const line of native) expect(screen).not.toContain(line.slice(line.indexOf('Warning: ')));
        expect(events).toMatch(/backend webgpu \(requested\); .*llvmpipe.*software/);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
