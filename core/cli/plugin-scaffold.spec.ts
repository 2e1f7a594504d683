import { describe, expect, it } from 'vitest';
import { PLUGIN_API_VERSION } from '../plugin.js';
import { PLUGIN_NAME, pluginScaffold } from './plugin-scaffold.js';

describe('pluginScaffold', () => {
  const files = pluginScaffold({ name: 'demo', grpoflowVersion: '1.2.3' });
  const manifest = JSON.parse(files['package.json']) as Record<string, any>;

  it('makes a package grpoflow discovers: keyword, grpoflow field pointing at the built plugin', () => {
    expect(manifest.name).toBe('grpoflow-plugin-demo');
    expect(manifest.keywords).toContain('grpoflow-plugin');
    expect(manifest.grpoflow).toEqual({ apiVersion: PLUGIN_API_VERSION, plugin: './dist/index.js' });
  });

  it('depends on grpoflow as a peer and builds to JavaScript with .d.ts when packed', () => {
    expect(manifest.peerDependencies.grpoflow).toBe('>=1.2.3');
    expect(manifest.scripts.prepack).toBe('npm run build');
    expect(JSON.parse(files['tsconfig.json']).compilerOptions).toMatchObject({ declaration: true, outDir: 'dist' });
    expect(manifest.files).toContain('dist');
  });

  it('has a node, its test, a README and an example graph using the node', () => {
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['src/index.ts', 'src/prefix.ts', 'src/prefix.test.ts', 'README.md', 'example.yaml']));
    expect(files['src/index.ts']).toContain("name: 'demo'");
    expect(files['example.yaml']).toContain('type: demo/prefix');
  });

  it('accepts namespaces usable in node types only', () => {
    expect(PLUGIN_NAME.test('my-plugin2')).toBe(true);
    for (const bad of ['My', '1x', 'a/b', 'a_b', '']) expect(PLUGIN_NAME.test(bad)).toBe(false);
  });
});
