// The staleness rule on its own: which version batch k needs, and how waiting for it ends.
import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { PolicySnapshot } from '../../core/ports.js';
import { BusyMeter } from '../../core/scheduler/busy-meter.js';
import { PolicyFollower, requiredPolicyVersion } from '../../core/scheduler/policy-follower.js';

const snapshot = (version: number, stepsPerBatch?: number): PolicySnapshot => ({ version, weights: {}, stepsPerBatch });
const settled = async <T>(p: Promise<T>): Promise<unknown> => {
  let state: 'pending' | T | Error = 'pending';
  p.then((v) => (state = v), (e: Error) => (state = e));
  await new Promise((r) => setTimeout(r, 0));
  return state;
};

describe('requiredPolicyVersion', () => {
  it('is k·μ − max_staleness, never below 0, and rejects bad arguments', () => {
    expect([0, 1, 2, 5].map((k) => requiredPolicyVersion(k, 1))).toEqual([0, 0, 1, 4]);
    expect([0, 1, 2].map((k) => requiredPolicyVersion(k, 0))).toEqual([0, 1, 2]);
    expect([0, 1, 2].map((k) => requiredPolicyVersion(k, 1, 3))).toEqual([0, 2, 5]);
    expect(() => requiredPolicyVersion(1, -1)).toThrow(/max_staleness must be a whole number ≥ 0, got -1/);
    expect(() => requiredPolicyVersion(1, 1, 0)).toThrow(/stepsPerBatch must be a whole number ≥ 1, got 0/);
  });
});

describe('PolicyFollower', () => {
  it('without a trainer admits every batch at once', async () => {
    const follower = new PolicyFollower(undefined);
    expect(await follower.admit(7, 0)).toEqual({ status: 'ready', version: 0 });
  });

  it('admits batch 0 at once, later batches once the trainer announced itself and reached the bound', async () => {
    const policy$ = new Subject<PolicySnapshot>();
    const follower = new PolicyFollower(policy$);
    expect(await settled(follower.admit(0, 0))).toEqual({ status: 'ready', version: 0 });
    const second = follower.admit(1, 1); // needs v ≥ 0, but only after the trainer's announcement
    expect(await settled(second)).toBe('pending');
    policy$.next(snapshot(0));
    expect(await settled(second)).toEqual({ status: 'ready', version: 0 });
    const strict = follower.admit(2, 0);
    policy$.next(snapshot(1));
    expect(await settled(strict)).toBe('pending');
    policy$.next(snapshot(2));
    expect(await settled(strict)).toEqual({ status: 'ready', version: 2 });
  });

  it('counts from the version the trainer started at (a resumed run) and in steps per batch', async () => {
    const policy$ = new Subject<PolicySnapshot>();
    const follower = new PolicyFollower(policy$);
    policy$.next(snapshot(40, 2));
    const third = follower.admit(2, 1); // trained at step 44: needs v ≥ 43
    policy$.next(snapshot(42, 2));
    expect(await settled(third)).toBe('pending');
    policy$.next(snapshot(43, 2));
    expect(await settled(third)).toEqual({ status: 'ready', version: 43 });
    expect(follower.startVersion).toBe(40);
    policy$.next(snapshot(41, 2)); // an older snapshot arriving late is ignored
    expect(follower.version).toBe(43);
  });

  it('ends the wait when the trainer finishes, fails, or the run aborts', async () => {
    const ended$ = new Subject<PolicySnapshot>();
    const waiting = new PolicyFollower(ended$).admit(3, 0);
    ended$.next(snapshot(0));
    ended$.complete();
    expect(await settled(waiting)).toEqual({ status: 'ended', version: 0 });

    const failed$ = new Subject<PolicySnapshot>();
    const failing = new PolicyFollower(failed$).admit(1, 0);
    failed$.error(new Error('trainer died'));
    expect(((await settled(failing)) as Error).message).toBe('trainer died');

    const controller = new AbortController();
    const aborted = new PolicyFollower(new Subject<PolicySnapshot>()).admit(1, 0, controller.signal);
    controller.abort(new Error('Ctrl-C'));
    expect(((await settled(aborted)) as Error).message).toBe('Ctrl-C');

    const bad$ = new Subject<PolicySnapshot>();
    const bad = new PolicyFollower(bad$).admit(1, 0);
    bad$.next(snapshot(-1));
    expect(((await settled(bad)) as Error).message).toMatch(/snapshot version must be a whole number ≥ 0, got -1/);
  });
});

describe('BusyMeter', () => {
  it('is busy time over wall time since the first piece of work', async () => {
    let now = 1000;
    const meter = new BusyMeter(() => now);
    expect(meter.fraction()).toBe(0);
    await meter.track(async () => {
      now += 30;
    });
    now += 70;
    expect(meter.fraction()).toBeCloseTo(0.3);
    now += 100;
    meter.add(100); // 100 ms measured elsewhere (a worker), just finished
    expect(meter.busyMs).toBe(130);
    expect(meter.fraction()).toBeCloseTo(130 / 200);
  });
});
