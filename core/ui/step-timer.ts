// Seconds per step and time left, from the arrival times of the last few steps (a moving window, so
// the estimate follows a run that speeds up after warm-up). Time spent on something else that holds
// training up (an evaluation) can be excluded, so it does not count as time per step.

export class StepTimer {
  private readonly marks: { step: number; time: number }[] = [];
  /** Milliseconds excluded so far; marks are kept on a clock that stops for them. */
  private excluded = 0;

  constructor(
    private readonly startedAt: number,
    private readonly window = 10,
  ) {}

  /** Record that `step` finished at `time` (ms). Steps that go backwards are ignored. */
  mark(step: number, time: number): void {
    const last = this.marks.at(-1);
    if (last && step <= last.step) return;
    this.marks.push({ step, time: time - this.excluded });
    if (this.marks.length > this.window + 1) this.marks.shift();
  }

  /** Leave `ms` (e.g. an evaluation that held training up) out of the time per step. */
  exclude(ms: number): void {
    if (ms > 0) this.excluded += ms;
  }

  get step(): number {
    return this.marks.at(-1)?.step ?? 0;
  }

  /** Seconds per step over the window; the first step is measured from the start of the run. */
  secondsPerStep(): number | undefined {
    const last = this.marks.at(-1);
    if (!last) return undefined;
    const first = this.marks.length > 1 ? this.marks[0] : { step: 0, time: this.startedAt };
    const steps = last.step - first.step;
    return steps > 0 ? (last.time - first.time) / 1000 / steps : undefined;
  }

  etaSeconds(totalSteps: number): number | undefined {
    const sps = this.secondsPerStep();
    return sps === undefined ? undefined : Math.max(0, totalSteps - this.step) * sps;
  }
}
