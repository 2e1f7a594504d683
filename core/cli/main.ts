// `grpoflow` entry point: dispatches to a subcommand and exits with its code.
import { grpoflowVersion } from '../package-root.js';
import { closest } from '../graph/suggest.js';
import { EXIT_USAGE, type Command } from './command.js';
import { commands } from './commands/index.js';
import { printFailure } from './failure.js';
import { runWithFilteredStderr, wantsStderrFilter } from './native-stderr.js';

function help(list: Command[]): string {
  const width = Math.max(...list.map((c) => c.name.length));
  return [
    'grpoflow: GRPO fine-tuning of language models as a typed dataflow graph',
    '',
    'usage: grpoflow COMMAND [options]',
    '',
    ...list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'grpoflow help COMMAND   shows a command\'s options',
    'grpoflow --version      prints the version',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = commands.find((c) => c.name === rest[0]);
    process.stdout.write((topic ? topic.usage : help(commands)) + '\n');
    return 0;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`grpoflow ${grpoflowVersion()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const near = closest(name, commands.map((c) => c.name));
    process.stderr.write(`unknown command \`${name}\`${near ? ` (did you mean \`${near}\`?)` : ''}\n\n${help(commands)}\n`);
    return EXIT_USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command.usage + '\n');
    return 0;
  }
  if (wantsStderrFilter(argv, Boolean(process.stdout.isTTY))) return runWithFilteredStderr(argv);
  return command.run(rest);
}

// Node exits with 13 when the event loop empties while this module still awaits: some promise of the run
// can never settle. Say so instead of ending without a word.
process.on('exit', (exitCode) => {
  if (exitCode === 13) process.stderr.write('grpoflow stopped: the run was waiting for something that can never finish (a promise that never settles); rerun with --debug and report it\n');
});

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (error) {
  // Whatever a command did not turn into a located message itself: still one message, no stack unless --debug.
  printFailure(error, process.argv.includes('--debug'));
  code = 1;
}
// Exit now: a backend or a node may leave handles open (a GPU device, a timer) after the run has
// finished and its outputs were flushed. A pipe takes 64 KiB before a write waits for the reader
// (`grpoflow schema | ...` lost the rest), so let stdout and stderr drain first.
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit(code);
