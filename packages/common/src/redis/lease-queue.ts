import { randomBytes } from 'node:crypto';
import type { Redis } from './client.js';
import type { LeaseQueueKeys } from './keys.js';
import { exec } from './multi.js';
import type { QueueRedis } from './scripts.js';

/** A message taken from the queue; it stays in Redis under `token` until it is settled. */
export interface Leased {
  token: string;
  raw: string;
}

export interface FetchResult {
  leased: Leased[];
  /** When nothing was ready: how long (ms) until the earliest delayed retry is due, if any waits. */
  nextDueInMs: number | null;
}

/** A leased message to be replaced by its next try. */
export interface RetryRequest {
  token: string;
  /** The message for the next try. */
  next: string;
  /** How long (ms) until it is due; 0: now. */
  delayMs: number;
}

const PROMOTE_LIMIT = 1_000;

/**
 * A reliable queue on Redis: fetching leases messages instead of popping them, so a process
 * that dies mid-work loses nothing (its leases run out and the messages are reaped). Every
 * transition is one Lua script or one command, never two round trips a crash could split,
 * and every deadline is on Redis's clock.
 */
export class LeaseQueue {
  constructor(
    private readonly redis: QueueRedis,
    readonly keys: LeaseQueueKeys,
    /** The set of task ids with a message in Redis, which acknowledging removes from. */
    private readonly presentKey: string,
  ) {}

  /** Leases up to `max` messages for `leaseMs`, promoting due retries first. */
  async fetch(max: number, leaseMs: number): Promise<FetchResult> {
    const k = this.keys;
    const reply = await this.redis.queueFetch(
      k.ready,
      k.inflight,
      k.leases,
      k.delayed,
      leaseMs,
      max,
      PROMOTE_LIMIT,
      randomBytes(8).toString('hex'),
    );
    const leased: Leased[] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) {
      leased.push({ token: String(reply[i]), raw: String(reply[i + 1]) });
    }
    const wait = Number(reply[0]);
    return { leased, nextDueInMs: leased.length === 0 && wait >= 0 ? wait : null };
  }

  /**
   * Resolves when the ready list has a message or after `timeoutMs`. `BLMOVE list list RIGHT
   * RIGHT` puts the element back where it was, so waiting moves nothing and risks nothing;
   * the caller then leases with fetch(). Needs a connection of its own (it blocks).
   */
  async waitForReady(blocking: Redis, timeoutMs: number): Promise<void> {
    const seconds = Math.max(timeoutMs, 10) / 1000;
    await blocking.blmove(this.keys.ready, this.keys.ready, 'RIGHT', 'RIGHT', seconds);
  }

  /**
   * Settles leased messages as done; `ids` (their tasks) leave the present set. Returns how
   * many were still leased (the rest had expired and were returned).
   */
  async ack(tokens: string[], ids: number[]): Promise<number> {
    if (tokens.length === 0 && ids.length === 0) return 0;
    // One MULTI of plain commands: atomic, and cheaper for Redis than a script's arguments.
    const multi = this.redis.multi();
    if (tokens.length > 0) multi.hdel(this.keys.inflight, ...tokens).zrem(this.keys.leases, ...tokens);
    if (ids.length > 0) multi.srem(this.presentKey, ...ids);
    const [held] = await exec(multi);
    return tokens.length > 0 ? Number(held) : 0;
  }

  /** Pushes the leases' deadlines out; leases already lost are not recreated. Returns how many were held. */
  async extend(tokens: string[], leaseMs: number): Promise<number> {
    if (tokens.length === 0) return 0;
    return this.redis.queueExtend(this.keys.leases, leaseMs, ...tokens);
  }

  /** Hands leased messages back unchanged, first in line. Returns how many were still leased. */
  async release(tokens: string[]): Promise<number> {
    if (tokens.length === 0) return 0;
    return this.redis.queueRelease(this.keys.inflight, this.keys.leases, this.keys.ready, ...tokens);
  }

  /** Replaces leased messages by their next tries, in one script call; one boolean per retry (false: the lease was lost). */
  async retry(retries: RetryRequest[]): Promise<boolean[]> {
    if (retries.length === 0) return [];
    const k = this.keys;
    const argv = retries.flatMap((r) => [r.token, r.next, Math.max(0, Math.round(r.delayMs))]);
    const done = await this.redis.queueRetry(k.inflight, k.leases, k.ready, k.delayed, ...argv);
    return done.map((d) => Number(d) === 1);
  }

  /** How many messages are ready (one LLEN). */
  readyLength(): Promise<number> {
    return this.redis.llen(this.keys.ready);
  }

  async depths(): Promise<{ ready: number; delayed: number; inflight: number }> {
    const [ready, delayed, inflight] = await Promise.all([
      this.redis.llen(this.keys.ready),
      this.redis.zcard(this.keys.delayed),
      this.redis.hlen(this.keys.inflight),
    ]);
    return { ready, delayed, inflight };
  }
}
