// The generator's view of the trainer: the latest policy snapshot from the `policy` feedback stream,
// and the staleness bound. Batch k may start once the latest version v satisfies k − v ≤ maxStaleness,
// so generation never runs more than maxStaleness optimiser steps ahead of training (0: strictly
// on-policy — batch k waits for the trainer's step k).
import type { Observable, Subscription } from 'rxjs';
import type { PolicySnapshot } from '../ports.js';

/** The oldest policy version batch `batchIndex` may be sampled with. */
export function requiredPolicyVersion(batchIndex: number, maxStaleness: number): number {
  if (!(Number.isInteger(maxStaleness) && maxStaleness >= 0)) throw new Error(`max_staleness must be a whole number ≥ 0, got ${maxStaleness}`);
  return Math.max(0, batchIndex - maxStaleness);
}

export type PolicyWait = { status: 'ready'; version: number } | { status: 'ended'; version: number };

export class PolicyFollower {
  private snapshot: PolicySnapshot | undefined;
  private ended = false;
  private failure: { error: unknown } | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly subscription: Subscription | undefined;
  /** Whether a policy stream is connected (else nothing is ever waited for). */
  readonly hasTrainer: boolean = false;

  /** `policy$` absent: no trainer feeds back, so every batch may start at once (version 0). */
  constructor(policy$: Observable<PolicySnapshot> | undefined) {
    if (!policy$) return;
    this.subscription = policy$.subscribe({
      next: (snapshot) => {
        if (!Number.isInteger(snapshot?.version) || snapshot.version < 0) {
          this.failure = { error: new Error(`policy: snapshot version must be a whole number ≥ 0, got ${snapshot?.version}`) };
        } else if (!this.snapshot || snapshot.version >= this.snapshot.version) this.snapshot = snapshot;
        this.wake();
      },
      error: (error) => {
        this.failure = { error };
        this.wake();
      },
      complete: () => {
        this.ended = true;
        this.wake();
      },
    });
    this.hasTrainer = true;
  }

  /** The newest snapshot seen, if any. */
  get latest(): PolicySnapshot | undefined {
    return this.snapshot;
  }

  /** The newest version seen (0 before the first snapshot: the initial weights). */
  get version(): number {
    return this.snapshot?.version ?? 0;
  }

  /**
   * Resolves once the latest version is at least `minVersion` (`ready`), or when the policy stream has
   * ended without reaching it (`ended`: the trainer finished, no such version will come). Rejects when
   * `signal` aborts or the policy stream fails.
   */
  waitFor(minVersion: number, signal?: AbortSignal): Promise<PolicyWait> {
    return new Promise<PolicyWait>((resolve, reject) => {
      const check = (): boolean => {
        if (signal?.aborted) reject(signal.reason ?? new Error('aborted'));
        else if (this.failure) reject(this.failure.error);
        else if (!this.hasTrainer || this.version >= minVersion) resolve({ status: 'ready', version: this.version });
        else if (this.ended) resolve({ status: 'ended', version: this.version });
        else return false;
        return true;
      };
      if (check()) return;
      const onChange = () => {
        if (!check()) return;
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

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
