import { type Clock, systemClock } from '../clock.js';
import {
  type DeadLetter,
  encodeDeadLetter,
  encodeInvalidEntry,
  encodeMessage,
  type InvalidEntry,
  namedTaskId,
  type QueueMessage,
} from '../wire/message-codec.js';
import { DeadLetterList } from './dead-letter-list.js';
import type { LeaseQueueKeys, QueueKeys } from './keys.js';
import { LeaseQueue } from './lease-queue.js';
import { exec } from './multi.js';
import type { QueueRedis } from './scripts.js';

export interface QueueDepths {
  ready: number;
  delayed: number;
  inflight: number;
  deadLetters: number;
  deadLetterInbox: number;
}

/** The name of each depth in /stats, `pnpm tasks stats` and the `queue` label of `queue_depth`. */
export const QUEUE_DEPTH_NAMES = {
  ready: 'ready',
  delayed: 'delayed',
  inflight: 'inflight',
  deadLetters: 'dead_letters',
  deadLetterInbox: 'dead_letter_inbox',
} as const satisfies Record<keyof QueueDepths, string>;

export type QueueDepthName = (typeof QUEUE_DEPTH_NAMES)[keyof QueueDepths];

/** The depths under the names operators read them by. */
export function depthsByName(depths: QueueDepths): Record<QueueDepthName, number> {
  return Object.fromEntries(
    Object.entries(QUEUE_DEPTH_NAMES).map(([key, name]) => [name, depths[key as keyof QueueDepths]]),
  ) as Record<QueueDepthName, number>;
}

/** An entry to move to the dead letters; `token` null for one that was never leased. */
export type DeadLetterRequest =
  | { token: string | null; letter: DeadLetter }
  | { token: string | null; invalid: InvalidEntry };

/** Entries read per command when the present set is rebuilt. */
const PAGE = 1_000;

/**
 * The task queue and its dead letters: the operations the scheduler, executors and DLQ
 * processor need, each atomic in Redis. Every operation that adds or removes a task's message
 * keeps the present set (`keys.present`) in step (see its rule), so what Redis lost is found
 * by id.
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
    this.tasks = new LeaseQueue(redis, keys.tasks, keys.present);
    this.inbox = new LeaseQueue(redis, keys.deadLetterInbox, keys.present);
  }

  /**
   * Pushes task messages onto `task_queue`, first taken first, and their tasks become present:
   * one MULTI of an LPUSH and an SADD (plain commands cost Redis a fraction of a script's
   * handling of a thousand arguments).
   */
  async dispatch(messages: QueueMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await exec(
      this.redis
        .multi()
        .lpush(this.keys.tasks.ready, ...messages.map(encodeMessage))
        .sadd(this.keys.present, ...messages.map((m) => m.id)),
    );
  }

  /**
   * Moves entries to the dead letters in one script call: a leased one only if its lease is
   * still held. One boolean per entry, in order (false: the lease had been lost, nothing changed).
   */
  async deadLetter(requests: DeadLetterRequest[]): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const k = this.keys;
    const argv = requests.flatMap((r) =>
      'letter' in r
        ? [r.token ?? '', encodeDeadLetter(r.letter), r.letter.id]
        : [r.token ?? '', encodeInvalidEntry(r.invalid), ''],
    );
    const done = await this.redis.queueDeadLetter(
      k.tasks.inflight,
      k.tasks.leases,
      k.deadLetters,
      k.deadLetterInbox.ready,
      k.present,
      this.deadLetterRetention,
      ...argv,
    );
    return done.map((d) => Number(d) === 1);
  }

  /**
   * Returns tasks whose lease ran out for another try, counting the lost run as a failed
   * attempt; those out of attempts are dead-lettered.
   */
  async reapExpired(
    maxAttempts: number,
    error: string,
    limit = 1_000,
  ): Promise<{ requeued: number; deadLettered: number }> {
    const [requeued, deadLettered] = await this.reap(this.keys.tasks, maxAttempts, limit, error);
    return { requeued, deadLettered };
  }

  /** Returns dead letters whose DLQ processor died before recording them to its inbox. */
  async reapExpiredInbox(limit = 1_000): Promise<number> {
    const [requeued] = await this.reap(this.keys.deadLetterInbox, 0, limit, '');
    return requeued;
  }

  /** reap.lua on one lease queue: `maxAttempts` 0 requeues unchanged, without counting an attempt. */
  private reap(queue: LeaseQueueKeys, maxAttempts: number, limit: number, error: string): Promise<[number, number]> {
    return this.redis.queueReap(
      queue.inflight,
      queue.leases,
      queue.ready,
      this.keys.deadLetters,
      this.keys.deadLetterInbox.ready,
      maxAttempts,
      limit,
      this.deadLetterRetention,
      error,
      new Date(this.clock.now()).toISOString(),
    );
  }

  /**
   * Claims this sweep interval for the caller: true for the first sweeper to ask within
   * `intervalMs`, false for the others (one SET NX PX).
   */
  async claimSweep(intervalMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.sweeping, '1', 'PX', intervalMs, 'NX')) === 'OK';
  }

  /** For each of `ids`, whether Redis holds a message of that task (one SMISMEMBER). */
  async present(ids: number[]): Promise<boolean[]> {
    if (ids.length === 0) return [];
    const found = await this.redis.smismember(this.keys.present, ...ids.map(String));
    return found.map((f) => Number(f) === 1);
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

  /** Publishes `message` on one of the queue's channels. */
  async announce(channel: string, message: string): Promise<void> {
    await this.redis.publish(channel, message);
  }

  /**
   * Rebuilds the present set from the messages Redis holds, when the set is missing while
   * messages are there: after an upgrade from a version that did not keep it, or an eviction
   * of that key alone. Without it, every `processing` task would look lost and be pushed again
   * (a second run of each). Read a page at a time: a message that moves meanwhile may be
   * missed, which at worst costs that task one more run; one settled meanwhile may leave its
   * id behind, which for a finished task is only an entry too many. Returns how many ids it added.
   */
  async restorePresence(): Promise<number> {
    const k = this.keys;
    if ((await this.redis.exists(k.present)) === 1) return 0;
    const [tasks, inbox] = await Promise.all([this.tasks.depths(), this.inbox.depths()]);
    if (tasks.ready + tasks.delayed + tasks.inflight + inbox.ready + inbox.inflight === 0) return 0;
    let added = 0;
    const add = async (messages: string[]) => {
      const ids = messages.map(namedTaskId).filter((id): id is number => id !== null);
      if (ids.length > 0) added += await this.redis.sadd(k.present, ...ids);
    };
    for (const list of [k.tasks.ready, k.deadLetterInbox.ready]) {
      for (let start = 0; ; start += PAGE) {
        const page = await this.redis.lrange(list, start, start + PAGE - 1);
        await add(page);
        if (page.length < PAGE) break;
      }
    }
    for (const hash of [k.tasks.inflight, k.deadLetterInbox.inflight]) {
      let cursor = '0';
      do {
        const [next, entries] = await this.redis.hscan(hash, cursor, 'COUNT', PAGE);
        await add(entries.filter((_, i) => i % 2 === 1));
        cursor = next;
      } while (cursor !== '0');
    }
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.zscan(k.tasks.delayed, cursor, 'COUNT', PAGE);
      await add(entries.filter((_, i) => i % 2 === 0));
      cursor = next;
    } while (cursor !== '0');
    return added;
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
