// Pull-based delivery. A bounded channel hands its consumer one item at a time and delivers the next
// only after the previous `next()` handler has returned — so synchronous operators (`map`, `filter`)
// keep the bound for free. An operator that finishes an item asynchronously (`mapAsync`) takes a
// *hold* on the delivery in progress: the channel then waits for the hold to be released before it
// delivers the next item. JavaScript runs `next()` handlers synchronously, so "the delivery in
// progress" is well defined as a module-level slot.

interface DeliveryFrame {
  holds: number;
  /** Set once `next()` has returned with holds outstanding: called when the last hold is released. */
  onReleased?: () => void;
}

let current: DeliveryFrame | undefined;

/**
 * Holds the pull delivery in progress (if any) until the returned function is called. Returns a no-op
 * outside a pull delivery (a plain push Observable has nothing to hold).
 */
export function holdDelivery(): () => void {
  const frame = current;
  if (!frame) return () => {};
  frame.holds++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    frame.holds--;
    if (frame.holds === 0 && frame.onReleased) {
      const resume = frame.onReleased;
      frame.onReleased = undefined;
      resume();
    }
  };
}

/**
 * Runs `deliver` (which calls a subscriber's `next`) as a pull delivery. Returns true when no hold is
 * outstanding afterwards; otherwise `onReleased` is called once the last hold is released.
 */
export function deliverPulled(deliver: () => void, onReleased: () => void): boolean {
  const frame: DeliveryFrame = { holds: 0 };
  const outer = current;
  current = frame;
  try {
    deliver();
  } finally {
    current = outer;
  }
  if (frame.holds === 0) return true;
  frame.onReleased = onReleased;
  return false;
}
