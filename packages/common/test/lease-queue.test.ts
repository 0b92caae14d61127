import { type Clock, EXECUTOR_LOST, type QueueMessage, queueKeys, sleep } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TaskQueue } from '../src/redis/task-queue.js';
import { encodeMessage } from '../src/wire/message-codec.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;
/** The host's time, for the dead letters' failed_at only: leases run on Redis's clock. */
let now: number;
let queue: TaskQueue;

beforeEach(async () => {
  t = await createTestEnv();
  now = 1_700_000_000_000;
  const clock: Clock = { now: () => now };
  const keys = queueKeys({ prefix: t.config.KEY_PREFIX, queue: 'task_queue', deadLetter: 'dead-letter-queue' });
  queue = new TaskQueue(t.ctx.redis, keys, 100, clock);
});
afterEach(async () => {
  await t.cleanup();
});

function message(id: number, tries = 0): QueueMessage {
  return { id, message: `task ${id}`, time: 0, tries, run: 1 };
}

function encoded(id: number, tries = 0): string {
  return encodeMessage(message(id, tries));
}

async function fetchIds(max: number, leaseMs = 1_000): Promise<number[]> {
  const { leased } = await queue.tasks.fetch(max, leaseMs);
  return leased.map((l) => JSON.parse(l.raw).id);
}

async function redisNow(): Promise<number> {
  const [s, us] = await t.ctx.redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

async function presentIds(): Promise<number[]> {
  return (await t.ctx.redis.smembers(queue.keys.present)).map(Number).sort((a, b) => a - b);
}

describe('LeaseQueue', () => {
  it('leases messages first in, first out, each under its own token', async () => {
    await queue.dispatch([message(1), message(2), message(3)]);
    await queue.dispatch([message(4)]);
    const first = await queue.tasks.fetch(2, 1_000);
    expect(first.leased.map((l) => l.raw)).toEqual([encoded(1), encoded(2)]);
    expect(await fetchIds(10)).toEqual([3, 4]);
    expect(await queue.tasks.depths()).toEqual({ ready: 0, delayed: 0, inflight: 4 });
    const tokens = new Set(first.leased.map((l) => l.token));
    expect(tokens.size).toBe(2);
    expect(await queue.tasks.fetch(5, 1_000)).toEqual({ leased: [], nextDueInMs: null });
  });

  it('keeps a leased message in Redis, with a deadline on Redis’s clock, until it is acknowledged', async () => {
    await queue.dispatch([message(1), message(2)]);
    const before = await redisNow();
    const { leased } = await queue.tasks.fetch(2, 1_000);
    const after = await redisNow();
    expect(await t.ctx.redis.hgetall(queue.keys.tasks.inflight)).toEqual(
      Object.fromEntries(leased.map((l) => [l.token, l.raw])),
    );
    const deadlines = await t.ctx.redis.zrange(queue.keys.tasks.leases, 0, -1, 'WITHSCORES');
    for (const deadline of deadlines.filter((_, i) => i % 2 === 1).map(Number)) {
      expect(deadline).toBeGreaterThanOrEqual(before + 1_000);
      expect(deadline).toBeLessThanOrEqual(after + 1_000);
    }

    expect(await presentIds()).toEqual([1, 2]);
    expect(
      await queue.tasks.ack(
        leased.map((l) => l.token),
        [1, 2],
      ),
    ).toBe(2);
    expect(await queue.tasks.depths()).toEqual({ ready: 0, delayed: 0, inflight: 0 });
    expect(await t.ctx.redis.zcard(queue.keys.tasks.leases)).toBe(0);
    expect(await presentIds()).toEqual([]);
    // Acknowledging again finds nothing held.
    expect(
      await queue.tasks.ack(
        leased.map((l) => l.token),
        [],
      ),
    ).toBe(0);
  });

  it('puts released messages back at the head of the line, unchanged', async () => {
    await queue.dispatch([message(1), message(2), message(3)]);
    const { leased } = await queue.tasks.fetch(2, 1_000);
    expect(await queue.tasks.release(leased.map((l) => l.token))).toBe(2);
    expect(await queue.tasks.depths()).toEqual({ ready: 3, delayed: 0, inflight: 0 });
    expect(await fetchIds(3)).toEqual([1, 2, 3]);
    // A lease already settled is not handed back twice.
    expect(await queue.tasks.release(leased.map((l) => l.token))).toBe(0);
    expect(await presentIds()).toEqual([1, 2, 3]);
  });

  it('keeps an extended lease alive past its original deadline', async () => {
    await queue.dispatch([message(1), message(2)]);
    const { leased } = await queue.tasks.fetch(2, 300);
    const [kept] = leased;
    await sleep(200);
    expect(await queue.tasks.extend([kept!.token], 1_000)).toBe(1);

    await sleep(150); // past the original deadline: only the lease that was not extended has run out
    expect(await queue.reapExpired(3, EXECUTOR_LOST)).toEqual({ requeued: 1, deadLettered: 0 });
    expect(await t.ctx.redis.hkeys(queue.keys.tasks.inflight)).toEqual([kept!.token]);
    expect(await t.ctx.redis.lrange(queue.keys.tasks.ready, 0, -1)).toEqual([encoded(2, 1)]);
    expect(await presentIds()).toEqual([1, 2]);
  });

  it('does not recreate a lease that was settled when extending it', async () => {
    await queue.dispatch([message(1)]);
    const { leased } = await queue.tasks.fetch(1, 1_000);
    await queue.tasks.ack([leased[0]!.token], [1]);
    expect(await queue.tasks.extend([leased[0]!.token], 1_000)).toBe(0);
    expect(await t.ctx.redis.zcard(queue.keys.tasks.leases)).toBe(0);
  });

  it('holds a retry due later in the delayed set until a fetch after its due time', async () => {
    await queue.dispatch([message(1)]);
    const { leased } = await queue.tasks.fetch(1, 1_000);
    expect(await queue.tasks.retry([{ token: leased[0]!.token, next: encoded(1, 1), delayMs: 300 }])).toEqual([true]);
    expect(await queue.tasks.depths()).toEqual({ ready: 0, delayed: 1, inflight: 0 });

    const early = await queue.tasks.fetch(1, 1_000);
    expect(early.leased).toEqual([]);
    expect(early.nextDueInMs).toBeGreaterThan(200);
    expect(early.nextDueInMs).toBeLessThanOrEqual(300);
    await sleep(early.nextDueInMs! + 10);
    const due = await queue.tasks.fetch(1, 1_000);
    expect(due.leased.map((l) => l.raw)).toEqual([encoded(1, 1)]);
    expect(await queue.tasks.depths()).toEqual({ ready: 0, delayed: 0, inflight: 1 });
  });

  it('puts a retry due now at the back of the ready list', async () => {
    await queue.dispatch([message(1), message(2)]);
    const { leased } = await queue.tasks.fetch(1, 1_000);
    expect(await queue.tasks.retry([{ token: leased[0]!.token, next: encoded(1, 1), delayMs: 0 }])).toEqual([true]);
    expect(await queue.tasks.depths()).toEqual({ ready: 2, delayed: 0, inflight: 0 });
    expect(await fetchIds(2)).toEqual([2, 1]);
  });

  it('does not retry a message whose lease was lost', async () => {
    await queue.dispatch([message(1)]);
    const { leased } = await queue.tasks.fetch(1, 50);
    await sleep(60);
    await queue.reapExpired(3, EXECUTOR_LOST);
    expect(await queue.tasks.retry([{ token: leased[0]!.token, next: encoded(1, 1), delayMs: 0 }])).toEqual([false]);
    expect(await t.ctx.redis.lrange(queue.keys.tasks.ready, 0, -1)).toEqual([encoded(1, 1)]);
  });

  it('resolves a wait for ready messages when one is pushed, without taking it', async () => {
    const blocking = t.ctx.openRedis('test-wait');
    try {
      const started = Date.now();
      const waiting = queue.tasks.waitForReady(blocking, 10_000);
      await queue.dispatch([message(1)]);
      await waiting;
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await fetchIds(1)).toEqual([1]);
    } finally {
      blocking.disconnect();
    }
  });
});

describe('TaskQueue leases that run out', () => {
  it('are requeued with one more try, or dead-lettered on the last attempt', async () => {
    await queue.dispatch([message(1, 0), message(2, 2)]);
    await queue.tasks.fetch(2, 50);
    await sleep(60);
    expect(await queue.reapExpired(3, EXECUTOR_LOST)).toEqual({ requeued: 1, deadLettered: 1 });
    expect(await t.ctx.redis.lrange(queue.keys.tasks.ready, 0, -1)).toEqual([encoded(1, 1)]);
    const letters = await t.ctx.redis.lrange(queue.keys.deadLetters, 0, -1);
    expect(letters.map((l) => JSON.parse(l))).toEqual([
      { ...message(2, 3), error: EXECUTOR_LOST, failed_at: new Date(now).toISOString() },
    ]);
    expect(await t.ctx.redis.lrange(queue.keys.deadLetterInbox.ready, 0, -1)).toEqual(letters);
    // Both tasks still have a message in Redis: one ready, one on its way to the DLQ processor.
    expect(await presentIds()).toEqual([1, 2]);
  });

  it('dead-letter what is not a task message as it is', async () => {
    await t.ctx.redis.lpush(queue.keys.tasks.ready, 'not json');
    await queue.tasks.fetch(1, 50);
    await sleep(60);
    expect(await queue.reapExpired(3, EXECUTOR_LOST)).toEqual({ requeued: 0, deadLettered: 1 });
    const [letter] = await t.ctx.redis.lrange(queue.keys.deadLetters, 0, -1);
    expect(JSON.parse(letter!)).toMatchObject({ raw: 'not json', error: 'invalid message: not JSON' });
    expect(await queue.depths()).toMatchObject({ deadLetterInbox: 0 });
  });
});

describe('TaskQueue dead letters', () => {
  it('keep at most the retention on the inspectable list, and every one in the inbox', async () => {
    await queue.deadLetter(
      Array.from({ length: 105 }, (_, i) => ({
        token: null,
        letter: { ...message(i + 1, 3), error: 'boom', failed_at: new Date(now).toISOString() },
      })),
    );
    const depths = await queue.depths();
    expect(depths).toMatchObject({ deadLetters: 100, deadLetterInbox: 105 });
    const newest = JSON.parse((await t.ctx.redis.lindex(queue.keys.deadLetters, 0))!);
    expect(newest.id).toBe(105);
    expect(await presentIds()).toHaveLength(105);
  });

  it('are not written for a lease that was lost', async () => {
    await queue.dispatch([message(1, 2)]);
    const { leased } = await queue.tasks.fetch(1, 1_000);
    await queue.tasks.ack([leased[0]!.token], [1]);
    const letter = { ...message(1, 3), error: 'boom', failed_at: new Date(now).toISOString() };
    expect(await queue.deadLetter([{ token: leased[0]!.token, letter }])).toEqual([false]);
    expect(await queue.depths()).toMatchObject({ deadLetters: 0, deadLetterInbox: 0 });
    expect(await presentIds()).toEqual([]);
  });
});

describe('TaskQueue.present', () => {
  it('knows every task with a message anywhere in Redis, and no other', async () => {
    await queue.dispatch([message(1), message(2), message(3), message(12)]);
    const { leased } = await queue.tasks.fetch(2, 1_000); // 1 and 2 leased
    await queue.tasks.retry([{ token: leased[1]!.token, next: encoded(2, 1), delayMs: 10_000 }]); // 2 delayed
    await queue.deadLetter([
      { token: null, letter: { ...message(4, 3), error: 'boom', failed_at: new Date(now).toISOString() } },
    ]);
    // 3 and 12 ready, 1 leased, 2 delayed, 4 in the inbox; 5, 21 and 123 nowhere.
    const ids = [1, 2, 3, 4, 5, 12, 21, 123];
    const present = await queue.present(ids);
    expect(ids.filter((_, i) => !present[i])).toEqual([5, 21, 123]);
  });
});
