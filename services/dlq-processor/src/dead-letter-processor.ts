import {
  type Clock,
  type Database,
  dropConnection,
  EVENTS,
  isTransientError,
  type Leased,
  type Logger,
  Loop,
  type Metrics,
  type RecordResult,
  type Redis,
  recordDeadLetters,
  type TaskQueue,
} from '@tasks/common';

export interface DeadLetterProcessorOptions {
  batchSize: number;
  leaseMs: number;
  pollIntervalMs: number;
}

export interface DeadLetterProcessorDeps {
  pool: Database;
  queue: TaskQueue;
  logger: Logger;
  clock: Clock;
  /** Opens a connection for the blocking wait; the processor closes it. */
  openBlocking: () => Redis;
  /** Counts tasks marked failed; nothing is counted without it. */
  metrics?: Metrics;
}

/**
 * Records dead letters in MySQL through the record-dead-letters transition: their tasks
 * become `failed` with their attempts and last error. It works from its own inbox (leased like
 * the task queue, so a crash loses nothing) and leaves the `dead-letter-queue` list alone, so
 * the dead letters stay there to inspect. Writes are guarded by status and run, so recording
 * an entry twice, or an old one, changes nothing. A batch whose write fails for a reason of
 * its own is split until the entry that fails it is alone; that entry is taken off the inbox
 * and reported, and the others are recorded.
 */
export class DeadLetterProcessor {
  private readonly recording: Loop;
  private readonly reaping: Loop;
  private blocking: Redis | null = null;

  constructor(
    private readonly deps: DeadLetterProcessorDeps,
    private readonly options: DeadLetterProcessorOptions,
  ) {
    this.recording = new Loop(
      async (signal) => {
        const taken = await this.recordBatch();
        if (taken === 0 && !signal.aborted && this.blocking) {
          await deps.queue.inbox.waitForReady(this.blocking, options.pollIntervalMs);
        }
        return 'again';
      },
      { name: 'recording dead letters', logger: deps.logger, idleMs: options.pollIntervalMs },
    );
    this.reaping = new Loop(
      async () => {
        const requeued = await deps.queue.reapExpiredInbox();
        if (requeued > 0) deps.logger.warn({ requeued }, 'returned dead letters of a lost processor');
        return 'idle';
      },
      { name: 'reaping the dead-letter inbox', logger: deps.logger, idleMs: options.leaseMs, idleFirst: true },
    );
  }

  start(): void {
    this.blocking = this.deps.openBlocking();
    this.recording.start();
    this.reaping.start();
  }

  async stop(): Promise<void> {
    const stopped = Promise.all([this.recording.stop(), this.reaping.stop()]);
    if (this.blocking) dropConnection(this.blocking);
    await stopped;
  }

  /** Records one batch from the inbox; returns how many entries it took. */
  async recordBatch(): Promise<number> {
    const { queue } = this.deps;
    const { leased } = await queue.inbox.fetch(this.options.batchSize, this.options.leaseMs);
    if (leased.length === 0) return 0;
    try {
      await this.record(leased);
      return leased.length;
    } catch (err) {
      await queue.inbox.release(leased.map((l) => l.token)).catch(() => undefined);
      throw err;
    }
  }

  /** Records `entries`, splitting them when a write fails for a reason of its own. */
  private async record(entries: Leased[]): Promise<void> {
    const { logger, metrics } = this.deps;
    let result: RecordResult;
    try {
      result = await recordDeadLetters(this.deps, entries);
    } catch (err) {
      if (isTransientError(err)) throw err;
      if (entries.length > 1) {
        const half = Math.ceil(entries.length / 2);
        await this.record(entries.slice(0, half));
        await this.record(entries.slice(half));
        return;
      }
      const [entry] = entries as [Leased];
      logger.error(
        { event: EVENTS.invalidEntry, err, raw: entry.raw.slice(0, 200) },
        'a dead letter could not be recorded; taken off the inbox (it stays in the dead-letter list)',
      );
      await this.deps.queue.inbox.ack([entry.token], []);
      return;
    }
    metrics?.tasksFailed.inc(result.markedFailed);
    for (const { raw, reason } of result.invalid) {
      logger.error(
        { event: EVENTS.invalidEntry, raw: raw.slice(0, 200), reason },
        'an inbox entry names no task; taken off the inbox',
      );
    }
    for (const letter of result.letters) {
      logger.debug({ taskId: letter.id, run: letter.run, attempts: letter.tries, err: letter.error }, 'task failed');
    }
    logger.info({ entries: result.entries, markedFailed: result.markedFailed }, 'dead letters recorded');
  }
}
