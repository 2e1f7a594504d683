// The files of a new plugin package, written by `grpoflow init plugin NAME`: one node (a stream transform
// on prompts), its test, an example graph, README, and a package.json that makes it discoverable (keyword
// `grpoflow-plugin`, the "grpoflow" field) and publishable (TypeScript compiled to dist/ with .d.ts).
import { PLUGIN_API_VERSION } from '../plugin.js';

/** Plugin namespaces become node type prefixes (`NAME/prefix`): lower-case letters, digits and dashes. */
export const PLUGIN_NAME = /^[a-z][a-z0-9-]*$/;

export interface ScaffoldOptions {
  /** The plugin namespace (`NAME/prefix`); the package is `grpoflow-plugin-NAME`. */
  name: string;
  /** The grpoflow version the plugin is written against (its peer dependency's lower bound). */
  grpoflowVersion: string;
}

export function packageNameOf(name: string): string {
  return `grpoflow-plugin-${name}`;
}

/** Relative path → file contents. */
export function pluginScaffold({ name, grpoflowVersion }: ScaffoldOptions): Record<string, string> {
  const packageName = packageNameOf(name);
  const json = (value: unknown) => JSON.stringify(value, null, 2) + '\n';
  return {
    'package.json': json({
      name: packageName,
      version: '0.1.0',
      description: `grpoflow plugin ${name}: node types ${name}/*`,
      type: 'module',
      license: 'MIT',
      keywords: ['grpoflow-plugin', 'grpoflow'],
      grpoflow: { apiVersion: PLUGIN_API_VERSION, plugin: './dist/index.js' },
      exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
      types: './dist/index.d.ts',
      files: ['dist', '!dist/**/*.test.*', 'README.md'],
      scripts: {
        build: 'tsc -p .',
        prepack: 'npm run build',
        test: 'node --import tsx --test src/*.test.ts',
        validate: 'grpoflow validate example.yaml',
      },
      peerDependencies: { grpoflow: `>=${grpoflowVersion}`, rxjs: '^7.8.0', zod: '^4.0.0' },
      devDependencies: { grpoflow: `^${grpoflowVersion}`, rxjs: '^7.8.0', zod: '^4.0.0', tsx: '^4.0.0', typescript: '^5.9.0', '@types/node': '^20.0.0' },
    }),
    'tsconfig.json': json({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        declaration: true,
        outDir: 'dist',
        rootDir: 'src',
        skipLibCheck: true,
        types: ['node'],
      },
      include: ['src'],
      exclude: ['src/**/*.test.ts'],
    }),
    '.gitignore': 'node_modules/\ndist/\n*.tgz\n',
    'src/index.ts': `// The plugin: its node types register as \`${name}/<type>\`.
import { definePlugin, PLUGIN_API_VERSION } from 'grpoflow';
import { prefix } from './prefix.js';

export default definePlugin({ name: '${name}', apiVersion: PLUGIN_API_VERSION, nodes: [prefix] });
`,
    'src/prefix.ts': `// ${name}/prefix: a stream transform that puts a fixed text before each user message of a prompt.
import { defineNode, ports } from 'grpoflow';
import { map } from 'rxjs';
import { z } from 'zod';

export const prefix = defineNode({
  type: 'prefix',
  version: 1,
  description: 'Puts a fixed text before the content of each user message.',
  inputs: { prompts: { type: ports.prompts } },
  outputs: { prompts: { type: ports.prompts } },
  config: z.strictObject({ text: z.string().describe('Text put before each user message.') }),
  run(ctx, inputs) {
    return {
      prompts: inputs.prompts.pipe(
        map((p) => ({ ...p, messages: p.messages.map((m) => (m.role === 'user' ? { ...m, content: ctx.config.text + m.content } : m)) })),
      ),
    };
  },
});
`,
    'src/prefix.test.ts': `// Runs the node's \`run\` on a small stream, as the graph runtime would, and checks what comes out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeContext, PromptRecord } from 'grpoflow';
import { firstValueFrom, of, toArray } from 'rxjs';
import plugin from './index.js';
import { prefix } from './prefix.js';

function context(config: { text: string }): NodeContext<{ text: string }> {
  return {
    id: 'test',
    config: prefix.config.parse(config),
    signal: new AbortController().signal,
    metrics: { publish() {}, event() {} },
    outDir: '.',
    baseDir: '.',
    services: {},
    onTeardown() {},
    outputReady: async () => {},
  };
}

test('prefixes user messages and leaves the others', async () => {
  const prompt: PromptRecord = {
    id: 'q1',
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is 2 + 3?' },
    ],
    fields: { answer: '5' },
  };
  const out = await prefix.run(context({ text: 'Q: ' }), { prompts: of(prompt) });
  const [result] = await firstValueFrom(out.prompts!.pipe(toArray()));
  assert.deepEqual(result.messages, [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Q: What is 2 + 3?' },
  ]);
});

test('rejects a config without text', () => {
  assert.throws(() => prefix.config.parse({}));
});

test('the plugin registers the node under its namespace', () => {
  assert.equal(plugin.name, '${name}');
  assert.deepEqual(plugin.nodes.map((n) => n.type), ['prefix']);
});
`,
    'example.yaml': `# A graph using this plugin: arithmetic prompts through ${name}/prefix into the debug logger.
# \`npx grpoflow run example.yaml --no-tui\` (installed plugins are found in node_modules; no \`plugins:\` needed).
apiVersion: grpoflow/v1
kind: Graph
metadata:
  name: ${name}-example
nodes:
  questions:
    type: dataset.synthetic
    with:
      count: 3
      test_size: 0
  prefixed:
    type: ${name}/prefix
    in:
      prompts: questions.prompts
    with:
      text: "Question: "
  log:
    type: debug.log
    in:
      items: prefixed.prompts
    with:
      label: prefixed
`,
    'README.md': `# ${packageName}

A [grpoflow](https://www.npmjs.com/package/grpoflow) plugin. Node types:

- \`${name}/prefix\` v1: puts a fixed text (\`with: {text}\`) before each user message of a prompt stream.

## Use

\`\`\`sh
npm install grpoflow ${packageName}
npx grpoflow nodes            # lists ${name}/prefix
npx grpoflow run example.yaml --no-tui
\`\`\`

An installed plugin is usable by every graph beside its node_modules; a graph needs \`plugins:\` only to
load a plugin from a path.

## Develop

\`\`\`sh
npm install
npm test          # node:test through tsx, on the TypeScript sources
npm run build     # dist/ with .d.ts (also run by npm pack / npm publish)
npm pack          # the tarball users install
\`\`\`

See grpoflow's docs/plugins.md for the plugin API, testing and publishing.
`,
  };
}
