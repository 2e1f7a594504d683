import { writeFileSync } from 'node:fs';
import { graphJsonSchema } from '../../graph/json-schema.js';
import { builtinRegistry, loadPluginInto } from '../../graph/plugin-loader.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';
import { discoverPlugins } from '../discover-plugins.js';

export const schema: Command = {
  name: 'schema',
  summary: 'Print the JSON Schema of graph files (every node config included) for editor completion',
  usage: `grpoflow schema [--out FILE] [--plugin NAME_OR_PATH]...

  Prints a JSON Schema (draft 2020-12) of graph files, with built-in and installed plugin nodes.
  Point your editor at it with a first line \`# yaml-language-server: $schema=./graph.schema.json\`.
  --out FILE   write to FILE instead of stdout`,
  async run(argv) {
    const parsed = parseCommandArgs(this, argv, { out: { type: 'string' }, plugin: { type: 'string', multiple: true } }, 0);
    if (!parsed) return EXIT_USAGE;
    const registry = (await builtinRegistry()).clone();
    for (const spec of new Set([...discoverPlugins(process.cwd()), ...(parsed.values.plugin ?? [])])) {
      await loadPluginInto(registry, spec, process.cwd());
    }
    const text = JSON.stringify(graphJsonSchema(registry), null, 2) + '\n';
    if (parsed.values.out) writeFileSync(parsed.values.out, text);
    else process.stdout.write(text);
    return 0;
  },
};
