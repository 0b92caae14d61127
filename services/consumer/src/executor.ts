import {
  Batcher,
  type Clock,
  type DeadLetter,
  failureBackoffMs,
  getStatuses,
  type Leased,
  type Logger,
  type Metrics,
  markCompleted,
  type Pool,
  type QueueMessage,
  queueMessageSchema,
  type Redis,
  recordFailedAttempts,
  retryUntil,
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
  pool: Pool;
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

interface Completion {
  id: number;
  attempts: number;
  token: string;
}

/**
 * A failed run: its attempt to record, then either its next try (`next`, due at `dueAt`) or,
 * on its last attempt, its dead letter (`letter`).
 */
interface FailedRun {
  id: number;
  attempts: number;
  error: string;
  token: string;
  next: string;
  dueAt: number;
  letter: DeadLetter | null;
}

/** What became of a failed run; `dropped`: its task was already final, so nothing followed. */
type FailedRunOutcome = 'retried' | 'dead-lettered' | 'dropped' | 'lease-lost';

type Parsed = { ok: true; message: QueueMessage } | { ok: false; reason: string };

function parseMessage(raw: string): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'invalid message: not JSON' };
  }
  const result = queueMessageSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    return { ok: false, reason: `invalid message: ${issue?.path.join('.') || 'message'}: ${issue?.message}` };
  }
  return { ok: true, message: result.data };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Runs tasks from the queue, up to `concurrency` at once. Messages are leased, never popped:
 * each stays in Redis until its outcome is recorded in MySQL and then settled in Redis
 * (acknowledged, retried or dead-lettered), and the leases of running tasks are extended
 * while they run. Outcomes are written in batches: one UPDATE and one Redis call for all
 * the tasks that completed together, and likewise for the failed runs to be retried.
 */
export class Executor {
  private readonly running = new Map<string, number>();
  private readonly completions: Batcher<Completion>;
  private readonly failedRuns: Batcher<FailedRun, FailedRunOutcome>;
  private readonly random: () => number;
  private readonly stopFetching = new AbortController();
  /** Aborted when the shutdown timeout passes: running work is abandoned and handed back. */
  private readonly giveUp = new AbortController();
  private slotFreed: (() => void) | null = null;
  private loops: Promise<void>[] = [];
  private blocking: Redis | null = null;

  constructor(
    private readonly deps: ExecutorDeps,
    private readonly options: ExecutorOptions,
  ) {
    this.random = deps.random ?? Math.random;
    this.completions = new Batcher((items) => this.writeCompletions(items), 1_000);
    this.failedRuns = new Batcher((items) => this.writeFailedRuns(items), 1_000);
  }

  /** How many tasks are running now. */
  get active(): number {
    return this.running.size;
  }

  start(): void {
    const blocking = this.deps.openBlocking();
    this.blocking = blocking;
    this.loops = [this.fetchLoop(blocking), this.leaseLoop()];
  }

  /**
   * Stops fetching, lets running tasks finish for up to `shutdownTimeoutMs`, then hands the
   * rest back to the queue (no attempt is counted) and waits for pending writes.
   */
  async stop(): Promise<void> {
    this.stopFetching.abort();
    this.blocking?.disconnect();
    this.slotFreed?.();
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
      this.deps.logger.warn({ handedBack }, 'shutdown timeout: unfinished tasks handed back to the queue');
    } else {
      this.giveUp.abort();
    }
    await Promise.all(this.loops);
    await Promise.all([this.completions.drain(), this.failedRuns.drain()]);
  }

  private async fetchLoop(blocking: Redis): Promise<void> {
    const { logger, queue, clock } = this.deps;
    const { concurrency, fetchBatchSize, leaseMs, pollIntervalMs } = this.options;
    const stopping = this.stopFetching.signal;
    let failures = 0;
    while (!stopping.aborted) {
      try {
        const free = concurrency - this.running.size;
        if (free <= 0) {
          await new Promise<void>((resolve) => {
            this.slotFreed = resolve;
          });
          continue;
        }
        const { leased, nextDueAt } = await queue.tasks.fetch(Math.min(free, fetchBatchSize), leaseMs);
        failures = 0;
        if (stopping.aborted) {
          await queue.tasks.release(leased.map((l) => l.token));
          break;
        }
        if (leased.length > 0) {
          for (const item of leased) this.launch(item);
          continue;
        }
        const wait = nextDueAt === null ? pollIntervalMs : Math.min(pollIntervalMs, nextDueAt - clock.now());
        if (wait > 0) await queue.tasks.waitForReady(blocking, wait);
      } catch (err) {
        if (stopping.aborted) break;
        failures++;
        logger.warn({ err }, 'fetching tasks failed; retrying');
        await sleep(failureBackoffMs(failures), stopping);
      }
    }
  }

  /** Extends the leases of running tasks, and returns tasks whose executor died. */
  private async leaseLoop(): Promise<void> {
    const { logger, queue } = this.deps;
    const interval = Math.max(50, Math.floor(this.options.leaseMs / 3));
    while (!this.giveUp.signal.aborted) {
      try {
        await queue.tasks.extend([...this.running.keys()], this.options.leaseMs);
        const reaped = await queue.reapExpired(this.options.maxAttempts);
        this.deps.metrics?.leasesExpired.inc(reaped.requeued + reaped.deadLettered);
        this.deps.metrics?.tasksDeadLettered.inc(reaped.deadLettered);
        if (reaped.requeued + reaped.deadLettered > 0) {
          logger.warn(reaped, 'returned tasks whose executor was lost');
        }
      } catch (err) {
        logger.warn({ err }, 'extending leases failed');
      }
      await sleep(interval, this.giveUp.signal);
    }
  }

  private launch(item: Leased): void {
    this.running.set(item.token, this.deps.clock.now());
    this.handle(item).then(
      () => this.finished(item.token),
      (err: unknown) => {
        this.deps.logger.error({ err, token: item.token }, 'task could not be settled; its lease will expire');
        this.finished(item.token);
      },
    );
  }

  private finished(token: string): void {
    this.running.delete(token);
    const wake = this.slotFreed;
    this.slotFreed = null;
    wake?.();
  }

  /**
   * Adds to a batch; should its write fail, retries (with backoff, logged with `task`) until
   * it succeeds or the executor gives up. The first try needs no retry loop, so the common
   * case costs one promise per task.
   */
  private async settle<T>(what: string, add: () => Promise<T>, task: object): Promise<T> {
    try {
      return await add();
    } catch {
      return retryUntil(what, add, this.deps.logger.child(task), this.giveUp.signal);
    }
  }

  private async handle(item: Leased): Promise<void> {
    const { logger, queue, work } = this.deps;
    const parsed = parseMessage(item.raw);
    if (!parsed.ok) {
      logger.error({ raw: item.raw.slice(0, 200), reason: parsed.reason }, 'dead-lettering an invalid message');
      const moved = await queue.deadLetter(item.token, {
        error: parsed.reason,
        raw: item.raw,
        failed_at: new Date(this.deps.clock.now()).toISOString(),
      });
      if (moved) this.deps.metrics?.tasksDeadLettered.inc();
      return;
    }
    const message = parsed.message;
    const attempts = message.tries + 1;
    // The task's fields go on its log lines; no child logger per task (it is the hot path).
    const task = { taskId: message.id, attempt: attempts };
    logger.debug(task, 'task started');
    let failure: string | null = null;
    const started = this.deps.clock.now();
    try {
      await work(message, this.giveUp.signal);
    } catch (err) {
      failure = errorText(err);
    }
    if (this.giveUp.signal.aborted) return; // handed back by stop()
    const outcome = failure === null ? 'completed' : 'failed';
    this.deps.metrics?.taskRunSeconds.observe({ outcome }, (this.deps.clock.now() - started) / 1000);

    if (failure === null) {
      const completion = { id: message.id, attempts, token: item.token };
      await this.settle('recording a completion', () => this.completions.add(completion), task);
      logger.debug(task, 'task completed');
      this.deps.metrics?.tasksCompleted.inc();
      return;
    }

    const last = attempts >= this.options.maxAttempts;
    const now = this.deps.clock.now();
    const delay = last
      ? 0
      : retryDelayMs(attempts, this.options.retryBackoffMs, this.options.retryBackoffMaxMs, this.random);
    const run: FailedRun = {
      id: message.id,
      attempts,
      error: failure,
      token: item.token,
      next: JSON.stringify({ id: message.id, message: message.message, time: message.time, tries: attempts }),
      dueAt: now + delay,
      letter: last ? { ...message, tries: attempts, error: failure, failed_at: new Date(now).toISOString() } : null,
    };
    const settled = await this.settle('recording a failed attempt', () => this.failedRuns.add(run), task);
    if (settled === 'retried') {
      logger.debug({ ...task, err: failure, retryInMs: delay }, 'task failed; retry scheduled');
      this.deps.metrics?.tasksRetried.inc();
    } else if (settled === 'dead-lettered') {
      logger.warn({ ...task, err: failure }, 'task dead-lettered');
      this.deps.metrics?.tasksDeadLettered.inc();
    } else if (settled === 'dropped') {
      logger.warn({ ...task, err: failure }, 'failed run of a task that is no longer processing: dropped');
    }
  }

  /**
   * Records failed runs in one UPDATE per distinct error, then settles them: a run whose task
   * is no longer `processing` (another copy of its message finished it) is dropped; the others
   * are retried (one script call for the batch) or, on their last attempt, dead-lettered. MySQL
   * learns the last attempt before the dead letter exists, so should Redis lose it before the
   * DLQ processor records it, the sweeper sees the task out of attempts and dead-letters it again.
   */
  private async writeFailedRuns(items: FailedRun[]): Promise<FailedRunOutcome[]> {
    const { pool, queue } = this.deps;
    await recordFailedAttempts(pool, items);
    const statuses = await getStatuses(
      pool,
      items.map((i) => i.id),
    );
    const live = (i: FailedRun) => statuses.get(i.id) === 'processing';
    const dropped = items.filter((i) => !live(i));
    const retries = items.filter((i) => live(i) && i.letter === null);
    const letters = items.filter((i) => live(i) && i.letter !== null);

    const outcomes = new Map<FailedRun, FailedRunOutcome>(dropped.map((i) => [i, 'dropped']));
    await queue.tasks.ack(dropped.map((i) => i.token));
    const retried = await queue.tasks.retryMany(retries.map(({ token, next, dueAt }) => ({ token, next, dueAt })));
    retries.forEach((run, n) => {
      outcomes.set(run, retried[n] ? 'retried' : 'lease-lost');
    });
    for (const run of letters) {
      const moved = run.letter !== null && (await queue.deadLetter(run.token, run.letter));
      outcomes.set(run, moved ? 'dead-lettered' : 'lease-lost');
    }
    return items.map((i) => outcomes.get(i) ?? 'lease-lost');
  }

  private async writeCompletions(items: Completion[]): Promise<void> {
    await markCompleted(this.deps.pool, items);
    const held = await this.deps.queue.tasks.ack(items.map((i) => i.token));
    if (held < items.length) {
      this.deps.logger.warn(
        { lost: items.length - held },
        'some completed tasks had lost their lease (already requeued)',
      );
    }
  }
}
