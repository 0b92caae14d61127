import {
  claimPending,
  type DispatchedTask,
  failureBackoffMs,
  type Logger,
  type Metrics,
  type Pool,
  type QueueMessage,
  type Redis,
  sleep,
  type TaskQueue,
} from '@tasks/common';

export interface SchedulerOptions {
  batchSize: number;
  pollIntervalMs: number;
  /** No claims while the ready list holds this many messages: MySQL keeps the backlog. */
  maxQueueDepth: number;
}

export interface SchedulerDeps {
  pool: Pool;
  queue: TaskQueue;
  logger: Logger;
  /** Opens the connection that listens for inserts; the scheduler closes it. */
  openSubscriber: () => Redis;
  /** Counts claimed tasks; nothing is counted without it. */
  metrics?: Metrics;
}

export function toMessage(task: DispatchedTask): QueueMessage {
  return { id: task.id, message: task.data.message, time: task.data.time, tries: task.attempts };
}

/**
 * Moves pending tasks onto the Redis ready list: claims a batch in MySQL (marked
 * `processing` in the same transaction), commits, then pushes the batch in one command.
 * It runs when the API announces an insert, and every `pollIntervalMs` in case an
 * announcement was missed. A batch that came back full is followed by another at once.
 */
export class Scheduler {
  private readonly stopping = new AbortController();
  private wake: (() => void) | null = null;
  private woken = false;
  private loop: Promise<void> | null = null;
  private subscriber: Redis | null = null;

  constructor(
    private readonly deps: SchedulerDeps,
    private readonly options: SchedulerOptions,
  ) {}

  async start(): Promise<void> {
    const subscriber = this.deps.openSubscriber();
    this.subscriber = subscriber;
    subscriber.on('message', () => this.poke());
    await subscriber.subscribe(this.deps.queue.keys.insertedChannel);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.poke();
    await this.loop;
    this.subscriber?.disconnect();
  }

  /** Claims and pushes one batch; returns how many tasks it dispatched. */
  async dispatchBatch(): Promise<number> {
    const { pool, queue, logger } = this.deps;
    const depth = await queue.tasks.readyLength();
    const room = Math.min(this.options.batchSize, this.options.maxQueueDepth - depth);
    if (room <= 0) return 0;
    const claimed = await claimPending(pool, room);
    if (claimed.length === 0) return 0;
    // Committed: the tasks are `processing`. Should the push fail or this process die now,
    // the sweeper finds them missing from Redis and pushes them again.
    await queue.dispatch(claimed.map(toMessage));
    this.deps.metrics?.tasksClaimed.inc(claimed.length);
    logger.debug({ count: claimed.length, taskIds: claimed.map((t) => t.id) }, 'tasks dispatched');
    return claimed.length;
  }

  private poke(): void {
    this.woken = true;
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      this.woken = false;
      let full = false;
      try {
        const count = await this.dispatchBatch();
        full = count > 0 && count >= this.options.batchSize;
        failures = 0;
      } catch (err) {
        failures++;
        this.deps.logger.warn({ err }, 'dispatching tasks failed; retrying');
        await sleep(failureBackoffMs(failures), signal);
        continue;
      }
      if (full || this.woken || signal.aborted) continue;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, this.options.pollIntervalMs);
      });
      this.wake = null;
    }
  }
}
