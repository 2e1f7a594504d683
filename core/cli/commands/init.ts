import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';
import { grpoflowVersion } from '../../package-root.js';
import { PLUGIN_NAME, packageNameOf, pluginScaffold } from '../plugin-scaffold.js';

export const init: Command = {
  name: 'init',
  summary: 'Scaffold a plugin package (init plugin NAME)',
  usage: `grpoflow init plugin NAME [--dir DIR]

  Writes a plugin package into DIR (default ./grpoflow-plugin-NAME): the node NAME/prefix, its test,
  an example graph, README and a package.json with the \`grpoflow-plugin\` keyword, the "grpoflow"
  field, grpoflow as a peer dependency and a build to JavaScript with .d.ts types (see docs/plugins.md).
  NAME is the node type namespace: lower-case letters, digits and dashes.`,
  async run(argv) {
    const parsed = parseCommandArgs(this, argv, { dir: { type: 'string' } }, 2);
    if (!parsed) return EXIT_USAGE;
    const [what, name] = parsed.positionals;
    if (what !== 'plugin') {
      process.stderr.write(`grpoflow init: unknown template \`${what}\` (only \`plugin\`)\nusage: ${this.usage}\n`);
      return EXIT_USAGE;
    }
    if (!PLUGIN_NAME.test(name)) {
      process.stderr.write(`grpoflow init plugin: \`${name}\` is not a plugin name: use lower-case letters, digits and dashes, starting with a letter\n`);
      return EXIT_USAGE;
    }
    const dir = path.resolve(parsed.values.dir ?? packageNameOf(name));
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      process.stderr.write(`grpoflow init plugin: ${dir} exists and is not empty; choose another --dir\n`);
      return 1;
    }
    const files = pluginScaffold({ name, grpoflowVersion: grpoflowVersion() });
    for (const [relative, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, relative)), { recursive: true });
      writeFileSync(path.join(dir, relative), text);
    }
    process.stdout.write(
      `wrote ${packageNameOf(name)} to ${dir}:\n${Object.keys(files).map((f) => `  ${f}`).join('\n')}\n` +
        `next: cd ${path.relative(process.cwd(), dir) || '.'} && npm install && npm test && npm pack\n`,
    );
    return 0;
  },
};
