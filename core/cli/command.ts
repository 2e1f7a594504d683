// A CLI subcommand: one module per command in ./commands, listed in ./commands/index.ts.
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
