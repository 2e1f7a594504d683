// A node's output gate: open while every stream channel leaving the node has room. While it is
// closed the runtime stops delivering items from the node's stream inputs, and `ctx.outputReady()`
// waits, so a node never runs more than its edges' buffers ahead of its consumers.

export class OutputGate {
  private readonly channels: { isFull(): boolean; isAbandoned?(): boolean }[] = [];
  private readonly openListeners = new Set<() => void>();

  addChannel(channel: { isFull(): boolean; isAbandoned?(): boolean }): void {
    this.channels.push(channel);
  }

  /**
   * Open while every channel has room. Once every channel's consumer has left (a trainer that reached
   * max_steps, an evaluation that took its `limit`), there is no one to produce for: the gate stays
   * closed, so an endless source waits instead of spinning (dropped items, and a starved event loop).
   */
  isOpen(): boolean {
    if (this.channels.length > 0 && this.channels.every((c) => c.isAbandoned?.() ?? false)) return false;
    return this.channels.every((c) => !c.isFull());
  }

  /** Called by an output channel when its consumer took an item (room may have appeared). */
  notifySpace(): void {
    if (!this.isOpen()) return;
    for (const listener of [...this.openListeners]) listener();
  }

  /** Calls `listener` each time the gate may have opened; returns the unsubscribe function. */
  onOpen(listener: () => void): () => void {
    this.openListeners.add(listener);
    return () => this.openListeners.delete(listener);
  }

  /** Resolves when the gate is open (at once if it is). */
  whenOpen(signal?: AbortSignal): Promise<void> {
    if (this.isOpen()) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    return new Promise((resolve, reject) => {
      const stop = this.onOpen(() => {
        if (!this.isOpen()) return;
        stop();
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      const onAbort = () => {
        stop();
        reject(signal?.reason ?? new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/** A gate with no channels: always open (a node with no stream outputs, or a test). */
export const OPEN_GATE = new OutputGate();
