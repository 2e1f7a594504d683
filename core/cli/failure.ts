// A failure reported as one message on stderr: the located sentence, and the stack only with --debug
// (a stack is for whoever debugs grpoflow, not for whoever wrote a graph with a wrong path in it).
import { NodeRunError } from '../runtime/run-graph.js';

/** The one-line message of a failure. A node's failure already names the node and its cause. */
export function failureMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The stack worth printing under --debug: the cause's for a node failure (where it went wrong). */
function failureStack(error: unknown): string | undefined {
  const origin = error instanceof NodeRunError ? error.cause : error;
  return origin instanceof Error ? origin.stack : undefined;
}

export function printFailure(error: unknown, debug: boolean, write: (text: string) => void = (t) => process.stderr.write(t)): void {
  write(`${failureMessage(error)}\n`);
  const stack = debug ? failureStack(error) : undefined;
  if (stack) write(`${stack}\n`);
}
