import { writeFileSync } from 'node:fs';
import { drawGraph, DRAW_FORMATS, type DrawFormat } from '../../graph/draw.js';
import { loadGraphFile } from '../../graph/load.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';
import { printDiagnostics } from '../print-diagnostics.js';

export const graph: Command = {
  name: 'graph',
  summary: 'Draw a graph file as Mermaid or Graphviz DOT',
  usage: `grpoflow graph GRAPH [--format mermaid|dot] [--out FILE] [--set key=value]...

  Draws the validated graph: each node with its id, type, version and ports; each edge from output
  port to input port (stream solid, latest bold, resource dotted); the feedback edge that closes the
  trainer → generator cycle dashed, red and labelled "feedback".
  --format F        mermaid (default) or dot
  --out FILE        write the drawing to FILE instead of stdout
  --set key=value   override a param (a.b=1) or a node config, as for run`,
  async run(argv) {
    const parsed = parseCommandArgs(this, argv, { format: { type: 'string' }, out: { type: 'string' }, set: { type: 'string', multiple: true } }, 1);
    if (!parsed) return EXIT_USAGE;
    const { values, positionals } = parsed;
    const format = (values.format ?? 'mermaid') as DrawFormat;
    if (!DRAW_FORMATS.includes(format)) {
      process.stderr.write(`--format must be one of ${DRAW_FORMATS.join(', ')}; got \`${values.format}\`\n`);
      return EXIT_USAGE;
    }
    const { graph: loaded, diagnostics } = await loadGraphFile(positionals[0], { set: values.set });
    printDiagnostics(diagnostics);
    if (!loaded) return 1;
    const drawing = drawGraph(loaded, format);
    if (values.out) writeFileSync(values.out, drawing);
    else process.stdout.write(drawing);
    return 0;
  },
};
