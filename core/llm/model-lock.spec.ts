import { describe, expect, it } from 'vitest';
import { ModelLock, modelLock } from './model-lock.js';

describe('ModelLock', () => {
  it('runs holders one at a time in the order they asked', async () => {
    const lock = new ModelLock();
    const log: string[] = [];
    const hold = (name: string, ms: number) =>
      lock.run(async () => {
        log.push(`${name} start`);
        await new Promise((r) => setTimeout(r, ms));
        log.push(`${name} end`);
        return name;
      });
    const results = await Promise.all([hold('a', 20), hold('b', 1), hold('c', 5)]);
    expect(results).toEqual(['a', 'b', 'c']);
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  });

  it('keeps going after a holder fails, and reports the failure to that holder', async () => {
    const lock = new ModelLock();
    const failed = lock.run(() => {
      throw new Error('boom');
    });
    await expect(failed).rejects.toThrow('boom');
    await expect(lock.run(() => 7)).resolves.toBe(7);
  });

  it('gives one lock per model object', () => {
    const a = {};
    expect(modelLock(a)).toBe(modelLock(a));
    expect(modelLock(a)).not.toBe(modelLock({}));
  });
});
