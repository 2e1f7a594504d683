import path from 'node:path';
import { writeReport } from '../../report/html.js';
import { RunDataError } from '../../report/run-data.js';
import { parseCommandArgs } from '../args.js';
import { EXIT_USAGE, type Command } from '../command.js';

export const report: Command = {
  name: 'report',
  summary: "Write a run folder's HTML report (curves, evaluation before/after, sampled completions)",
  usage: `grpoflow report RUN_DIR [--out FILE]

  Reads RUN_DIR/metrics.jsonl, summary.json and samples.jsonl and writes one self-contained HTML page
  (inline SVG plots, nothing fetched): reward per reward function, loss, KL, learning rate, grad norm,
  completion lengths, tokens/s, evaluation before/after, sampled completions, every other metric.
  \`grpoflow run\` writes it at the end of each run; this command redraws it (also during a run).
  --out FILE   write to FILE instead of RUN_DIR/report.html`,
  async run(argv) {
    const parsed = parseCommandArgs(this, argv, { out: { type: 'string' } }, 1);
    if (!parsed) return EXIT_USAGE;
    const dir = parsed.positionals[0];
    try {
      const file = await writeReport(dir, parsed.values.out ?? path.join(dir, 'report.html'));
      process.stdout.write(`report written to ${file}\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof RunDataError)) throw error;
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
  },
};
