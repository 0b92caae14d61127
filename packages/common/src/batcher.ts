interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit: items added while a flush is running are written together by the next one.
 * Under load that makes one statement per batch instead of one per item; when idle, an
 * item is flushed at once (on the next turn of the event loop). `add` resolves when the
 * item's batch is written — with the item's own result when `write` returns one per item —
 * and rejects if that write failed.
 */
export class Batcher<T, R = void> {
  private queue: Pending<T, R>[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly write: (items: T[]) => Promise<R[]> | Promise<void>,
    private readonly maxBatch: number,
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
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.maxBatch);
        try {
          const written = await this.write(batch.map((p) => p.item));
          const results = Array.isArray(written) ? written : [];
          for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.running = null;
    }
  }
}
