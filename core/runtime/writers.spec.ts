import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MetricsBus } from './metrics-bus.js';
import { eventsBeforeResume, writeEventsLog, writeMetricsJsonl } from './writers.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'grpo-writers-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const records = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; node: string });

describe('run record writers', () => {
  it('a fresh run starts metrics.jsonl again; a resumed one keeps the records before the steps it redoes', async () => {
    const file = path.join(root, 'a', 'metrics.jsonl');
    // First segment: trainer steps 1..5 (checkpoint at 4), generator batches 0..5 (it ran ahead), then killed.
    let bus = new MetricsBus();
    let writer = writeMetricsJsonl(bus.metrics$, file);
    for (let b = 0; b <= 5; b++) bus.publish('rollout', b, { busy: 1 });
    for (let s = 1; s <= 5; s++) bus.publish('train', s, { loss: s });
    await writer.close();

    // Resumed from checkpoint 4: the generator starts again at batch 4, the trainer at step 5.
    bus = new MetricsBus();
    writer = writeMetricsJsonl(bus.metrics$, file, { step: 4 });
    bus.publish('rollout', 4, { busy: 0.5 });
    bus.publish('train', 5, { loss: 50 });
    bus.publish('rollout', 5, { busy: 0.5 });
    bus.publish('train', 6, { loss: 60 });
    await writer.close();

    const all = records(file);
    const key = (r: { node: string; step: number }) => `${r.node}:${r.step}`;
    expect(new Set(all.map(key)).size).toBe(all.length); // nothing twice
    expect(all.filter((r) => r.node === 'train').map((r) => [r.step, (r as unknown as { loss: number }).loss])).toEqual([
      [1, 1], [2, 2], [3, 3], [4, 4], [5, 50], [6, 60],
    ]);
    expect(all.filter((r) => r.node === 'rollout').map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5]);

    // Without --resume the file starts empty again.
    bus = new MetricsBus();
    writer = writeMetricsJsonl(bus.metrics$, file);
    bus.publish('train', 1, { loss: 9 });
    await writer.close();
    expect(records(file)).toEqual([{ step: 1, node: 'train', loss: 9 }]);
  });

  it('events.log keeps what came before the resumed checkpoint, and how the killed segment ended', () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
    const log = [
      `${t(0)} INFO  [graph] run started: g {"nodes":3}`,
      `${t(1)} INFO  [train] checkpoint /o/c/checkpoint-2 (step 2) {"checkpoint":"/o/c/checkpoint-2","step":2}`,
      `${t(2)} INFO  [eval] eval.accuracy eval: evaluation`,
      `eval\tstep\taccuracy`,
      `before\t0\t0.100`,
      `${t(3)} INFO  [train] checkpoint /o/c/checkpoint-4 (step 4) {"checkpoint":"/o/c/checkpoint-4","step":4}`,
      `${t(4)} INFO  [rollout] sampled completion (batch 5)`,
      `${t(5)} WARN  [train] batch 5 was sampled 1 step(s) behind`,
      `${t(6)} ERROR [graph] node \`r\` (reward.file) failed: boom`,
      '',
    ].join('\n');
    const kept = eventsBeforeResume(log, 4);
    expect(kept).toHaveLength(6);
    expect(kept[2]).toContain('before\t0\t0.100'); // a multi-line entry stays whole
    expect(kept.some((e) => e.includes('sampled completion'))).toBe(false);
    expect(kept.at(-1)).toContain('failed: boom');
    // A checkpoint this log does not mention (another run's): nothing is dropped.
    expect(eventsBeforeResume(log, 8)).toHaveLength(7);

    const file = path.join(root, 'b', 'events.log');
    const bus = new MetricsBus();
    const fresh = writeEventsLog(bus.events$, file, { step: 4 }); // resuming, no file yet: starts one
    bus.event('graph', 'info', 'resumed');
    return fresh.close().then(() => expect(readFileSync(file, 'utf8')).toContain('[graph] resumed'));
  });

  it.runIf(existsSync('/dev/full'))('a full disk ends the record with one message naming the file (no uncaught exception)', async () => {
    const bus = new MetricsBus();
    const writer = writeMetricsJsonl(bus.metrics$, '/dev/full');
    bus.publish('train', 1, { loss: 1 });
    bus.publish('train', 2, { loss: 2 });
    await expect(writer.close()).rejects.toThrow('/dev/full: no space left on the device (ENOSPC)');
  });
});
