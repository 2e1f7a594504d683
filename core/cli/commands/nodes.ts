import { describeEngines, describeRegistry, type NodeDescription } from '../../graph/describe.js';
import { loadPluginInto, builtinRegistry } from '../../graph/plugin-loader.js';
import { PluginLoadError } from '../../registry.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';
import { discoverPlugins } from '../discover-plugins.js';
import { nodesMarkdown } from '../nodes-markdown.js';

function formatNode(n: NodeDescription): string {
  const ports = (p: NodeDescription['inputs']) =>
    Object.entries(p)
      .map(([name, d]) => `${name}: ${d.kind}<${d.type}>${d.multiple ? '[]' : ''}${d.optional ? '?' : ''}${d.feedback ? ' (feedback)' : ''}`)
      .join(', ') || '-';
  const props = (n.config.properties ?? {}) as Record<string, { type?: unknown; default?: unknown }>;
  const required = new Set((n.config.required ?? []) as string[]);
  const fields =
    Object.entries(props)
      .map(([k, v]) => `${k}${required.has(k) ? '' : '?'}${v.default !== undefined ? `=${JSON.stringify(v.default)}` : ''}`)
      .join(', ') || '-';
  return [
    `${n.type} v${n.version}${n.latest ? '' : ' (older version)'}  [${n.plugin}]`,
    ...(n.description ? [`  ${n.description}`] : []),
    `  in:   ${ports(n.inputs)}`,
    `  out:  ${ports(n.outputs)}`,
    `  with: ${fields}`,
  ].join('\n');
}

export const nodes: Command = {
  name: 'nodes',
  summary: 'List every node type (built-in and installed plugins) with ports and config fields',
  usage: `grpoflow nodes [--json | --markdown] [--plugin NAME_OR_PATH]...

  Lists built-in nodes and those of every installed plugin (packages with the keyword
  \`grpoflow-plugin\` and a "grpoflow" field in package.json), plus any --plugin given,
  then the rollout engines, architectures and chat templates they register.
  --json       machine-readable output: {nodes (config as JSON Schema), rolloutEngines, modelEngines,
               architectures, chatTemplates}
  --markdown   the node reference as Markdown (docs/nodes.md is generated this way)`,
  async run(argv) {
    const parsed = parseCommandArgs(this, argv, { json: { type: 'boolean' }, markdown: { type: 'boolean' }, plugin: { type: 'string', multiple: true } }, 0);
    if (!parsed) return EXIT_USAGE;
    const registry = (await builtinRegistry()).clone();
    let failed = false;
    for (const spec of [...discoverPlugins(process.cwd()), ...(parsed.values.plugin ?? [])]) {
      try {
        await loadPluginInto(registry, spec, process.cwd());
      } catch (e) {
        if (!(e instanceof PluginLoadError)) throw e;
        // A plugin found by discovery and also named with --plugin is not a real conflict.
        if (e.code === 'DUPLICATE_NODE_TYPE' && (e.details as { existing?: string }).existing?.includes(spec)) continue;
        process.stderr.write(`${e.code}: ${e.message}\n`);
        failed = true;
      }
    }
    const list = describeRegistry(registry);
    const extras = describeEngines(registry);
    if (parsed.values.json) process.stdout.write(JSON.stringify({ nodes: list, ...extras }, null, 2) + '\n');
    else if (parsed.values.markdown) process.stdout.write(nodesMarkdown(list));
    else {
      const named = (items: { name: string; origin: string }[]) => items.map(({ name, origin }) => (origin === 'core' ? name : `${name} [${origin}]`)).join(', ');
      const rollout = extras.rolloutEngines.map((e) => `rollout engine ${e.name}  [${e.plugin}]\n  ${e.description}\n  threads: ${e.threads.join(', ')}`);
      const model = extras.modelEngines.map((e) => `model engine ${e.name}  [${e.plugin}]\n  ${e.description}`);
      const architectures = `architectures: ${named(extras.architectures)}`;
      const templates = `chat templates: ${named(extras.chatTemplates)}`;
      process.stdout.write([...list.map(formatNode), ...rollout, ...model, architectures, templates].join('\n\n') + '\n');
    }
    return failed ? 1 : 0;
  },
};
