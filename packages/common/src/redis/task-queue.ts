import { type Clock, systemClock } from '../clock.js';
import { type DeadLetter, encodeDeadLetter, encodeMessage, type QueueMessage } from '../tasks/task-schema.js';
import { DeadLetterList } from './dead-letter-list.js';
import type { LeaseQueueKeys, QueueKeys } from './keys.js';
import { LeaseQueue } from './lease-queue.js';
import type { QueueRedis } from './scripts.js';

export interface QueueDepths {
  ready: number;
  delayed: number;
  inflight: number;
  deadLetters: number;
  deadLetterInbox: number;
}

export const EXECUTOR_LOST = 'executor lost: its lease expired before the task finished';

/**
 * The task queue and its dead letters: the operations the scheduler, executors and DLQ
 * processor need, each atomic in Redis.
 */
export class TaskQueue {
  readonly tasks: LeaseQueue;
  readonly inbox: LeaseQueue;

  constructor(
    private readonly redis: QueueRedis,
    readonly keys: QueueKeys,
    private readonly deadLetterRetention: number,
    private readonly clock: Clock = systemClock,
  ) {
    this.tasks = new LeaseQueue(redis, keys.tasks, clock);
    this.inbox = new LeaseQueue(redis, keys.deadLetterInbox, clock);
  }

  /** Pushes task messages onto `task_queue` in one command, first taken first. */
  dispatch(messages: QueueMessage[]): Promise<void> {
    return this.tasks.push(messages.map(encodeMessage));
  }

  /**
   * Dead-letters a leased message (or, with `token` null, an entry that was never leased).
   * False if the lease had been lost, in which case nothing changed.
   */
  async deadLetter(token: string | null, letter: DeadLetter): Promise<boolean> {
    const k = this.keys;
    const done = await this.redis.queueDeadLetter(
      k.tasks.inflight,
      k.tasks.leases,
      k.deadLetters,
      k.deadLetterInbox.ready,
      token ?? '',
      encodeDeadLetter(letter),
      this.deadLetterRetention,
    );
    return done === 1;
  }

  /**
   * Returns tasks whose lease ran out for another try, counting the lost run as a failed
   * attempt; those out of attempts are dead-lettered.
   */
  async reapExpired(maxAttempts: number, limit = 1_000): Promise<{ requeued: number; deadLettered: number }> {
    const [requeued, deadLettered] = await this.reap(this.keys.tasks, maxAttempts, limit, EXECUTOR_LOST);
    return { requeued, deadLettered };
  }

  /** Returns dead letters whose DLQ processor died before recording them to its inbox. */
  async reapExpiredInbox(limit = 1_000): Promise<number> {
    const [requeued] = await this.reap(this.keys.deadLetterInbox, 0, limit, '');
    return requeued;
  }

  /** reap.lua on one lease queue: `maxAttempts` 0 requeues unchanged, without counting an attempt. */
  private reap(queue: LeaseQueueKeys, maxAttempts: number, limit: number, error: string): Promise<[number, number]> {
    const now = this.clock.now();
    return this.redis.queueReap(
      queue.inflight,
      queue.leases,
      queue.ready,
      this.keys.deadLetters,
      this.keys.deadLetterInbox.ready,
      now,
      maxAttempts,
      limit,
      this.deadLetterRetention,
      error,
      new Date(now).toISOString(),
    );
  }

  /** Of `ids`, those no structure in Redis holds a message for. */
  async findMissing(ids: number[]): Promise<number[]> {
    if (ids.length === 0) return [];
    const k = this.keys;
    const missing = await this.redis.queueFindMissing(
      k.tasks.ready,
      k.tasks.inflight,
      k.tasks.delayed,
      k.deadLetterInbox.ready,
      k.deadLetterInbox.inflight,
      ...ids,
    );
    return missing.map(Number);
  }

  /** The inspectable `dead-letter-queue` list. */
  deadLetterList(): DeadLetterList {
    return new DeadLetterList(this.redis, this.keys.deadLetters);
  }

  /** Whether Redis answers (readiness). */
  async ping(): Promise<void> {
    await this.redis.ping();
  }

  /** Tells schedulers that tasks were inserted, so they claim now rather than at the next poll. */
  async notifyInserted(): Promise<void> {
    await this.redis.publish(this.keys.insertedChannel, '1');
  }

  async depths(): Promise<QueueDepths> {
    const [tasks, deadLetters, deadLetterInbox] = await Promise.all([
      this.tasks.depths(),
      this.redis.llen(this.keys.deadLetters),
      this.redis.llen(this.keys.deadLetterInbox.ready),
    ]);
    return { ...tasks, deadLetters, deadLetterInbox };
  }
}
