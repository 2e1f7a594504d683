// Utilisation: the fraction of wall time a worker of the pipeline (the generator, the trainer) spent
// working, from its first piece of work until now. Published as `busy` for the UI's utilisation line.
export class BusyMeter {
  private firstStart: number | undefined;
  private busyTotal = 0;
  private runningSince: number | undefined;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Runs `work` and counts its duration as busy time. */
  async track<T>(work: () => Promise<T> | T): Promise<T> {
    this.start();
    try {
      return await work();
    } finally {
      this.stop();
    }
  }

  start(): void {
    if (this.runningSince !== undefined) return;
    const t = this.now();
    this.firstStart ??= t;
    this.runningSince = t;
  }

  stop(): void {
    if (this.runningSince === undefined) return;
    this.busyTotal += this.now() - this.runningSince;
    this.runningSince = undefined;
  }

  /** Counts `ms` of work that just finished (measured elsewhere, e.g. in a worker thread). */
  add(ms: number): void {
    const t = this.now();
    this.firstStart ??= t - ms;
    this.busyTotal += ms;
  }

  /** Milliseconds spent working (including a piece of work still running). */
  get busyMs(): number {
    return this.busyTotal + (this.runningSince === undefined ? 0 : this.now() - this.runningSince);
  }

  /** busy / elapsed since the first start, in [0, 1]; 0 before any work. */
  fraction(): number {
    if (this.firstStart === undefined) return 0;
    const elapsed = this.now() - this.firstStart;
    return elapsed > 0 ? Math.min(1, this.busyMs / elapsed) : 1;
  }
}
