interface Pending<T, R> {
  item: T;
  resolve: (result: R) => void;
  reject: (err: unknown) => void;
}

/** How a failed batch is split to find the items that fail it. */
export type Split = 'halves' | 'singles';

export interface BatcherOptions {
  /**
   * How to split a batch whose write failed, or null when the failure is every item's alike (an
   * outage). `halves` bisects down to the offending items (a value the database refuses: few
   * items fail, and each failing write is quick); `singles` writes every item alone at once (a
   * row locked elsewhere: each failing write waits out the lock, so the innocent items must
   * not wait for a bisection). Without it, a failed batch fails all its items.
   */
  split?: (err: unknown) => Split | null;
  /**
   * Once the batch in flight has been written for this long (ms), the next batch starts beside
   * it rather than behind it, up to `maxInFlight` at once: one batch stuck on the database
   * never holds back the items that came after it. Without it, one batch at a time.
   */
  stalledAfterMs?: number;
  /** Most batches in flight at once (default 4 with `stalledAfterMs`, else 1). */
  maxInFlight?: number;
}

/**
 * Group commit: items added while a batch is being written are written together by the next
 * one. Under load that makes one statement per batch instead of one per item; when idle, an
 * item is flushed at once (on the next turn of the event loop). `add` resolves when the
 * item's batch is written — with the item's own result when `write` returns one per item —
 * and rejects if that write failed.
 *
 * A batch is never a shared fate: a failed batch is split (see `split`) so only the items that
 * cause the failure get it; and a batch that is slow to write lets the next start beside it
 * (see `stalledAfterMs`).
 */
export class Batcher<T, R = void> {
  private queue: Pending<T, R>[] = [];
  /** When each batch in flight started (performance.now()), oldest first. */
  private readonly inFlight: number[] = [];
  private scheduled = false;
  private recheck: NodeJS.Timeout | null = null;
  private readonly idle = new Set<() => void>();
  private readonly maxInFlight: number;

  constructor(
    private readonly write: (items: T[]) => Promise<R[]> | Promise<void>,
    private readonly maxBatch: number,
    private readonly options: BatcherOptions = {},
  ) {
    this.maxInFlight = options.maxInFlight ?? (options.stalledAfterMs === undefined ? 1 : 4);
  }

  add(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.launch();
        });
      }
    });
  }

  /** How many items wait for a batch. */
  get size(): number {
    return this.queue.length;
  }

  /** Resolves once everything added so far is written. */
  drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight.length === 0 && !this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idle.add(resolve));
  }

  /** Starts as many batches as may run now; sets a timer for when another may start beside a slow one. */
  private launch(): void {
    if (this.recheck) clearTimeout(this.recheck);
    this.recheck = null;
    const stalledAfter = this.options.stalledAfterMs;
    while (this.queue.length > 0 && this.inFlight.length < this.maxInFlight) {
      const oldest = this.inFlight[0];
      if (oldest !== undefined && (stalledAfter === undefined || performance.now() - oldest < stalledAfter)) break;
      this.start(this.queue.splice(0, this.maxBatch));
    }
    const oldest = this.inFlight[0];
    if (this.queue.length > 0 && oldest !== undefined && stalledAfter !== undefined) {
      if (this.inFlight.length < this.maxInFlight) {
        this.recheck = setTimeout(() => this.launch(), Math.max(1, oldest + stalledAfter - performance.now()));
      }
    }
    if (this.queue.length === 0 && this.inFlight.length === 0 && !this.scheduled) {
      for (const resolve of this.idle) resolve();
      this.idle.clear();
    }
  }

  private start(batch: Pending<T, R>[]): void {
    const startedAt = performance.now();
    this.inFlight.push(startedAt);
    void this.flush(batch).finally(() => {
      this.inFlight.splice(this.inFlight.indexOf(startedAt), 1);
      this.launch();
    });
  }

  private async flush(batch: Pending<T, R>[]): Promise<void> {
    try {
      const written = await this.write(batch.map((p) => p.item));
      const results = Array.isArray(written) ? written : [];
      for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
    } catch (err) {
      const split = batch.length > 1 ? this.options.split?.(err) : null;
      if (split === 'halves') {
        const half = Math.ceil(batch.length / 2);
        await this.flush(batch.slice(0, half));
        await this.flush(batch.slice(half));
      } else if (split === 'singles') {
        await Promise.all(batch.map((p) => this.flush([p])));
      } else {
        for (const p of batch) p.reject(err);
      }
    }
  }
}
