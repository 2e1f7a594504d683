// Seeded train/test split and limits, so the same seed always holds out the same rows.
import { Rng } from '../rng.js';

/** `testSize` below 1 is a fraction of the items (rounded, at least 1 when non-zero), else a count. */
export function testCount(total: number, testSize: number): number {
  if (!(testSize >= 0)) throw new Error(`test_size must be >= 0, got ${testSize}`);
  const n = testSize < 1 ? (testSize === 0 ? 0 : Math.max(1, Math.round(total * testSize))) : Math.floor(testSize);
  if (n >= total && total > 0) throw new Error(`test_size ${testSize} leaves no training rows (${total} rows in all)`);
  return n;
}

/**
 * Hold out a random subset (chosen with `rng`) as the test split; both parts keep their input order.
 */
export function trainTestSplit<T>(items: T[], testSize: number, rng: Rng): { train: T[]; test: T[] } {
  const n = testCount(items.length, testSize);
  const order = rng.shuffle(items.map((_, i) => i));
  const held = new Set(order.slice(0, n));
  return { train: items.filter((_, i) => !held.has(i)), test: items.filter((_, i) => held.has(i)) };
}
