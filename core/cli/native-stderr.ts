// Dawn (the native library behind WebGPU) prints its warnings with fprintf to file descriptor 2, which no
// JavaScript can redirect; printed while the terminal UI is drawn, they tear its frame. So `grpoflow run`
// with the UI runs the command in a child process whose stderr is a pipe: lines in Dawn's log format go
// back to the child over IPC, which records them in events.log (level debug, node `native`, not shown
// in the UI); every other line passes through to the terminal unchanged.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** Dawn's log lines: `Warning: ...`, `Info: ...`, `Debug: ...` (errors pass through: they matter). */
export const NATIVE_LOG_LINE = /^(Warning|Info|Debug): /;
/** Set in the child, so it does not start a child of its own. */
export const FILTERED_CHILD_ENV = 'GRPOFLOW_STDERR_FILTERED';

interface NativeLineMessage {
  nativeStderr: string;
}

/** Whether this invocation draws the terminal UI and so needs its stderr filtered. */
export function wantsStderrFilter(argv: readonly string[], stdoutIsTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return (
    argv[0] === 'run' &&
    stdoutIsTTY &&
    !argv.includes('--no-tui') &&
    !argv.includes('--help') &&
    !argv.includes('-h') &&
    env[FILTERED_CHILD_ENV] === undefined
  );
}

/** Runs this same CLI invocation in a child with stderr filtered; resolves to its exit code. */
export function runWithFilteredStderr(argv: readonly string[]): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...argv], {
    stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, [FILTERED_CHILD_ENV]: '1' },
  });
  // Ctrl-C (and SIGHUP when the terminal closes) reaches the child from the terminal (same process
  // group); the child decides, we wait for it. A SIGTERM is passed on (a repeated one the child ignores).
  const ignoreSigint = () => {};
  const forwardSigterm = () => child.kill('SIGTERM');
  process.on('SIGINT', ignoreSigint);
  process.on('SIGHUP', ignoreSigint);
  process.on('SIGTERM', forwardSigterm);
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (NATIVE_LOG_LINE.test(line) && child.connected) child.send({ nativeStderr: line } satisfies NativeLineMessage, () => {});
    else process.stderr.write(line + '\n');
  });
  return new Promise((resolve) => {
    child.on('error', (error) => {
      process.stderr.write(`could not start grpoflow: ${error.message}\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => {
      process.off('SIGINT', ignoreSigint);
      process.off('SIGHUP', ignoreSigint);
      process.off('SIGTERM', forwardSigterm);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}

/** In the child: hands each native stderr line the parent took off the terminal to `record`. */
export function onNativeStderr(record: (line: string) => void): () => void {
  if (!process.send) return () => {};
  const handler = (message: unknown) => {
    const line = (message as Partial<NativeLineMessage> | null)?.nativeStderr;
    if (typeof line === 'string') record(line);
  };
  process.on('message', handler);
  // The IPC channel must not keep the process alive on its own.
  (process.channel as { unref?: () => void } | undefined)?.unref?.();
  return () => process.off('message', handler);
}
