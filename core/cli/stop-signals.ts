// How a run is stopped from outside: SIGINT (Ctrl-C), SIGTERM (kill, a scheduler's time limit), SIGHUP
// (the terminal closed) all stop it the same way: the nodes tear down (the trainer writes a checkpoint)
// and the process exits with the shell's code for that signal, 128 + its number. A second Ctrl-C exits
// at once without waiting for the teardown.
//
// A launcher between the user and this process may die without passing its signal on: `npx grpoflow`
// runs `npm exec`, which runs `sh -c grpoflow`, and a SIGTERM to npm leaves this process running as an
// orphan (measured: npm exits, the shell exits, node keeps training with parent pid 1). So the parent is
// watched too: when it goes away (our parent pid changes), the run stops as for SIGHUP.
export const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** The exit code of a run stopped by `signal`, as shells report it (128 + the signal's number). */
export const SIGNAL_EXIT_CODE: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export interface StopSignalOptions {
  /** Called once, on the first signal (or the parent's exit): stop the run gracefully. */
  stop(signal: StopSignal, why: string): void;
  /** How often the parent process is checked, ms (0: not watched). */
  parentPollMs?: number;
  write?: (text: string) => void;
  /** Called on a second signal; default process.exit. */
  exitNow?: (code: number) => void;
}

export interface StopSignalWatch {
  /** The signal that stopped the run, if one did. */
  readonly received: StopSignal | undefined;
  dispose(): void;
}

export function watchStopSignals(options: StopSignalOptions): StopSignalWatch {
  const write = options.write ?? ((text: string) => process.stderr.write(text));
  const exitNow = options.exitNow ?? ((code: number) => process.exit(code));
  let received: StopSignal | undefined;
  const onSignal = (signal: StopSignal, why: string) => {
    if (received !== undefined) {
      // Only a second Ctrl-C is the user's "now": a SIGTERM or SIGHUP can arrive twice on its own (the
      // terminal's to the whole process group, and the UI's parent process passing its own on).
      if (signal !== 'SIGINT') return;
      write(`${signal} again: exiting without waiting for the checkpoint\n`);
      exitNow(SIGNAL_EXIT_CODE[signal]);
      return;
    }
    received = signal;
    write(`\n${why}: stopping nodes and writing a checkpoint (Ctrl-C again to quit at once)\n`);
    options.stop(signal, why);
  };
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => onSignal(signal, signal === 'SIGINT' ? 'interrupted' : `received ${signal}`);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  const parent = process.ppid;
  const pollMs = options.parentPollMs ?? 1000;
  const timer =
    pollMs > 0
      ? setInterval(() => {
          if (process.ppid !== parent && received === undefined) onSignal('SIGHUP', `the parent process (pid ${parent}) exited`);
        }, pollMs)
      : undefined;
  timer?.unref();
  return {
    get received() {
      return received;
    },
    dispose() {
      for (const [signal, handler] of handlers) process.off(signal, handler);
      if (timer) clearInterval(timer);
    },
  };
}
