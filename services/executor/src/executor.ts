import { availableParallelism } from 'node:os';
import {
  Batcher,
  type Clock,
  type Completion,
  type Config,
  EVENTS,
  type FailedTry,
  type FailOutcome,
  FailureLog,
  failureBackoffMs,
  HandlerRegistry,
  isLockWaitTimeout,
  isTransientError,
  type LeasedTask,
  type Logger,
  Loop,
  type Metrics,
  type ReadyWaiter,
  type RunningTask,
  SIMULATED,
  type SimulatedMessage,
  type Split,
  sleep,
  type TaskStore,
} from '@tasks/common';
import { startTry, ThreadPool, type TryControl, type TryEnd } from './run-try.js';
import type { Work } from './simulated-work.js';

export interface ExecutorOptions {
  concurrency: number;
  fetchBatchSize: number;
  leaseMs: number;
  pollIntervalMs: number;
  shutdownTimeoutMs: number;
  /** The largest result a handler may return, in bytes of JSON (MAX_RESULT_BYTES). */
  maxResultBytes?: number;
  /** How often running tasks are looked up in MySQL for a cancel the executor was not told of (ms). */
  cancelCheckMs?: number;
}

/** The executor's options as the settings give them (the service's and startExecutor's). */
export function executorOptions(config: Config): ExecutorOptions {
  return {
    concurrency: config.CONCURRENCY,
    fetchBatchSize: config.FETCH_BATCH_SIZE,
    leaseMs: config.LEASE_MS,
    pollIntervalMs: config.POLL_INTERVAL_MS,
    shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT_MS,
    maxResultBytes: config.MAX_RESULT_BYTES,
  };
}

export interface ExecutorDeps {
  store: TaskStore;
  logger: Logger;
  clock: Clock;
  /** The original's work, for the tasks of the `simulated` type. */
  work: Work;
  /** The handlers of the other types this executor runs; none by default. */
  handlers?: HandlerRegistry;
  /** Counts runs and outcomes; nothing is counted without it. */
  metrics?: Metrics;
}

const DEFAULT_MAX_RESULT_BYTES = 64 * 1024;
const DEFAULT_CANCEL_CHECK_MS = 1_000;

/** A try being run, as a cancel finds it. */
interface RunningTry {
  id: number;
  control: TryControl | null;
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
  private readonly running = new Map<string, RunningTry>();
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
  private readonly handlers: HandlerRegistry;
  private readonly threads: ThreadPool;
  private readonly cancelChecks: Loop;
  private stopListening: (() => void) | null = null;

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
    this.handlers = deps.handlers ?? HandlerRegistry.empty();
    this.threads = new ThreadPool(Math.max(1, Math.min(options.concurrency, availableParallelism())));
    this.cancelChecks = new Loop(() => this.checkCancels(), {
      name: 'looking for cancelled tasks',
      logger: deps.logger,
      idleMs: options.cancelCheckMs ?? DEFAULT_CANCEL_CHECK_MS,
    });
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.running.size;
  }

  start(): void {
    this.waiter = this.deps.store.openReadyWaiter();
    this.fetching.start();
    this.leasing.start();
    this.cancelChecks.start();
    // Told of a cancel at once; the checks find one whose announcement was lost.
    this.deps.store
      .onCancelled((id) => this.cancelRunning([id]), this.giveUp.signal)
      .then(
        (stop) => {
          this.stopListening = stop;
        },
        (err: unknown) => this.deps.logger.warn({ err }, 'not listening for cancels; they are found by the checks'),
      );
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
      for (const state of this.running.values()) state.control?.giveUp();
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
    this.stopListening?.();
    await Promise.all([this.leasing.stop(), this.cancelChecks.stop()]);
    await Promise.all([this.completions.drain(), this.failedTries.drain()]);
    await this.threads.close();
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
    await this.launchAll(leased);
    if (leased.length > 0) return 'again';
    const wait = Math.min(this.options.pollIntervalMs, nextDueInMs ?? Number.POSITIVE_INFINITY);
    if (wait > 0 && this.waiter) await this.waiter.wait(wait);
    return 'again';
  }

  /**
   * Renews the leases of running tasks. Leases that run out (their executor died) are the
   * sweeper's to return: recovery has one owner.
   */
  /** Ends the tries of these tasks, if running here, as cancelled. */
  private cancelRunning(ids: number[]): void {
    const cancelled = new Set(ids);
    for (const state of this.running.values()) if (cancelled.has(state.id)) state.control?.cancel();
  }

  /** Looks up the running tasks in MySQL for a cancel this executor was not told of. */
  private async checkCancels(): Promise<'idle'> {
    const running = [...this.running.values()].filter((s) => s.control !== null).map((s) => s.id);
    this.cancelRunning(await this.deps.store.cancelledAmong(running));
    return 'idle';
  }

  private async renewLeases(): Promise<'idle'> {
    await this.deps.store.extend([...this.running.keys()], this.options.leaseMs);
    return 'idle';
  }

  /**
   * Starts the leased messages: a task of the original's work at once (its data is in its
   * message); one of another type after its data is read from MySQL, in one read for the batch,
   * which also finds the runs that no longer run (their task was cancelled, finished, or runs
   * again since): those are dismissed, not started.
   */
  private async launchAll(leased: LeasedTask[]): Promise<void> {
    const typed = leased.flatMap((l) => (l.message?.type === undefined ? [] : [l.message.id]));
    let rows: Map<number, RunningTask>;
    try {
      rows = await this.deps.store.runningTasks(typed);
    } catch (err) {
      // Not read: handed back for a later fetch, no attempt counted.
      await this.deps.store.release(leased.filter((l) => l.message?.type !== undefined).map((l) => l.token));
      for (const item of leased) if (item.message?.type === undefined) this.launch(item, null);
      throw err;
    }
    const dismissed: LeasedTask[] = [];
    for (const item of leased) {
      const message = item.message;
      if (message?.type === undefined) {
        this.launch(item, null);
        continue;
      }
      const row = rows.get(message.id);
      if (row?.status !== 'processing' || row.run !== message.run) dismissed.push(item);
      else this.launch(item, row);
    }
    if (dismissed.length > 0) {
      await this.deps.store.dismiss(dismissed.map((d) => ({ token: d.token, id: d.message?.id ?? 0 })));
      this.deps.logger.debug(
        { event: EVENTS.runDismissed, taskIds: dismissed.map((d) => d.message?.id) },
        'runs whose task no longer runs in them: not started',
      );
    }
  }

  private launch(item: LeasedTask, row: RunningTask | null): void {
    const state: RunningTry = { id: item.message?.id ?? 0, control: null };
    this.running.set(item.token, state);
    this.working++;
    let working = true;
    const workDone = () => {
      if (!working) return;
      working = false;
      this.working--;
      this.wakeFetch();
    };
    this.handle(item, row, state, workDone).then(
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

  /** Runs one leased message and settles it; `workDone` is called once its try is over. */
  private async handle(
    item: LeasedTask,
    row: RunningTask | null,
    state: RunningTry,
    workDone: () => void,
  ): Promise<void> {
    const { logger, clock, metrics, store } = this.deps;
    const message = item.message;
    if (!message) return this.setAside(item, item.invalid ?? 'invalid message');
    const attempt = message.tries + 1;
    // The task's fields go on its log lines; no child logger per task (it is the hot path).
    const task = { taskId: message.id, run: message.run, attempt };
    logger.debug({ event: EVENTS.taskStarted, ...task }, 'task started');
    const handler = message.type === undefined ? null : (this.handlers.get(message.type) ?? null);
    const started = clock.now();
    let end: TryEnd;
    if (this.giveUp.signal.aborted) {
      end = { kind: 'given-up' }; // handed back by stop() with the running ones
    } else if (message.type !== undefined && handler === null) {
      end = {
        kind: 'failed',
        error: `no handler for type ${message.type} in this executor (it knows ${this.handlers.types.join(', ')})`,
      };
    } else {
      const timeoutMs = message.timeout_ms ?? handler?.timeoutMs ?? null;
      state.control = startTry({
        handler,
        simulated: (signal) => this.deps.work(message as SimulatedMessage, signal),
        task: {
          id: message.id,
          type: message.type ?? SIMULATED,
          data: message.type === undefined ? { message: message.message, time: message.time } : dataOf(row),
          run: message.run,
          attempt,
        },
        timeoutMs,
        logger,
        now: () => clock.now(),
        modulePath: this.handlers.modulePath,
        threads: this.threads,
      });
      end = await state.control.ended;
      state.control = null;
    }
    workDone();
    if (end.kind === 'given-up') return; // handed back by stop()
    if (end.kind === 'cancelled') {
      await store.dismiss([{ token: item.token, id: message.id }]);
      logger.info({ event: EVENTS.taskCancelled, ...task }, 'task cancelled: its run ended');
      metrics?.tasksCancelled.inc();
      return;
    }
    let result: string | undefined;
    if (end.kind === 'completed' && handler !== null) {
      const encoded = encodeResult(end.result, this.options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES);
      if (typeof encoded === 'string' || encoded === undefined) result = encoded;
      else end = { kind: 'failed', error: encoded.error };
    }
    metrics?.taskRunSeconds.observe(
      { outcome: end.kind === 'completed' ? 'completed' : 'failed' },
      (clock.now() - started) / 1000,
    );

    if (end.kind === 'completed') {
      const completion: Completion = {
        id: message.id,
        run: message.run,
        tries: message.tries,
        token: item.token,
        ...(result === undefined ? {} : { result }),
      };
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

    const error = end.kind === 'timed-out' ? `timed out after ${end.timeoutMs} ms` : end.error;
    if (end.kind === 'timed-out') {
      logger.warn({ event: EVENTS.taskTimedOut, ...task, timeoutMs: end.timeoutMs }, 'task timed out');
      metrics?.tasksTimedOut.inc();
    }
    const backoff = handler
      ? {
          ...(handler.backoffMs === undefined ? {} : { backoffMs: handler.backoffMs }),
          ...(handler.backoffMaxMs === undefined ? {} : { backoffMaxMs: handler.backoffMaxMs }),
        }
      : undefined;
    const failed: FailedTry = { token: item.token, message, error, failedAt: clock.now(), backoff };
    const settled = await this.settle(
      () => this.failedTries.add(failed),
      async () => (await store.fail([failed]))[0] as FailOutcome,
      item,
    );
    if (settled?.outcome === 'retried') {
      logger.debug(
        { event: EVENTS.taskRetried, ...task, err: error, retryInMs: settled.retryInMs },
        'task failed; retry scheduled',
      );
      metrics?.tasksRetried.inc();
    } else if (settled?.outcome === 'dead-lettered') {
      logger.warn({ event: EVENTS.taskDeadLettered, ...task, err: error }, 'task dead-lettered');
      metrics?.tasksDeadLettered.inc();
    } else if (settled?.outcome === 'dropped') {
      logger.warn(
        { event: EVENTS.runDropped, ...task, err: error },
        'failed run of a stale or duplicate message: dropped',
      );
    }
  }
}

/** A task's stored data as its handler gets it (MySQL hands JSON over parsed, MariaDB as text). */
function dataOf(row: RunningTask | null): unknown {
  const data = row?.data ?? null;
  if (typeof data !== 'string') return data;
  try {
    return JSON.parse(data);
  } catch {
    return data;
  }
}

/**
 * A handler's result as stored: JSON text, none for `undefined`, or why it cannot be kept (not
 * JSON, or larger than `maxBytes`).
 */
function encodeResult(result: unknown, maxBytes: number): string | undefined | { error: string } {
  if (result === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(result);
  } catch (err) {
    return { error: `the result is not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (text === undefined) return { error: 'the result is not JSON' };
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes)
    return { error: `the result is ${bytes} bytes of JSON, more than MAX_RESULT_BYTES (${maxBytes})` };
  return text;
}
