interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions {
  /**
   * Whether a failed batch should be split to find the items that fail it (true for errors an
   * item can cause, such as a value the database rejects; false for an outage, which fails
   * every item alike). Without it, a failed batch fails all its items.
   */
  isolate?: (err: unknown) => boolean;
}

/**
 * Group commit: items added while a flush is running are written together by the next one.
 * Under load that makes one statement per batch instead of one per item; when idle, an
 * item is flushed at once (on the next turn of the event loop). `add` resolves when the
 * item's batch is written — with the item's own result when `write` returns one per item —
 * and rejects if that write failed.
 *
 * A batch is never a shared fate: when `isolate` says so, a failed batch is split in halves,
 * and each half written on its own, down to single items, so only the items that cause the
 * failure get it.
 */
export class Batcher<T, R = void> {
  private queue: Pending<T, R>[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly write: (items: T[]) => Promise<R[]> | Promise<void>,
    private readonly maxBatch: number,
    private readonly options: BatcherOptions = {},
  ) {}

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.run();
    });
  }

  get size(): number {
    return this.queue.length;
  }

  /** Resolves once everything added so far is written. */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      while (this.queue.length > 0) await this.flush(this.queue.splice(0, this.maxBatch));
    } finally {
      this.running = null;
    }
  }

  private async flush(batch: Pending<T, R>[]): Promise<void> {
    try {
      const written = await this.write(batch.map((p) => p.item));
      const results = Array.isArray(written) ? written : [];
      for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
    } catch (err) {
      if (batch.length > 1 && this.options.isolate?.(err)) {
        const half = Math.ceil(batch.length / 2);
        await this.flush(batch.slice(0, half));
        await this.flush(batch.slice(half));
        return;
      }
      for (const p of batch) p.reject(err);
    }
  }
}
