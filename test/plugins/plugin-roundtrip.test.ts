// The plugin author's round trip, as a user would do it: scaffold a plugin, build and pack it, pack
// grpoflow (its prepack builds dist/), install both into a fresh folder, then list, validate and run a
// graph with the plugin's node from the installed packages only. Installs prefer the npm cache and skip
// optional dependencies (node-llama-cpp's platform binaries) and install scripts, to stay quick in CI.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const INSTALL = ['install', '--prefer-offline', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund'];

describe('plugin round trip: init plugin → npm pack → install beside packed grpoflow → run', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'grpoflow-plugin-roundtrip-'));
  const pluginDir = path.join(work, 'plugin');
  const consumer = path.join(work, 'consumer');
  const sh = (cmd: string, args: string[], cwd: string) => execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const grpoflow = (...args: string[]) => sh(process.execPath, [path.join(consumer, 'node_modules/grpoflow/bin/grpoflow.js'), ...args], consumer);

  beforeAll(() => {
    sh(process.execPath, [path.join(REPO, 'bin/grpoflow.js'), 'init', 'plugin', 'demo', '--dir', pluginDir], work);
    const grpoflowTarball = sh(NPM, ['pack', '--silent', '--pack-destination', work], REPO).trim().split('\n').pop()!;
    mkdirSync(consumer);
    writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    sh(NPM, [...INSTALL, path.join(work, grpoflowTarball)], consumer);
    // Build the plugin against the installed grpoflow's .d.ts (its dev dependencies, less typescript
    // and @types/node, which come from this repository to spare a download).
    symlinkSync(path.join(consumer, 'node_modules'), path.join(pluginDir, 'node_modules'));
    sh(process.execPath, [path.join(REPO, 'node_modules/typescript/bin/tsc'), '-p', '.', '--typeRoots', path.join(REPO, 'node_modules/@types')], pluginDir);
    const pluginTarball = sh(NPM, ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], pluginDir).trim().split('\n').pop()!;
    rmSync(path.join(pluginDir, 'node_modules'));
    sh(NPM, [...INSTALL, path.join(work, grpoflowTarball), path.join(work, pluginTarball)], consumer);
    // In a subfolder: plugins are found in node_modules above the graph, as Node resolves packages.
    mkdirSync(path.join(consumer, 'graphs'));
    cpSync(path.join(pluginDir, 'example.yaml'), path.join(consumer, 'graphs/example.yaml'));
  }, 240_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships compiled JavaScript with .d.ts and no sources, tests or benches', () => {
    const installed = path.join(consumer, 'node_modules/grpoflow');
    const manifest = JSON.parse(readFileSync(path.join(installed, 'package.json'), 'utf8')) as { types: string };
    expect(readFileSync(path.join(installed, manifest.types), 'utf8')).toContain("export * from './plugin.js';");
    expect(readFileSync(path.join(installed, 'dist/core/plugin.d.ts'), 'utf8')).toContain('export declare function definePlugin(');
    const files = execFileSync('find', ['.', '-type', 'f'], { cwd: installed, encoding: 'utf8' }).split('\n');
    expect(files).toContain('./dist/core/cli/main.js');
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    expect(files.filter((f) => /\.(spec|test)\.|\/bench\//.test(f))).toEqual([]);
  });

  it('the scaffold\'s own tests pass', () => {
    symlinkSync(path.join(consumer, 'node_modules'), path.join(pluginDir, 'node_modules'));
    try {
      // The repository's tsx: the consumer's lacks esbuild's platform binary (optional dependencies omitted).
      const out = sh(process.execPath, ['--import', path.join(REPO, 'node_modules/tsx/dist/loader.mjs'), '--test', 'src/prefix.test.ts'], pluginDir);
      expect(out).toMatch(/^# pass 3$/m);
      expect(out).toMatch(/^# fail 0$/m);
    } finally {
      rmSync(path.join(pluginDir, 'node_modules'));
    }
  });

  it('nodes lists the installed plugin, and validate and run use it without a plugins: entry', () => {
    expect(grpoflow('nodes')).toMatch(/^demo\/prefix v1 {2}\[demo\]$/m);
    expect(readFileSync(path.join(consumer, 'graphs/example.yaml'), 'utf8')).not.toMatch(/^plugins:/m);
    expect(grpoflow('validate', 'graphs/example.yaml')).toContain('example.yaml: valid');
    grpoflow('run', 'graphs/example.yaml', '--no-tui', '--out', 'out');
    const logged = readFileSync(path.join(consumer, 'out/events.log'), 'utf8').split('\n').filter((l) => l.includes('[log] prefixed'));
    expect(logged).toHaveLength(3);
    for (const line of logged) expect(line).toMatch(/"role":"user","content":"Question: [A-Z]/);
  });
});
