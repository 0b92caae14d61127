import { type InsertOutcome, type NewTask, TransactionStoppedError } from '@tasks/common';

/** Writes a batch of tasks, one outcome per task; stops when `signal` aborts (see insertTasks). */
export type WriteTasks = (tasks: NewTask[], signal: AbortSignal) => Promise<InsertOutcome[]>;

export interface InsertQueueOptions {
  /** Most inserts waiting for the database, queued or in the batch being written (INSERT_QUEUE_LIMIT). */
  limit: number;
  /** How long an insert may wait for its outcome (REQUEST_TIMEOUT_MS). */
  timeoutMs: number;
  /** Most tasks written by one statement. */
  maxBatch: number;
}

/** The insert was not queued, so not stored: the queue is full, or the database is slow. */
export class InsertRefusedError extends Error {
  constructor(
    readonly reason: 'full' | 'slow',
    message: string,
    /** Seconds after which a retry may find room. */
    readonly retryAfterS: number,
  ) {
    super(message);
    this.name = 'InsertRefusedError';
  }
}

/** The insert had no outcome by its deadline, and was not stored: withdrawn from the queue, or stopped. */
export class InsertTimedOutError extends Error {
  constructor(
    timeoutMs: number,
    readonly retryAfterS: number,
  ) {
    super(`no answer from the database within ${timeoutMs} ms; the task was not stored`);
    this.name = 'InsertTimedOutError';
  }
}

interface Waiting {
  task: NewTask;
  /** performance.now() after which the insert is answered without an outcome. */
  deadline: number;
  resolve: (outcome: InsertOutcome) => void;
}

/**
 * The inserts waiting for the database, bounded in number and in time, written by group
 * commit: the inserts that arrive while a batch is being written are written together by the
 * next one, one statement for up to `maxBatch` tasks.
 *
 * An insert is refused before it is queued (InsertRefusedError) when `limit` inserts wait
 * already, or when a batch is being written and the database has answered none for more than
 * half of `timeoutMs` (a queued insert would go after that batch, and would hardly be answered
 * in time). An
 * insert still queued at its deadline is withdrawn, never sent (InsertTimedOutError). A batch
 * still on the database at the deadline of its first insert is stopped on the server; once the
 * server says it stopped, nothing of it was written: the inserts past their deadline are
 * answered InsertTimedOutError, the others go back to the front of the queue. A batch that
 * committed while being stopped is answered with its ids; one whose connection was lost
 * during its commit, with the error that says so (isCommitOutcomeUnknown). So an insert
 * answered without an id was never stored, or is said to be of unknown outcome.
 */
export class InsertQueue {
  private readonly waiting: Waiting[] = [];
  private running: Promise<void> | null = null;
  /** Inserts in the batch being written. */
  private writing = 0;
  /**
   * Since when the database has answered no batch (a stopped batch is no answer), while one is
   * being written; null when none is, or the last one was answered.
   */
  private unansweredSince: number | null = null;
  private expiry: NodeJS.Timeout | null = null;

  constructor(
    private readonly write: WriteTasks,
    private readonly options: InsertQueueOptions,
  ) {}

  /** How long a batch may be on the database before new inserts are refused. */
  private get slowMs(): number {
    return this.options.timeoutMs / 2;
  }

  private get retryAfterS(): number {
    return Math.max(1, Math.round(this.slowMs / 1_000));
  }

  /** The task's outcome; never rejects. */
  add(task: NewTask): Promise<InsertOutcome> {
    const refusal = this.refusal();
    if (refusal) return Promise.resolve({ error: refusal });
    return new Promise<InsertOutcome>((resolve) => {
      this.waiting.push({ task, deadline: performance.now() + this.options.timeoutMs, resolve });
      this.armExpiry();
      this.running ??= this.run();
    });
  }

  /** Inserts waiting: queued, or in the batch being written. */
  get size(): number {
    return this.waiting.length + this.writing;
  }

  private refusal(): InsertRefusedError | null {
    if (this.size >= this.options.limit) {
      return new InsertRefusedError(
        'full',
        `${this.options.limit} inserts are waiting for the database already (INSERT_QUEUE_LIMIT); the task was not stored`,
        1,
      );
    }
    const unanswered =
      this.unansweredSince === null || this.writing === 0 ? 0 : performance.now() - this.unansweredSince;
    if (unanswered > this.slowMs) {
      return new InsertRefusedError(
        'slow',
        `the database has answered no insert for ${Math.round(unanswered)} ms; the task was not stored`,
        this.retryAfterS,
      );
    }
    return null;
  }

  private async run(): Promise<void> {
    // Inserts added in the same turn of the event loop go in the first batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      for (;;) {
        this.withdrawExpired();
        const batch = this.waiting.splice(0, this.options.maxBatch);
        if (batch.length === 0) break;
        await this.flush(batch);
      }
    } finally {
      // Nothing is being written: the next batch finds out afresh how the database answers.
      this.unansweredSince = null;
      this.running = null;
    }
  }

  private async flush(batch: Waiting[]): Promise<void> {
    const stop = new AbortController();
    // The queue is in deadline order: the first insert's deadline is the batch's.
    const first = batch[0] as Waiting;
    const timer = setTimeout(() => stop.abort(), Math.max(0, first.deadline - performance.now()));
    this.unansweredSince ??= performance.now();
    this.writing = batch.length;
    let outcomes: InsertOutcome[];
    try {
      outcomes = await this.write(
        batch.map((w) => w.task),
        stop.signal,
      );
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      outcomes = batch.map(() => ({ error }));
    } finally {
      clearTimeout(timer);
      this.writing = 0;
    }
    const stopped = (outcome: InsertOutcome | undefined) =>
      outcome !== undefined && 'error' in outcome && outcome.error instanceof TransactionStoppedError;
    // Stopped at the first insert's deadline: those due by then are answered, the others wait on.
    const due = Math.max(performance.now(), first.deadline);
    const again: Waiting[] = [];
    for (const [i, waiting] of batch.entries()) {
      const outcome = outcomes[i] ?? { error: new Error('the batch gave no outcome for this task') };
      if (!stopped(outcome)) waiting.resolve(outcome);
      else if (waiting.deadline <= due) waiting.resolve({ error: this.timedOut() });
      else again.push(waiting);
    }
    if (again.length > 0) {
      this.waiting.unshift(...again);
      this.armExpiry(true);
    }
    if (!outcomes.some(stopped)) this.unansweredSince = null;
  }

  private timedOut(): InsertTimedOutError {
    return new InsertTimedOutError(this.options.timeoutMs, this.retryAfterS);
  }

  /** Answers the queued inserts past their deadline, never to be sent. */
  private withdrawExpired(): void {
    const now = performance.now();
    while (this.waiting.length > 0 && (this.waiting[0] as Waiting).deadline <= now) {
      (this.waiting.shift() as Waiting).resolve({ error: this.timedOut() });
    }
  }

  /** A timer for the deadline of the first queued insert (`again`: the first one changed). */
  private armExpiry(again = false): void {
    if (again && this.expiry) {
      clearTimeout(this.expiry);
      this.expiry = null;
    }
    const first = this.waiting[0];
    if (this.expiry || !first) return;
    this.expiry = setTimeout(
      () => {
        this.expiry = null;
        this.withdrawExpired();
        this.armExpiry();
      },
      Math.max(0, first.deadline - performance.now()),
    );
    this.expiry.unref();
  }
}
