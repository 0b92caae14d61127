import {
  Batcher,
  type Clock,
  type Completion,
  EVENTS,
  type FailedTry,
  type FailOutcome,
  FailureLog,
  failureBackoffMs,
  isLockWaitTimeout,
  isTransientError,
  type LeasedTask,
  type Logger,
  Loop,
  type Metrics,
  type ReadyWaiter,
  type Split,
  sleep,
  type TaskStore,
} from '@tasks/common';
import type { Work } from './simulated-work.js';

export interface ExecutorOptions {
  concurrency: number;
  fetchBatchSize: number;
  leaseMs: number;
  pollIntervalMs: number;
  shutdownTimeoutMs: number;
}

export interface ExecutorDeps {
  store: TaskStore;
  logger: Logger;
  clock: Clock;
  work: Work;
  /** Counts runs and outcomes; nothing is counted without it. */
  metrics?: Metrics;
}

/** Most outcomes written in one statement. */
const OUTCOME_BATCH = 1_000;

/**
 * A batch of outcomes still being written after this long (ms) is stuck (a row it needs is
 * locked elsewhere, the database fails over): the outcomes behind it start beside it.
 */
const OUTCOME_STALLED_MS = 1_000;

/**
 * How a batch of outcomes that failed is split: an error of the database's own (unreachable,
 * read-only) is every item's, and the whole batch is retried; a row locked elsewhere holds up
 * only its own item, so each is written alone at once; anything else is some item's fault,
 * found by halving.
 */
function splitOutcomes(err: unknown): Split | null {
  if (isLockWaitTimeout(err)) return 'singles';
  return isTransientError(err) ? null : 'halves';
}

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
  private readonly failedTries: Batcher<FailedTry, FailOutcome>;
  private readonly fetching: Loop;
  private readonly leasing: Loop;
  private readonly settleFailures: FailureLog;
  /** Aborted when the shutdown timeout passes: running work is abandoned and handed back. */
  private readonly giveUp = new AbortController();
  private slotFreed: (() => void) | null = null;
  private waiter: ReadyWaiter | null = null;

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly options: ExecutorOptions,
  ) {
    const batching = { split: splitOutcomes, stalledAfterMs: OUTCOME_STALLED_MS };
    this.completions = new Batcher(
      async (items) => {
        await deps.store.complete(items);
      },
      OUTCOME_BATCH,
      batching,
    );
    this.failedTries = new Batcher((items) => deps.store.fail(items), OUTCOME_BATCH, batching);
    this.fetching = new Loop((signal) => this.fetchOnce(signal), {
      name: 'fetching tasks',
      logger: deps.logger,
      idleMs: options.pollIntervalMs,
    });
    this.leasing = new Loop(() => this.renewLeases(), {
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
    this.waiter = this.deps.store.openReadyWaiter();
    this.fetching.start();
    this.leasing.start();
  }

  /**
   * Stops fetching, lets running tasks finish for up to `shutdownTimeoutMs`, then hands the
   * rest back to the queue (no attempt is counted) and waits for pending writes.
   */
  async stop(): Promise<void> {
    const stopped = this.fetching.stop();
    this.waiter?.close();
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
      const handedBack = await this.deps.store.release(tokens).catch((err: unknown) => {
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
    await Promise.all([this.completions.drain(), this.failedTries.drain()]);
  }

  /** Leases as many messages as there are free slots and starts them; waits when there is nothing to do. */
  private async fetchOnce(stopping: AbortSignal): Promise<'again' | 'idle'> {
    const { store } = this.deps;
    // Work runs up to `concurrency` at once; while a batch of outcomes is being written, as
    // many more may be fetched and run, so the writes do not stall the work.
    const free = Math.min(this.options.concurrency - this.working, 2 * this.options.concurrency - this.running.size);
    if (free <= 0) {
      await new Promise<void>((resolve) => {
        this.slotFreed = resolve;
      });
      return 'again';
    }
    const { leased, nextDueInMs } = await store.fetch(
      Math.min(free, this.options.fetchBatchSize),
      this.options.leaseMs,
    );
    if (stopping.aborted) {
      await store.release(leased.map((l) => l.token));
      return 'again';
    }
    for (const item of leased) this.launch(item);
    if (leased.length > 0) return 'again';
    const wait = Math.min(this.options.pollIntervalMs, nextDueInMs ?? Number.POSITIVE_INFINITY);
    if (wait > 0 && this.waiter) await this.waiter.wait(wait);
    return 'again';
  }

  /**
   * Renews the leases of running tasks. Leases that run out (their executor died) are the
   * sweeper's to return: recovery has one owner.
   */
  private async renewLeases(): Promise<'idle'> {
    await this.deps.store.extend([...this.running.keys()], this.options.leaseMs);
    return 'idle';
  }

  private launch(item: LeasedTask): void {
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
   * Writes an outcome in a batch (`batched`); should that fail for a passing reason (a store
   * unreachable or read-only, a transaction rolled back), again in a batch, with backoff, until
   * it succeeds or the executor gives up. An outcome whose own row is locked elsewhere (the
   * batch was split down to it on a lock wait) is written alone (`alone`) from then on, so it
   * never joins, and holds up, the batches of the others. A write that fails for this item's
   * own reason sets its message aside; a passing one never does: a run that succeeded stays
   * leased until its completion is written.
   */
  private async settle<T>(batched: () => Promise<T>, alone: () => Promise<T>, item: LeasedTask): Promise<T | null> {
    let locked = false;
    // Each item backs off on its own count: a batch that fails fails all its items together,
    // which must not make each of them wait as if it had failed that many times.
    for (let failures = 0; ; failures++) {
      try {
        const result = await (locked ? alone() : batched());
        this.settleFailures.succeeded();
        return result;
      } catch (err) {
        if (this.giveUp.signal.aborted) throw err;
        if (!isTransientError(err)) {
          await this.setAside(item, `could not record the outcome: ${errorMessage(err)}`);
          return null;
        }
        locked ||= isLockWaitTimeout(err);
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
  private async setAside(item: LeasedTask, reason: string): Promise<void> {
    const { logger, store, metrics } = this.deps;
    logger.error({ event: EVENTS.invalidEntry, raw: item.raw.slice(0, 200), reason }, 'dead-lettering a message');
    if (await store.setAside(item, reason)) metrics?.tasksDeadLettered.inc();
  }

  /** Runs one leased message and settles it; `workDone` is called once its work is over. */
  private async handle(item: LeasedTask, workDone: () => void): Promise<void> {
    const { logger, work, clock, metrics, store } = this.deps;
    const message = item.message;
    if (!message) return this.setAside(item, item.invalid ?? 'invalid message');
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
      await this.settle(
        () => this.completions.add(completion),
        async () => {
          await store.complete([completion]);
        },
        item,
      );
      logger.debug({ event: EVENTS.taskCompleted, ...task }, 'task completed');
      metrics?.tasksCompleted.inc();
      return;
    }

    const failed: FailedTry = { token: item.token, message, error: failure, failedAt: clock.now() };
    const settled = await this.settle(
      () => this.failedTries.add(failed),
      async () => (await store.fail([failed]))[0] as FailOutcome,
      item,
    );
    if (settled?.outcome === 'retried') {
      logger.debug(
        { event: EVENTS.taskRetried, ...task, err: failure, retryInMs: settled.retryInMs },
        'task failed; retry scheduled',
      );
      metrics?.tasksRetried.inc();
    } else if (settled?.outcome === 'dead-lettered') {
      logger.warn({ event: EVENTS.taskDeadLettered, ...task, err: failure }, 'task dead-lettered');
      metrics?.tasksDeadLettered.inc();
    } else if (settled?.outcome === 'dropped') {
      logger.warn(
        { event: EVENTS.runDropped, ...task, err: failure },
        'failed run of a stale or duplicate message: dropped',
      );
    }
  }
}
