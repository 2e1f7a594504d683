import { loadGraphFile } from '../../graph/load.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';
import { printDiagnostics } from '../print-diagnostics.js';

export const validate: Command = {
  name: 'validate',
  summary: 'Check a graph file and report every problem with its line and column',
  usage: `grpoflow validate GRAPH [--set key=value]... [--json] [--allow-plugin-path]

  Reports every error (with a stable code, file:line:col and a suggestion) and warning.
  Exits 0 when the graph is valid, 1 when it has errors.
  --set key=value   override a param (a.b=1) or a node config (nodes.ID.with.key=value)
  --json            print the diagnostics as a JSON array on stdout
  --allow-plugin-path  load plugins from absolute paths or outside the graph's folder
                    (loading a plugin runs its code)`,
  async run(argv) {
    const parsed = parseCommandArgs(this, argv, { set: { type: 'string', multiple: true }, json: { type: 'boolean' }, 'allow-plugin-path': { type: 'boolean' } }, 1);
    if (!parsed) return EXIT_USAGE;
    const { values, positionals } = parsed;
    const { diagnostics } = await loadGraphFile(positionals[0], { set: values.set, allowPluginPath: values['allow-plugin-path'] === true });
    const errors = diagnostics.filter((d) => d.severity === 'error').length;
    if (values.json) process.stdout.write(JSON.stringify(diagnostics, null, 2) + '\n');
    else {
      printDiagnostics(diagnostics);
      if (errors === 0) process.stdout.write(`${positionals[0]}: valid\n`);
    }
    return errors > 0 ? 1 : 0;
  },
};
