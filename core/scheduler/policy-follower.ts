// The generator's view of the trainer: the latest snapshot on the `policy` feedback stream, and the
// staleness bound. A trainer announces its starting snapshot (version v₀: 0, or the step it resumed at)
// before it trains, then sends one after every optimiser step. Batch k of this run will be trained at
// step v₀ + k·μ (μ = stepsPerBatch, the trainer's num_iterations), so it may start once the latest
// version v satisfies v₀ + k·μ − v ≤ maxStaleness: generation never runs more than maxStaleness
// optimiser steps ahead of training. maxStaleness 0 is the strict on-policy schedule (batch k waits
// for the trainer to finish batch k − 1). A trainer that draws several rollout batches for one step
// (dynamic sampling) says how many extra it took (`extraBatches`): batch k then counts as k − extra.
import type { Observable, Subscription } from 'rxjs';
import type { PolicySnapshot } from '../ports.js';

/** The oldest policy version batch `batchIndex` may be sampled with. */
export function requiredPolicyVersion(batchIndex: number, maxStaleness: number, stepsPerBatch = 1): number {
  if (!(Number.isInteger(maxStaleness) && maxStaleness >= 0)) throw new Error(`max_staleness must be a whole number ≥ 0, got ${maxStaleness}`);
  if (!(Number.isInteger(stepsPerBatch) && stepsPerBatch >= 1)) throw new Error(`policy: stepsPerBatch must be a whole number ≥ 1, got ${stepsPerBatch}`);
  return Math.max(0, batchIndex * stepsPerBatch - maxStaleness);
}

export type Admission = { status: 'ready'; version: number } | { status: 'ended'; version: number };

export class PolicyFollower {
  private snapshot: PolicySnapshot | undefined;
  /** The version the trainer started this run at: its first snapshot's. */
  private startVersionSeen: number | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly subscription: Subscription | undefined;
  /** Whether a policy stream is connected (else nothing is ever waited for). */
  readonly hasTrainer: boolean = false;

  /**
   * `policy$` absent: no trainer feeds back, so every batch may start at once (version 0). `onArrival`
   * may complete a snapshot the moment it arrives (synchronously, while the trainer still holds the
   * weights at that version).
   */
  constructor(
    policy$: Observable<PolicySnapshot> | undefined,
    onArrival: (snapshot: PolicySnapshot) => PolicySnapshot = (s) => s,
    /** Batch 0 too waits for the trainer's first snapshot (a resumed run: the checkpoint's weights). */
    private readonly firstWaits = false,
  ) {
    if (!policy$) return;
    this.hasTrainer = true;
    this.subscription = policy$.subscribe({
      next: (snapshot) => {
        if (!Number.isInteger(snapshot?.version) || snapshot.version < 0) {
          this.failure ??= { error: new Error(`policy: snapshot version must be a whole number ≥ 0, got ${snapshot?.version}`) };
        } else if (!this.snapshot || snapshot.version >= this.snapshot.version) {
          try {
            this.snapshot = onArrival(snapshot);
            this.startVersionSeen ??= snapshot.version;
          } catch (error) {
            this.failure ??= { error };
          }
        }
        this.wake();
      },
      error: (error) => {
        this.failure ??= { error };
        this.wake();
      },
      complete: () => {
        this.ended = true;
        this.wake();
      },
    });
  }

  /** The newest snapshot seen, if any. */
  get latest(): PolicySnapshot | undefined {
    return this.snapshot;
  }

  /** The version the trainer started this run at (0 until it announced itself). */
  get startVersion(): number {
    return this.startVersionSeen ?? 0;
  }

  /** The newest version seen (0 before the first snapshot: the initial weights). */
  get version(): number {
    return this.snapshot?.version ?? 0;
  }

  /**
   * Resolves once batch `batchIndex` (counted from 0 in this run) may start: `ready` when the latest
   * version is at least v₀ + requiredPolicyVersion (after batch 0, only once the trainer has announced
   * itself), or `ended` when the policy stream completed first (the trainer finished: no such version
   * will come). Rejects when `signal` aborts or the policy stream fails.
   *
   * `onReady` runs synchronously at the moment of admission — inside the trainer's announcement, before
   * the trainer can start its next (blocking) step — so work handed to another thread from it starts at
   * once instead of after that step.
   */
  admit(batchIndex: number, maxStaleness: number, signal?: AbortSignal, onReady?: () => void): Promise<Admission> {
    requiredPolicyVersion(batchIndex, maxStaleness); // validates the arguments now, not on some later wake-up
    return new Promise<Admission>((resolve, reject) => {
      const check = (): boolean => {
        if (signal?.aborted) reject(signal.reason ?? new Error('aborted'));
        else if (this.failure) reject(this.failure.error);
        else if (this.admits(batchIndex, maxStaleness)) {
          onReady?.();
          resolve({ status: 'ready', version: this.version });
        }
        else if (this.ended) resolve({ status: 'ended', version: this.version });
        else return false;
        return true;
      };
      try {
        if (check()) return;
      } catch (error) {
        reject(error);
        return;
      }
      const onChange = () => {
        let settled: boolean;
        try {
          settled = check();
        } catch (error) {
          reject(error);
          settled = true;
        }
        if (!settled) return;
        this.waiters.delete(onChange);
        signal?.removeEventListener('abort', onChange);
      };
      this.waiters.add(onChange);
      signal?.addEventListener('abort', onChange, { once: true });
    });
  }

  close(): void {
    this.subscription?.unsubscribe();
    this.wake();
  }

  private admits(batchIndex: number, maxStaleness: number): boolean {
    if (!this.hasTrainer || (batchIndex === 0 && !this.firstWaits)) return true;
    if (!this.snapshot) return false;
    const trainingBatch = Math.max(0, batchIndex - (this.snapshot.extraBatches ?? 0));
    return this.snapshot.version >= this.startVersion + requiredPolicyVersion(trainingBatch, maxStaleness, this.snapshot.stepsPerBatch ?? 1);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
