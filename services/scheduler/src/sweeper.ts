import {
  EXECUTOR_LOST,
  findLongProcessing,
  type Logger,
  type Metrics,
  type Pool,
  redispatch,
  sleep,
  type TaskQueue,
} from '@tasks/common';
import { toMessage } from './scheduler.js';

export interface SweeperOptions {
  intervalMs: number;
  /** A task must have been `processing` this long before it is looked for in Redis. */
  graceMs: number;
  maxAttempts: number;
  batchSize: number;
}

export interface SweepResult {
  /** Leased tasks whose executor died, returned to the queue or dead-lettered. */
  reaped: number;
  /** Tasks `processing` in MySQL that Redis had lost, pushed again. */
  repushed: number;
  /** Of those, tasks already out of attempts, dead-lettered instead. */
  deadLettered: number;
}

/**
 * Recovery. MySQL is the source of truth: a task it holds as `processing` must have a
 * message somewhere in Redis. The sweeper returns tasks whose lease expired, and pushes
 * again those whose message was lost (the scheduler died between commit and push, or Redis
 * lost its data).
 */
export class Sweeper {
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(
    private readonly deps: { pool: Pool; queue: TaskQueue; logger: Logger; metrics?: Metrics },
    private readonly options: SweeperOptions,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
  }

  async sweep(): Promise<SweepResult> {
    const { pool, queue, logger } = this.deps;
    const reaped = await queue.reapExpired(this.options.maxAttempts);
    this.deps.metrics?.leasesExpired.inc(reaped.requeued + reaped.deadLettered);
    await queue.reapExpiredInbox();

    const candidates = await findLongProcessing(pool, this.options.graceMs, this.options.batchSize);
    const missing = await queue.findMissing(candidates);
    const tasks = await redispatch(pool, missing);
    const exhausted = tasks.filter((t) => t.attempts >= this.options.maxAttempts);
    const retry = tasks.filter((t) => t.attempts < this.options.maxAttempts);
    await queue.dispatch(retry.map(toMessage));
    const failedAt = new Date().toISOString();
    for (const task of exhausted) {
      await queue.deadLetter(null, { ...toMessage(task), error: task.lastError ?? EXECUTOR_LOST, failed_at: failedAt });
    }
    this.deps.metrics?.tasksDeadLettered.inc(reaped.deadLettered + exhausted.length);
    const result = {
      reaped: reaped.requeued + reaped.deadLettered,
      repushed: retry.length,
      deadLettered: exhausted.length,
    };
    if (result.reaped + result.repushed + result.deadLettered > 0) {
      logger.warn({ ...result, ids: tasks.map((t) => t.id).slice(0, 20) }, 'recovered tasks');
    }
    return result;
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      await sleep(this.options.intervalMs, signal);
      if (signal.aborted) break;
      try {
        await this.sweep();
      } catch (err) {
        this.deps.logger.warn({ err }, 'sweep failed; retrying at the next interval');
      }
    }
  }
}
