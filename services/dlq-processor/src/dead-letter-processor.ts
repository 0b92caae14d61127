import {
  type Clock,
  failureBackoffMs,
  type Leased,
  type Logger,
  type Metrics,
  markFailed,
  type Pool,
  type Redis,
  sleep,
  type TaskOutcome,
  type TaskQueue,
} from '@tasks/common';

export interface DeadLetterProcessorOptions {
  batchSize: number;
  leaseMs: number;
  pollIntervalMs: number;
}

export interface DeadLetterProcessorDeps {
  pool: Pool;
  queue: TaskQueue;
  logger: Logger;
  clock: Clock;
  /** Opens a connection for the blocking wait; the processor closes it. */
  openBlocking: () => Redis;
  /** Counts tasks marked failed; nothing is counted without it. */
  metrics?: Metrics;
}

/** The task a dead letter stands for, or null for an entry that was never a valid task message. */
function outcomeOf(raw: string): TaskOutcome | null {
  try {
    const entry = JSON.parse(raw) as { id?: unknown; tries?: unknown; error?: unknown };
    if (typeof entry.id !== 'number' || !Number.isInteger(entry.id) || entry.id <= 0) return null;
    return {
      id: entry.id,
      attempts: typeof entry.tries === 'number' ? entry.tries : 0,
      error: typeof entry.error === 'string' ? entry.error : 'dead-lettered',
    };
  } catch {
    return null;
  }
}

/**
 * Records dead letters in MySQL: their tasks become `failed` with their attempts and last
 * error. It works from its own inbox (leased like the task queue, so a crash loses nothing)
 * and leaves the `dead-letter-queue` list alone, so the dead letters stay there to inspect.
 * Writes are guarded, so recording an entry twice changes nothing.
 */
export class DeadLetterProcessor {
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private blocking: Redis | null = null;

  constructor(
    private readonly deps: DeadLetterProcessorDeps,
    private readonly options: DeadLetterProcessorOptions,
  ) {}

  start(): void {
    this.blocking = this.deps.openBlocking();
    this.loops = [this.recordLoop(this.blocking), this.reapLoop()];
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.blocking?.disconnect();
    await Promise.all(this.loops);
  }

  /** Records one batch from the inbox; returns how many entries it took. */
  async recordBatch(): Promise<number> {
    const { queue, pool, logger } = this.deps;
    const { leased } = await queue.inbox.fetch(this.options.batchSize, this.options.leaseMs);
    if (leased.length === 0) return 0;
    try {
      const outcomes = leased.map((l: Leased) => outcomeOf(l.raw)).filter((o): o is TaskOutcome => o !== null);
      const changed = outcomes.length > 0 ? await markFailed(pool, outcomes) : 0;
      this.deps.metrics?.tasksFailed.inc(changed);
      for (const o of outcomes) logger.debug({ taskId: o.id, attempts: o.attempts, err: o.error }, 'task failed');
      await queue.inbox.ack(leased.map((l) => l.token));
      logger.info({ entries: leased.length, markedFailed: changed }, 'dead letters recorded');
      return leased.length;
    } catch (err) {
      await queue.inbox.release(leased.map((l) => l.token)).catch(() => undefined);
      throw err;
    }
  }

  private async recordLoop(blocking: Redis): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const taken = await this.recordBatch();
        failures = 0;
        if (taken === 0 && !signal.aborted) {
          await this.deps.queue.inbox.waitForReady(blocking, this.options.pollIntervalMs);
        }
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        this.deps.logger.warn({ err }, 'recording dead letters failed; retrying');
        await sleep(failureBackoffMs(failures), signal);
      }
    }
  }

  /** Returns inbox entries whose processor died while recording them. */
  private async reapLoop(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      await sleep(this.options.leaseMs, signal);
      if (signal.aborted) break;
      try {
        const requeued = await this.deps.queue.reapExpiredInbox();
        if (requeued > 0) this.deps.logger.warn({ requeued }, 'returned dead letters of a lost processor');
      } catch (err) {
        this.deps.logger.warn({ err }, 'reaping the dead-letter inbox failed');
      }
    }
  }
}
