// A CLI subcommand: one module per command in ./commands, listed in ./commands/index.ts.
import { existsSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface Command {
  name: string;
  /** One line for `grpoflow help`. */
  summary: string;
  /** Full usage text for `grpoflow help NAME` and usage errors. */
  usage: string;
  /** Runs the command; resolves to the process exit code. */
  run(argv: string[]): Promise<number>;
}

/** Exit code for bad command-line usage (distinct from 1, "the graph or run failed"). */
export const EXIT_USAGE = 2;
/** Exit code after Ctrl-C, as shells report SIGINT. */
export const EXIT_INTERRUPTED = 130;

/** A mistake in how a command was called (exit code 2), as opposed to a failure while running (1). */
export class UsageError extends Error {}

/** Where a command writes (stdout and stderr, or a test's buffers). */
export interface CommandIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Fails unless `path` (given as `--flag`) is an existing folder. */
export function requireDir(path: string, flag: string): void {
  if (!existsSync(path)) throw new Error(`--${flag} folder ${path} does not exist`);
  if (!statSync(path).isDirectory()) throw new Error(`--${flag} ${path} is not a folder`);
}

/** `util.parseArgs` with strict options and no positionals; a bad flag is a UsageError. */
export function parseOptions<const O extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; strict: true; allowPositionals: false; options: O }>>['values'] {
  try {
    return parseArgs({ args: argv, strict: true as const, allowPositionals: false as const, options }).values;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
