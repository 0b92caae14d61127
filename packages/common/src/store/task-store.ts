import type { RowDataPacket } from 'mysql2/promise';
import { type Clock, systemClock } from '../clock.js';
import type { Database } from '../mysql/database.js';
import { checkReadiness, type ReadinessReport } from '../readiness.js';
import { dropConnection, type Redis } from '../redis/client.js';
import type { Leased } from '../redis/lease-queue.js';
import type { QueueRedis } from '../redis/scripts.js';
import { type LiveServices, ServiceRegistry, type ServiceReport } from '../redis/service-registry.js';
import { depthsByName, type QueueDepthName, type QueueDepths, type TaskQueue } from '../redis/task-queue.js';
import { nextDueInMs, promoteDue } from '../tasks/delays.js';
import { type InsertOutcome, insertTasks, type NewTask } from '../tasks/insert-tasks.js';
import { deleteExpiredTasks, type RetentionOptions, type RetentionStep } from '../tasks/retention.js';
import { EXECUTOR_LOST, nextStep, type RetryPolicy } from '../tasks/retry-policy.js';
import { countByStatus, recountStatuses } from '../tasks/status-counts.js';
import {
  finishedPerMinute,
  getStatuses,
  getTask,
  getTaskByIdempotencyKey,
  getTasks,
  type ListTasksOptions,
  listTasks,
  type MinuteCounts,
} from '../tasks/task-reads.js';
import type { Task } from '../tasks/task-row.js';
import type { TaskStatus } from '../tasks/task-schema.js';
import { type CancelOutcome, cancelTask } from '../tasks/transitions/cancel.js';
import {
  ClaimPlan,
  type ClaimResult,
  claimAndDispatch,
  type GroupLimit,
} from '../tasks/transitions/claim-and-dispatch.js';
import { type CompleteResult, type Completion, completeRuns } from '../tasks/transitions/complete.js';
import { type FailedRunOutcome, failRuns } from '../tasks/transitions/fail-runs.js';
import { type RecordResult, recordDeadLetters } from '../tasks/transitions/record-dead-letters.js';
import { type RecoverResult, recoverLost } from '../tasks/transitions/recover.js';
import {
  type RedriveAllResult,
  type RedriveOutcome,
  redriveAllDeadLetters,
  redriveTasks,
} from '../tasks/transitions/redrive.js';
import { type DeadLetterEntry, readDeadLetter } from '../wire/dead-letter.js';
import { decodeMessage, namedTaskId, type QueueMessage } from '../wire/message-codec.js';

/** A message taken from the task queue: leased under `token` until it is settled. */
export interface LeasedTask {
  token: string;
  /** The entry as it is in Redis. */
  raw: string;
  /** The decoded message, or why the entry is not one. */
  message: QueueMessage | null;
  invalid: string | null;
}

export interface FetchedTasks {
  leased: LeasedTask[];
  /** When nothing was ready: how long (ms) until the earliest delayed retry is due, if any waits. */
  nextDueInMs: number | null;
}

/** A try that failed: its leased message, its error, when. */
export interface FailedTry {
  token: string;
  message: QueueMessage;
  error: string;
  /** When it failed (ms since the epoch, the executor's clock: only shown, never compared). */
  failedAt: number;
  /** Its type's own retry backoff, over the settings'. (Its attempts are the message's own.) */
  backoff?: Pick<Partial<RetryPolicy>, 'backoffMs' | 'backoffMaxMs'>;
}

/** What a task about to run needs from MySQL: whether it still runs in this run, and its data. */
export interface RunningTask {
  id: number;
  status: TaskStatus;
  run: number;
  data: unknown;
}

/** A failed try's outcome, with the delay before its retry when it was retried. */
export interface FailOutcome {
  outcome: FailedRunOutcome;
  retryInMs: number | null;
}

/** Waits for the ready list of a queue on a connection of its own (it blocks). */
export interface ReadyWaiter {
  /** Resolves when a message is ready or after `timeoutMs`. */
  wait(timeoutMs: number): Promise<void>;
  close(): void;
}

export interface Stats {
  tasks: Record<TaskStatus, number>;
  queue: Record<QueueDepthName, number>;
}

export interface DeadLetterPage {
  /** Entries in the list. */
  total: number;
  /** The page, newest first, each with its task's status now (null: it names none, or its task is gone). */
  entries: { entry: DeadLetterEntry; status: TaskStatus | null }[];
}

export interface RecoverOptions {
  /** A task must have been dispatched this long ago before it can count as lost. */
  graceMs: number;
  /** `processing` tasks looked up per page. */
  pageSize: number;
}

export interface TaskStoreParts {
  db: Database;
  queue: TaskQueue;
  redis: QueueRedis;
  /** Opens another Redis client like `redis`, for blocking commands or pub/sub; the opener closes it. */
  openRedis: (purpose: string) => Redis;
  retry: RetryPolicy;
  /** How many of a group's tasks may run at once (Infinity: no limit); none limited by default. */
  groupLimit?: GroupLimit;
  clock?: Clock;
  random?: () => number;
}

/**
 * The one door to the task store. Services, the CLI, the bench and the tests outside the
 * store's own call these verbs and nothing else: MySQL (the source of truth) and Redis (the
 * queue), the SQL, the Lua, the order in which a transition writes the two, and the wire
 * format all live behind it. Each verb that crosses the stores is one transition module
 * (tasks/transitions/), which owns its guarded SQL and its Redis settlement in order.
 */
export class TaskStore {
  private readonly clock: Clock;
  private readonly random: () => number;
  /** Tries whose MySQL half committed, for settling again in Redis only (see fail). */
  private readonly counted = new WeakMap<FailedTry, boolean>();
  private readonly services: ServiceRegistry;
  /** The claims' shared state: the lanes found, the groups' turn, their limits. */
  private readonly plan: ClaimPlan;

  constructor(private readonly parts: TaskStoreParts) {
    this.clock = parts.clock ?? systemClock;
    this.random = parts.random ?? Math.random;
    this.services = new ServiceRegistry(parts.redis, parts.queue.keys.services);
    this.plan = new ClaimPlan(parts.groupLimit);
  }

  get retryPolicy(): RetryPolicy {
    return this.parts.retry;
  }

  /* ---- Inserting ---- */

  /**
   * Inserts tasks as `pending`, together; one outcome per task (a task the database refuses
   * fails alone). Once `signal` aborts, a batch not yet sent is not sent, and one on the server
   * is stopped there (see insertTasks).
   */
  insert(tasks: NewTask[], signal?: AbortSignal): Promise<InsertOutcome[]> {
    return insertTasks(this.parts.db, tasks, { signal });
  }

  /** Tells the schedulers that tasks were inserted, so they claim now rather than at their next poll. */
  announceInserted(): Promise<void> {
    return this.parts.queue.notifyInserted();
  }

  /**
   * Calls `listener` on each announcement of an insert; resolves with the function that stops
   * listening. Should `signal` abort while Redis does not answer the subscription, the
   * connection is dropped and this rejects.
   */
  onInserted(listener: () => void, signal?: AbortSignal): Promise<() => void> {
    return this.listen('inserted', this.parts.queue.keys.insertedChannel, () => listener(), signal);
  }

  /** Subscribes to `channel` on a connection of its own; see onInserted. */
  private async listen(
    purpose: string,
    channel: string,
    listener: (message: string) => void,
    signal?: AbortSignal,
  ): Promise<() => void> {
    const subscriber = this.parts.openRedis(purpose);
    subscriber.on('message', (_channel: string, message: string) => listener(message));
    const giveUp = () => dropConnection(subscriber);
    signal?.addEventListener('abort', giveUp, { once: true });
    try {
      if (signal?.aborted) throw new Error('stopped before subscribing');
      await subscriber.subscribe(channel);
    } catch (err) {
      dropConnection(subscriber);
      throw err;
    } finally {
      signal?.removeEventListener('abort', giveUp);
    }
    return () => dropConnection(subscriber);
  }

  /* ---- Scheduling ---- */

  /** How many messages wait on the ready list. */
  readyDepth(): Promise<number> {
    return this.parts.queue.tasks.readyLength();
  }

  /** Claims up to `limit` pending tasks, oldest first, and pushes their messages. */
  claim(limit: number): Promise<ClaimResult> {
    return claimAndDispatch({ pool: this.parts.db, queue: this.parts.queue }, limit, this.plan);
  }

  /**
   * Delayed tasks whose time has come (MySQL's clock) become pending, up to `limit`, oldest due
   * first; returns how many.
   */
  promoteDue(limit: number): Promise<number> {
    return promoteDue(this.parts.db, limit);
  }

  /** How long (ms, by MySQL's clock) until the next delayed task is due; null when none waits. */
  nextDueInMs(): Promise<number | null> {
    return nextDueInMs(this.parts.db);
  }

  /**
   * The turn of one sweeper among several for this interval: true for the first to ask within
   * `intervalMs`. Recovery has one owner at a time.
   */
  takeSweepTurn(intervalMs: number): Promise<boolean> {
    return this.parts.queue.claimSweep(intervalMs);
  }

  /**
   * Recovery, the only reaper: leases that ran out are returned (their executor or DLQ
   * processor died), and every `processing` task Redis holds no message of is pushed again or
   * dead-lettered.
   */
  recover(options: RecoverOptions): Promise<RecoverResult> {
    return recoverLost(
      { pool: this.parts.db, queue: this.parts.queue },
      { ...options, maxAttempts: this.parts.retry.maxAttempts, lostError: EXECUTOR_LOST },
      () => this.clock.now(),
    );
  }

  /** One step of retention (see tasks/retention.ts); null when another process is doing it. */
  deleteExpired(options: RetentionOptions, afterId: number): Promise<RetentionStep | null> {
    return deleteExpiredTasks(this.parts.db, options, afterId);
  }

  /* ---- Running ---- */

  /** Leases up to `max` ready messages for `leaseMs`. */
  async fetch(max: number, leaseMs: number): Promise<FetchedTasks> {
    const { leased, nextDueInMs } = await this.parts.queue.tasks.fetch(max, leaseMs);
    return {
      nextDueInMs,
      leased: leased.map(({ token, raw }) => {
        const decoded = decodeMessage(raw);
        return decoded.ok
          ? { token, raw, message: decoded.value, invalid: null }
          : { token, raw, message: null, invalid: decoded.reason };
      }),
    };
  }

  /** A waiter for the task queue's ready list, on a connection of its own. */
  openReadyWaiter(): ReadyWaiter {
    return this.waiter('fetch', (blocking, ms) => this.parts.queue.tasks.waitForReady(blocking, ms));
  }

  /** Pushes the leases' deadlines out; returns how many were still held. */
  extend(tokens: string[], leaseMs: number): Promise<number> {
    return this.parts.queue.tasks.extend(tokens, leaseMs);
  }

  /** Hands leased messages back unchanged, first in line (no attempt counted); returns how many were held. */
  release(tokens: string[]): Promise<number> {
    return this.parts.queue.tasks.release(tokens);
  }

  /** Runs that succeeded: their tasks `completed` (in that run only), then their messages settled. */
  complete(completions: Completion[]): Promise<CompleteResult> {
    return completeRuns({ pool: this.parts.db, queue: this.parts.queue }, completions);
  }

  /**
   * Tries that failed: each counted on its task (in its run, once), then retried after the
   * retry policy's backoff, or dead-lettered on the task's last attempt. Settling the same try
   * again (after Redis failed) goes straight to Redis: a try is never counted twice.
   */
  async fail(tries: FailedTry[]): Promise<FailOutcome[]> {
    const runs = tries.map((t) => {
      const policy = {
        ...this.parts.retry,
        ...t.backoff,
        ...(t.message.max_attempts === undefined ? {} : { maxAttempts: t.message.max_attempts }),
      };
      const step = nextStep(t.message.tries, policy, this.random);
      return {
        message: t.message,
        token: t.token,
        error: t.error,
        last: step.last,
        delayMs: step.last ? 0 : step.delayMs,
        failedAt: new Date(t.failedAt).toISOString(),
        counted: this.counted.get(t),
      };
    });
    const outcomes = await failRuns({ pool: this.parts.db, queue: this.parts.queue }, runs, (i, counted) =>
      this.counted.set(tries[i] as FailedTry, counted),
    );
    return outcomes.map((outcome, i) => ({
      outcome,
      retryInMs: outcome === 'retried' ? (runs[i]?.delayMs ?? 0) : null,
    }));
  }

  /**
   * Moves a leased message that cannot be run or settled to the dead letters, with the reason:
   * one that names a task goes to the DLQ processor, which fails the task in its run; any other
   * is kept in the dead-letter list only. False when its lease was lost meanwhile.
   */
  async setAside(leased: LeasedTask, reason: string): Promise<boolean> {
    const failedAt = new Date(this.clock.now()).toISOString();
    const [moved] = await this.parts.queue.deadLetter([
      leased.message
        ? { token: leased.token, letter: { ...leased.message, error: reason, failed_at: failedAt } }
        : { token: leased.token, invalid: { error: reason, raw: leased.raw, failed_at: failedAt } },
    ]);
    return moved === true;
  }

  /**
   * The tasks of these ids as they are now, for the runs about to start: a run whose task is no
   * longer `processing` in that run (cancelled, finished, or run again since) is not started.
   */
  async runningTasks(ids: number[]): Promise<Map<number, RunningTask>> {
    if (ids.length === 0) return new Map();
    const [rows] = await this.parts.db.query<RowDataPacket[]>(
      'SELECT id, status, run, data FROM tasks WHERE id IN (?)',
      [ids],
    );
    return new Map(
      rows.map((r) => [
        Number(r.id),
        { id: Number(r.id), status: r.status as TaskStatus, run: Number(r.run), data: r.data },
      ]),
    );
  }

  /**
   * Settles leased messages whose runs end without an outcome to write: their task was
   * cancelled, or finished, or runs again in another run. They leave Redis, and so does their
   * tasks' presence.
   */
  async dismiss(leased: { token: string; id: number }[]): Promise<void> {
    await this.parts.queue.tasks.ack(
      leased.map((l) => l.token),
      leased.map((l) => l.id),
    );
  }

  /** Of these tasks, those cancelled (one read): how a runner learns of a cancel it was not told of. */
  async cancelledAmong(ids: number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    const [rows] = await this.parts.db.query<RowDataPacket[]>(
      "SELECT id FROM tasks WHERE id IN (?) AND status = 'cancelled'",
      [ids],
    );
    return rows.map((r) => Number(r.id));
  }

  /** Calls `listener` with each task id a cancel names; resolves with the function that stops listening. */
  onCancelled(listener: (id: number) => void, signal?: AbortSignal): Promise<() => void> {
    return this.listen(
      'cancelled',
      this.parts.queue.keys.cancelledChannel,
      (text) => {
        const id = Number(text);
        if (Number.isSafeInteger(id)) listener(id);
      },
      signal,
    );
  }

  /**
   * Calls `listener` with the ids of tasks that may have finished (completed, failed or
   * cancelled); a listener reads MySQL for the truth. Resolves with the function that stops listening.
   */
  onFinished(listener: (ids: number[]) => void, signal?: AbortSignal): Promise<() => void> {
    return this.listen(
      'finished',
      this.parts.queue.keys.finishedChannel,
      (text) => {
        listener(text.split(',').map(Number).filter(Number.isSafeInteger));
      },
      signal,
    );
  }

  /** Cancels a task that has not finished; whatever its run does afterwards changes nothing. */
  cancel(id: number): Promise<CancelOutcome> {
    return cancelTask({ pool: this.parts.db, queue: this.parts.queue }, id);
  }

  /** The statuses of these tasks now (one read); a task that is gone is missing. */
  statuses(ids: number[]): Promise<Map<number, TaskStatus>> {
    return getStatuses(this.parts.db, ids);
  }

  /* ---- Recording dead letters ---- */

  /** Leases up to `max` dead letters not yet recorded in MySQL. */
  async fetchDeadLetters(max: number, leaseMs: number): Promise<Leased[]> {
    return (await this.parts.queue.inbox.fetch(max, leaseMs)).leased;
  }

  /** A waiter for dead letters to record, on a connection of its own. */
  openDeadLetterWaiter(): ReadyWaiter {
    return this.waiter('dead-letters', (blocking, ms) => this.parts.queue.inbox.waitForReady(blocking, ms));
  }

  /** Records dead letters: their tasks `failed` (in the letter's run only), then the entries leave the inbox. */
  recordDeadLetters(entries: Leased[]): Promise<RecordResult> {
    return recordDeadLetters({ pool: this.parts.db, queue: this.parts.queue }, entries);
  }

  /** Hands leased dead letters back to be recorded later. */
  releaseDeadLetters(tokens: string[]): Promise<number> {
    return this.parts.queue.inbox.release(tokens);
  }

  /**
   * Takes a dead letter that cannot be recorded off the inbox (it stays in the dead-letter
   * list). Its task leaves the present set with it: the sweeper finds the task still
   * processing with no message, and settles it again.
   */
  async giveUpDeadLetter(entry: Leased): Promise<void> {
    const id = namedTaskId(entry.raw);
    await this.parts.queue.inbox.ack([entry.token], id === null ? [] : [id]);
  }

  /* ---- Reading and operating ---- */

  getTask(id: number): Promise<Task | null> {
    return getTask(this.parts.db, id);
  }

  /** The tasks of these ids that exist, in one read (a task that is gone is missing). */
  getTasks(ids: number[]): Promise<Task[]> {
    return getTasks(this.parts.db, ids);
  }

  getTaskByIdempotencyKey(key: string): Promise<Task | null> {
    return getTaskByIdempotencyKey(this.parts.db, key);
  }

  listTasks(options: ListTasksOptions): Promise<Task[]> {
    return listTasks(this.parts.db, options);
  }

  /** Tasks finished per minute over the last `minutes` (a row per minute with finishes). */
  finishedPerMinute(minutes: number): Promise<MinuteCounts[]> {
    return finishedPerMinute(this.parts.db, minutes, this.clock.now());
  }

  /** Tasks per status (the kept counts) and the depth of each Redis structure; reads a page, not the table. */
  async stats(): Promise<Stats> {
    const [tasks, depths] = await Promise.all([countByStatus(this.parts.db), this.parts.queue.depths()]);
    return { tasks, queue: depthsByName(depths) };
  }

  /** The depth of each Redis structure. */
  depths(): Promise<QueueDepths> {
    return this.parts.queue.depths();
  }

  /** Sets the per-status counts to the table's (after rows were written around the store); returns them. */
  recount(): Promise<Record<TaskStatus, number>> {
    return recountStatuses(this.parts.db);
  }

  /** `limit` entries of the dead-letter list from `offset`, newest first, with their tasks' statuses. */
  async deadLetterPage(offset: number, limit: number): Promise<DeadLetterPage> {
    const list = this.parts.queue.deadLetterList();
    const [total, raws] = await Promise.all([list.length(), list.range(offset, limit)]);
    const entries = raws.map(readDeadLetter);
    const ids = [...new Set(entries.flatMap((e) => (e.id === null ? [] : [e.id])))];
    const statuses = await getStatuses(this.parts.db, ids);
    return {
      total,
      entries: entries.map((entry) => ({ entry, status: entry.id === null ? null : (statuses.get(entry.id) ?? null) })),
    };
  }

  /** The entries of the dead-letter list that name task `id`, newest first. */
  async deadLettersOf(id: number): Promise<DeadLetterEntry[]> {
    return (await this.parts.queue.deadLetterList().all()).map(readDeadLetter).filter((e) => e.id === id);
  }

  /** How many entries the dead-letter list holds, and its Redis key. */
  async deadLetterCount(): Promise<{ key: string; count: number }> {
    const list = this.parts.queue.deadLetterList();
    return { key: list.key, count: await list.length() };
  }

  /** Empties the dead-letter list (tasks keep their status); returns how many entries it held. */
  purgeDeadLetters(): Promise<number> {
    return this.parts.queue.deadLetterList().purge();
  }

  /** Redrives each of `ids` that is failed: back to `pending` with attempts reset, its entries out of the list. */
  redrive(ids: number[], signal?: AbortSignal): Promise<RedriveOutcome[]> {
    return redriveTasks({ pool: this.parts.db, queue: this.parts.queue, signal }, ids);
  }

  /**
   * Redrives every task the dead-letter list names that is failed in MySQL. Once `signal`
   * aborts (the caller's deadline), a redrive that has not started writing MySQL changes nothing.
   */
  redriveAllDeadLetters(signal?: AbortSignal): Promise<RedriveAllResult> {
    return redriveAllDeadLetters({ pool: this.parts.db, queue: this.parts.queue, signal });
  }

  /** Whether MySQL answers and Redis takes a write to the queue's keys (each check's result). */
  readiness(timeoutMs?: number): Promise<ReadinessReport> {
    return checkReadiness({ pool: this.parts.db, redis: this.parts.redis, queue: this.parts.queue }, timeoutMs);
  }

  /* ---- Services alive ---- */

  /** Records that a service process is alive, for `ttlMs` more on Redis's clock; returns when it was recorded. */
  reportAlive(report: ServiceReport, ttlMs: number): Promise<Date> {
    return this.services.reportAlive(report, ttlMs);
  }

  /** Forgets a service process that stopped, rather than waiting for its report to run out. */
  reportStopped(id: string): Promise<void> {
    return this.services.reportStopped(id);
  }

  /** The service processes alive now, with when Redis last heard from each and what each runs. */
  liveServices(): Promise<LiveServices> {
    return this.services.live();
  }

  /** The names of the Redis keys operators read with redis-cli. */
  get redisKeys(): { ready: string; deadLetters: string } {
    return { ready: this.parts.queue.keys.tasks.ready, deadLetters: this.parts.queue.keys.deadLetters };
  }

  private waiter(purpose: string, wait: (blocking: Redis, ms: number) => Promise<void>): ReadyWaiter {
    const blocking = this.parts.openRedis(purpose);
    return { wait: (ms) => wait(blocking, ms), close: () => dropConnection(blocking) };
  }
}
