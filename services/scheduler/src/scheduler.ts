import { type ClaimResult, EVENTS, type Logger, Loop, type Metrics, type TaskStore } from '@tasks/common';
import { ReadyDemand } from './demand.js';

export interface SchedulerOptions {
  batchSize: number;
  pollIntervalMs: number;
  /** No claims while the ready list holds this many messages: MySQL keeps the backlog. */
  maxQueueDepth: number;
  /**
   * The ready list holds about this much of the executors' work (ms), by their recent pace,
   * up to maxQueueDepth (see ReadyDemand); 0 or left out: always up to maxQueueDepth.
   */
  queueAheadMs?: number;
}

/** The fewest messages the ready list is filled to (when its pace asks for fewer). */
const DEMAND_FLOOR = 100;

export interface SchedulerDeps {
  store: TaskStore;
  logger: Logger;
  /** Counts claimed tasks; nothing is counted without it. */
  metrics?: Metrics;
}

/** How soon to look again while the ready list is full (ms): room comes as executors fetch. */
const FULL_QUEUE_WAIT_MS = 20;

/**
 * While batches follow each other at once (a backlog), the delayed tasks due are made pending
 * at most this often (ms), not before every batch: a round trip saved per batch, for at most
 * this much lateness. After a wait, and after a promotion that filled its batch, at once.
 */
export const PROMOTE_EVERY_MS = 100;

/**
 * Moves pending tasks onto the Redis ready list through the claim-and-dispatch transition, a
 * batch at a time, after making the delayed tasks that are due pending. It runs when the API
 * announces an insert, when the next delayed task falls due (MySQL tells how long until then),
 * and every `pollIntervalMs` in case an announcement was missed (or the task was inserted in a
 * caller's own transaction, which announces nothing). A batch that filled the room it had is
 * followed by another at once; while the ready list is full it looks again shortly.
 */
export class Scheduler {
  private readonly loop: Loop;
  private stopListening: (() => void) | null = null;
  private readonly demand: ReadyDemand | null;
  /** When the due tasks were last made pending, and whether to look again at once. */
  private promotedAt = Number.NEGATIVE_INFINITY;
  private promoteNow = true;

  constructor(
    private readonly deps: SchedulerDeps,
    private readonly options: SchedulerOptions,
    private readonly now: () => number = () => performance.now(),
  ) {
    const aheadMs = options.queueAheadMs ?? 0;
    this.demand =
      aheadMs > 0
        ? new ReadyDemand({ aheadMs, floor: Math.min(DEMAND_FLOOR, options.maxQueueDepth), max: options.maxQueueDepth })
        : null;
    this.loop = new Loop(
      async () => {
        await this.promoteDue();
        const { dispatched, invalid, full, room } = await this.dispatchBatch();
        if (full) return { waitMs: FULL_QUEUE_WAIT_MS };
        if (dispatched.length + invalid.length >= room) return 'again';
        this.promoteNow = true;
        const due = await deps.store.nextDueInMs();
        return { waitMs: Math.min(this.options.pollIntervalMs, due ?? Number.POSITIVE_INFINITY) };
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

  /** Makes the delayed tasks due pending, unless that was done within PROMOTE_EVERY_MS (see there). */
  private async promoteDue(): Promise<void> {
    const at = this.now();
    if (!this.promoteNow && at - this.promotedAt < PROMOTE_EVERY_MS) return;
    const promoted = await this.deps.store.promoteDue(this.options.batchSize);
    this.promotedAt = at;
    this.promoteNow = promoted >= this.options.batchSize;
  }

  /** Claims and pushes one batch, as far as the queue has `room` (`full`: it had none). */
  async dispatchBatch(): Promise<ClaimResult & { full?: boolean; room: number }> {
    const { store, logger } = this.deps;
    const depth = await store.readyDepth();
    const target = this.demand?.target(depth) ?? this.options.maxQueueDepth;
    const room = Math.min(this.options.batchSize, target - depth);
    if (room <= 0) return { dispatched: [], invalid: [], full: true, room: 0 };
    const result = await store.claim(room);
    this.demand?.pushed(result.dispatched.length);
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
    return { ...result, room };
  }
}
