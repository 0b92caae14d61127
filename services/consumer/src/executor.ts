import {
  Batcher,
  type Clock,
  type Completion,
  completeRuns,
  type Database,
  decodeMessage,
  dropConnection,
  EVENTS,
  type FailedRun,
  type FailedRunOutcome,
  FailureLog,
  failRuns,
  failureBackoffMs,
  isTransientError,
  type Leased,
  type Logger,
  Loop,
  type Metrics,
  type QueueMessage,
  type Redis,
  sleep,
  type TaskQueue,
} from '@tasks/common';
import { retryDelayMs } from './backoff.js';
import type { Work } from './simulated-work.js';

export interface ExecutorOptions {
  concurrency: number;
  fetchBatchSize: number;
  leaseMs: number;
  maxAttempts: number;
  retryBackoffMs: number;
  retryBackoffMaxMs: number;
  pollIntervalMs: number;
  shutdownTimeoutMs: number;
}

export interface ExecutorDeps {
  pool: Database;
  queue: TaskQueue;
  /** Opens a connection for the blocking wait on the ready list; the executor closes it. */
  openBlocking: () => Redis;
  logger: Logger;
  clock: Clock;
  work: Work;
  random?: () => number;
  /** Counts runs, outcomes and expired leases; nothing is counted without it. */
  metrics?: Metrics;
}

/** Most outcomes written in one statement. */
const OUTCOME_BATCH = 1_000;

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs tasks from the queue, up to `concurrency` at once. Messages are leased, never popped:
 * each stays in Redis until its outcome is recorded in MySQL and then settled in Redis, by the
 * complete and fail-runs transitions, and the leases of running tasks are renewed while they
 * run. Outcomes are written in batches (one UPDATE and one Redis call for all the tasks that
 * completed together); a batch that fails is split until only the item that fails it is left,
 * and that item alone is set aside.
 */
export class Executor {
  /** Every message leased and not yet settled: running, or its outcome being written. */
  private readonly running = new Map<string, number>();
  /** Of those, how many are still running their work (what `concurrency` bounds). */
  private working = 0;
  private readonly completions: Batcher<Completion>;
  private readonly failedRuns: Batcher<FailedRun, FailedRunOutcome>;
  private readonly random: () => number;
  private readonly fetching: Loop;
  private readonly leasing: Loop;
  private readonly settleFailures: FailureLog;
  /** Aborted when the shutdown timeout passes: running work is abandoned and handed back. */
  private readonly giveUp = new AbortController();
  private slotFreed: (() => void) | null = null;
  private blocking: Redis | null = null;

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly options: ExecutorOptions,
  ) {
    this.random = deps.random ?? Math.random;
    const isolate = { isolate: (err: unknown) => !isTransientError(err) };
    this.completions = new Batcher(
      async (items) => {
        await completeRuns(deps, items);
      },
      OUTCOME_BATCH,
      isolate,
    );
    this.failedRuns = new Batcher((items) => failRuns(deps, items), OUTCOME_BATCH, isolate);
    this.fetching = new Loop((signal) => this.fetchOnce(signal), {
      name: 'fetching tasks',
      logger: deps.logger,
      idleMs: options.pollIntervalMs,
    });
    this.leasing = new Loop(() => this.renewAndReap(), {
      name: 'renewing leases',
      logger: deps.logger,
      idleMs: Math.max(50, Math.floor(options.leaseMs / 3)),
    });
    this.settleFailures = new FailureLog(deps.logger, 'recording outcomes', 10_000);
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.running.size;
  }

  start(): void {
    this.blocking = this.deps.openBlocking();
    this.fetching.start();
    this.leasing.start();
  }

  /**
   * Stops fetching, lets running tasks finish for up to `shutdownTimeoutMs`, then hands the
   * rest back to the queue (no attempt is counted) and waits for pending writes.
   */
  async stop(): Promise<void> {
    const stopped = this.fetching.stop();
    if (this.blocking) dropConnection(this.blocking);
    this.slotFreed?.();
    await stopped;
    const deadline = this.deps.clock.now() + this.options.shutdownTimeoutMs;
    while (this.running.size > 0 && this.deps.clock.now() < deadline) {
      await new Promise<void>((resolve) => {
        this.slotFreed = resolve;
        setTimeout(resolve, Math.max(1, deadline - this.deps.clock.now()));
      });
    }
    if (this.running.size > 0) {
      const tokens = [...this.running.keys()];
      this.giveUp.abort();
      const handedBack = await this.deps.queue.tasks.release(tokens).catch((err: unknown) => {
        this.deps.logger.error({ err }, 'could not hand back unfinished tasks; their leases will expire');
        return 0;
      });
      this.deps.logger.warn(
        { event: EVENTS.tasksHandedBack, handedBack },
        'shutdown timeout: unfinished tasks handed back to the queue',
      );
    } else {
      this.giveUp.abort();
    }
    await this.leasing.stop();
    await Promise.all([this.completions.drain(), this.failedRuns.drain()]);
  }

  /** Leases as many messages as there are free slots and starts them; waits when there is nothing to do. */
  private async fetchOnce(stopping: AbortSignal): Promise<'again' | 'idle'> {
    const { queue, blocking } = { queue: this.deps.queue, blocking: this.blocking };
    // Work runs up to `concurrency` at once; while a batch of outcomes is being written, as
    // many more may be fetched and run, so the writes do not stall the work.
    const free = Math.min(this.options.concurrency - this.working, 2 * this.options.concurrency - this.running.size);
    if (free <= 0) {
      await new Promise<void>((resolve) => {
        this.slotFreed = resolve;
      });
      return 'again';
    }
    const { leased, nextDueInMs } = await queue.tasks.fetch(
      Math.min(free, this.options.fetchBatchSize),
      this.options.leaseMs,
    );
    if (stopping.aborted) {
      await queue.tasks.release(leased.map((l) => l.token));
      return 'again';
    }
    for (const item of leased) this.launch(item);
    if (leased.length > 0) return 'again';
    const wait = Math.min(this.options.pollIntervalMs, nextDueInMs ?? Number.POSITIVE_INFINITY);
    if (wait > 0 && blocking) await queue.tasks.waitForReady(blocking, wait);
    return 'again';
  }

  /** Renews the leases of running tasks, and returns tasks whose executor died. */
  private async renewAndReap(): Promise<'idle'> {
    const { logger, queue, metrics } = this.deps;
    await queue.tasks.extend([...this.running.keys()], this.options.leaseMs);
    const reaped = await queue.reapExpired(this.options.maxAttempts);
    metrics?.leasesExpired.inc(reaped.requeued + reaped.deadLettered);
    metrics?.tasksDeadLettered.inc(reaped.deadLettered);
    if (reaped.requeued + reaped.deadLettered > 0) {
      logger.warn({ event: EVENTS.tasksRecovered, ...reaped }, 'returned tasks whose executor was lost');
    }
    return 'idle';
  }

  private launch(item: Leased): void {
    this.running.set(item.token, this.deps.clock.now());
    this.working++;
    let working = true;
    const workDone = () => {
      if (!working) return;
      working = false;
      this.working--;
      this.wakeFetch();
    };
    this.handle(item, workDone).then(
      () => this.finished(item.token, workDone),
      (err: unknown) => {
        this.deps.logger.error({ err, token: item.token }, 'task could not be settled; its lease will expire');
        this.finished(item.token, workDone);
      },
    );
  }

  private finished(token: string, workDone: () => void): void {
    this.running.delete(token);
    workDone();
    this.wakeFetch();
  }

  private wakeFetch(): void {
    const wake = this.slotFreed;
    this.slotFreed = null;
    wake?.();
  }

  /**
   * Adds to a batch; should its write fail for a passing reason (a store unreachable), retries
   * with backoff until it succeeds or the executor gives up. A write that fails for this item
   * alone (the batch was split down to it) sets its message aside. The first try needs no
   * retry loop, so the common case costs one promise per task.
   */
  private async settle<T>(add: () => Promise<T>, item: Leased, message: QueueMessage): Promise<T | null> {
    // Each item backs off on its own count: a batch that fails fails all its items together,
    // which must not make each of them wait as if it had failed that many times.
    for (let failures = 0; ; failures++) {
      try {
        const result = await add();
        this.settleFailures.succeeded();
        return result;
      } catch (err) {
        if (this.giveUp.signal.aborted) throw err;
        if (!isTransientError(err)) {
          await this.setAside(item, `could not record the outcome: ${errorMessage(err)}`, message);
          return null;
        }
        this.settleFailures.failed(err);
        await sleep(failureBackoffMs(failures, 50), this.giveUp.signal);
      }
    }
  }

  /**
   * Dead-letters a message that cannot be run or settled, with the reason. One that names a
   * task goes to the DLQ processor, which fails the task in its run; any other is kept in the
   * dead-letter list only.
   */
  private async setAside(item: Leased, reason: string, message: QueueMessage | null): Promise<void> {
    const { logger, queue, clock, metrics } = this.deps;
    logger.error({ event: EVENTS.invalidEntry, raw: item.raw.slice(0, 200), reason }, 'dead-lettering a message');
    const failedAt = new Date(clock.now()).toISOString();
    const [moved] = await queue.deadLetter([
      message
        ? { token: item.token, letter: { ...message, error: reason, failed_at: failedAt } }
        : { token: item.token, invalid: { error: reason, raw: item.raw, failed_at: failedAt } },
    ]);
    if (moved) metrics?.tasksDeadLettered.inc();
  }

  /** Runs one leased message and settles it; `workDone` is called once its work is over. */
  private async handle(item: Leased, workDone: () => void): Promise<void> {
    const { logger, work, clock, metrics } = this.deps;
    const decoded = decodeMessage(item.raw);
    if (!decoded.ok) return this.setAside(item, decoded.reason, null);
    const message = decoded.value;
    const attempt = message.tries + 1;
    // The task's fields go on its log lines; no child logger per task (it is the hot path).
    const task = { taskId: message.id, run: message.run, attempt };
    logger.debug({ event: EVENTS.taskStarted, ...task }, 'task started');
    let failure: string | null = null;
    const started = clock.now();
    try {
      await work(message, this.giveUp.signal);
    } catch (err) {
      failure = errorMessage(err);
    }
    workDone();
    if (this.giveUp.signal.aborted) return; // handed back by stop()
    const outcome = failure === null ? 'completed' : 'failed';
    metrics?.taskRunSeconds.observe({ outcome }, (clock.now() - started) / 1000);

    if (failure === null) {
      const completion: Completion = { id: message.id, run: message.run, tries: message.tries, token: item.token };
      await this.settle(() => this.completions.add(completion), item, message);
      logger.debug({ event: EVENTS.taskCompleted, ...task }, 'task completed');
      metrics?.tasksCompleted.inc();
      return;
    }

    const last = attempt >= this.options.maxAttempts;
    const delayMs = last
      ? 0
      : retryDelayMs(attempt, this.options.retryBackoffMs, this.options.retryBackoffMaxMs, this.random);
    const run: FailedRun = {
      message,
      token: item.token,
      error: failure,
      last,
      delayMs,
      failedAt: new Date(clock.now()).toISOString(),
    };
    const settled = await this.settle(() => this.failedRuns.add(run), item, message);
    if (settled === 'retried') {
      logger.debug(
        { event: EVENTS.taskRetried, ...task, err: failure, retryInMs: delayMs },
        'task failed; retry scheduled',
      );
      metrics?.tasksRetried.inc();
    } else if (settled === 'dead-lettered') {
      logger.warn({ event: EVENTS.taskDeadLettered, ...task, err: failure }, 'task dead-lettered');
      metrics?.tasksDeadLettered.inc();
    } else if (settled === 'dropped') {
      logger.warn(
        { event: EVENTS.runDropped, ...task, err: failure },
        'failed run of a stale or duplicate message: dropped',
      );
    }
  }
}
