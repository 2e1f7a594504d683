// Command-line parsing shared by the commands: Node's util.parseArgs, with usage errors printed the same way.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Command } from './command.js';

type Options = NonNullable<ParseArgsConfig['options']>;
/** Named so the declaration build can write it (util's own result type is not exported). */
type ParsedCommandArgs<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: boolean; strict: true }>>;

/** Parses `argv` for `command`; on a usage error prints it with the usage text and returns undefined. */
export function parseCommandArgs<O extends Options>(command: Pick<Command, 'usage'>, argv: string[], options: O, positionals: number): ParsedCommandArgs<O> | undefined {
  try {
    const parsed = parseArgs({ args: argv, options, allowPositionals: positionals > 0, strict: true });
    if (parsed.positionals.length !== positionals) throw new Error(positionals === 1 ? 'expected one graph file' : `expected ${positionals} arguments`);
    return parsed;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\nusage: ${command.usage}\n`);
    return undefined;
  }
}
