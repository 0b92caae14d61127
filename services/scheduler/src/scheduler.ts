import { type ClaimResult, EVENTS, type Logger, Loop, type Metrics, type TaskStore } from '@tasks/common';

export interface SchedulerOptions {
  batchSize: number;
  pollIntervalMs: number;
  /** No claims while the ready list holds this many messages: MySQL keeps the backlog. */
  maxQueueDepth: number;
}

export interface SchedulerDeps {
  store: TaskStore;
  logger: Logger;
  /** Counts claimed tasks; nothing is counted without it. */
  metrics?: Metrics;
}

/**
 * Moves pending tasks onto the Redis ready list through the claim-and-dispatch transition, a
 * batch at a time. It runs when the API announces an insert, and every `pollIntervalMs` in
 * case an announcement was missed. A batch that came back full is followed by another at once.
 */
export class Scheduler {
  private readonly loop: Loop;
  private stopListening: (() => void) | null = null;

  constructor(
    private readonly deps: SchedulerDeps,
    private readonly options: SchedulerOptions,
  ) {
    this.loop = new Loop(
      async () => {
        const { dispatched, invalid } = await this.dispatchBatch();
        return dispatched.length + invalid.length >= this.options.batchSize ? 'again' : 'idle';
      },
      { name: 'dispatching tasks', logger: deps.logger, idleMs: options.pollIntervalMs },
    );
  }

  /**
   * Subscribes to the announcements of inserts, then starts the loop. Should `signal` abort
   * while Redis does not answer the subscription, start rejects.
   */
  async start(signal?: AbortSignal): Promise<void> {
    this.stopListening = await this.deps.store.onInserted(() => this.loop.wake(), signal);
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    this.stopListening?.();
  }

  /** Claims and pushes one batch, as far as the queue has room. */
  async dispatchBatch(): Promise<ClaimResult> {
    const { store, logger } = this.deps;
    const depth = await store.readyDepth();
    const room = Math.min(this.options.batchSize, this.options.maxQueueDepth - depth);
    if (room <= 0) return { dispatched: [], invalid: [] };
    const result = await store.claim(room);
    if (result.dispatched.length > 0) {
      this.deps.metrics?.tasksClaimed.inc(result.dispatched.length);
      logger.debug(
        { event: EVENTS.tasksDispatched, count: result.dispatched.length, taskIds: result.dispatched.map((m) => m.id) },
        'tasks dispatched',
      );
    }
    if (result.invalid.length > 0) {
      logger.error(
        { event: EVENTS.invalidTaskData, tasks: result.invalid },
        'tasks whose data cannot run marked failed',
      );
    }
    return result;
  }
}
