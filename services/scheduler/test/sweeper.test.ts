import {
  type Clock,
  claimPending,
  EXECUTOR_LOST,
  getTask,
  insertTask,
  type QueueMessage,
  recordFailedAttempts,
  TaskQueue,
} from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { toMessage } from '../src/scheduler.js';
import { Sweeper, type SweeperOptions } from '../src/sweeper.js';

const options: SweeperOptions = { intervalMs: 100, graceMs: 0, maxAttempts: 3, batchSize: 100 };
const LEASE_MS = 1_000;

let t: TestEnv;
/** Queue time, moved by the tests to make leases run out. */
let now: number;
let queue: TaskQueue;
let sweeper: Sweeper | null = null;

beforeEach(async () => {
  t = await createTestEnv();
  now = Date.now();
  const clock: Clock = { now: () => now };
  queue = new TaskQueue(t.ctx.redis, t.ctx.queue.keys, t.config.DEAD_LETTER_RETENTION, clock);
});
afterEach(async () => {
  await sweeper?.stop();
  sweeper = null;
  await t.cleanup();
});

function newSweeper(overrides: Partial<SweeperOptions> = {}): Sweeper {
  return new Sweeper({ pool: t.ctx.pool, queue, logger: t.ctx.logger }, { ...options, ...overrides });
}

/** Inserts tasks and claims them the way the scheduler does, without pushing: a scheduler that died after its commit. */
async function claimWithoutPush(count: number): Promise<QueueMessage[]> {
  for (let i = 0; i < count; i++) await insertTask(t.ctx.pool, { message: `task ${i}`, time: 0 });
  const claimed = await claimPending(t.ctx.pool, count);
  // The sweeper looks for tasks dispatched before now - grace: make sure the clock has moved past the claim.
  await t.ctx.pool.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
  return claimed.map(toMessage);
}

async function ready(): Promise<QueueMessage[]> {
  return (await t.ctx.redis.lrange(queue.keys.tasks.ready, 0, -1)).map((m) => JSON.parse(m));
}

async function deadLetters(): Promise<Record<string, unknown>[]> {
  return (await t.ctx.redis.lrange(queue.keys.deadLetters, 0, -1)).map((m) => JSON.parse(m));
}

describe('Sweeper.sweep', () => {
  it('pushes again a processing task whose message Redis does not hold', async () => {
    const [message] = await claimWithoutPush(1);
    const result = await newSweeper().sweep();
    expect(result).toEqual({ reaped: 0, repushed: 1, deadLettered: 0 });
    expect(await ready()).toEqual([message]);
    expect(await getTask(t.ctx.pool, message!.id)).toMatchObject({ status: 'processing' });
    // Pushed once: the next sweep finds the message where it is.
    expect(await newSweeper().sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 0 });
    expect(await ready()).toHaveLength(1);
  });

  it('leaves a task alone while it is within the grace period', async () => {
    await claimWithoutPush(1);
    expect(await newSweeper({ graceMs: 60_000 }).sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 0 });
    expect(await ready()).toEqual([]);
  });

  it('does not push again a task whose message is ready, leased, delayed or on its way to the DLQ processor', async () => {
    const [inReady, inFlight, inDelayed, inInbox, inInboxFlight] = await claimWithoutPush(5);

    await queue.dispatch([inFlight!]);
    const [leasedTask] = (await queue.tasks.fetch(1, 60_000)).leased;

    await queue.dispatch([inDelayed!]);
    const [retried] = (await queue.tasks.fetch(1, 60_000)).leased;
    expect(await queue.tasks.retry(retried!.token, JSON.stringify({ ...inDelayed, tries: 1 }), now + 60_000)).toBe(
      true,
    );

    await queue.dispatch([inInbox!]);
    const [lettered] = (await queue.tasks.fetch(1, 60_000)).leased;
    await queue.deadLetter(null, { ...inInboxFlight!, tries: 3, error: 'boom', failed_at: new Date().toISOString() });
    // A DLQ processor has leased that dead letter and is recording it.
    const [recording] = (await queue.inbox.fetch(1, 60_000)).leased;
    expect(JSON.parse(recording!.raw).id).toBe(inInboxFlight!.id);

    await queue.deadLetter(lettered!.token, {
      ...inInbox!,
      tries: 3,
      error: 'boom',
      failed_at: new Date().toISOString(),
    });

    await queue.dispatch([inReady!]);
    const before = await queue.depths();
    expect(before).toMatchObject({ ready: 1, inflight: 1, delayed: 1, deadLetterInbox: 1 });
    expect(leasedTask).toBeDefined();

    expect(await newSweeper().sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 0 });
    expect(await queue.depths()).toEqual(before);
    expect(await ready()).toEqual([inReady]);
  });

  it('returns a task whose lease expired, counting the lost run as an attempt', async () => {
    const [message] = await claimWithoutPush(1);
    await queue.dispatch([message!]);
    await queue.tasks.fetch(1, LEASE_MS);

    now += LEASE_MS - 1;
    expect(await newSweeper().sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 0 });
    now += 2;
    expect(await newSweeper().sweep()).toEqual({ reaped: 1, repushed: 0, deadLettered: 0 });
    expect(await ready()).toEqual([{ ...message, tries: 1 }]);
    expect(await queue.depths()).toMatchObject({ inflight: 0, deadLetters: 0 });
  });

  it('dead-letters a task whose lease expired on its last attempt, with the executor-lost error', async () => {
    const [message] = await claimWithoutPush(1);
    await queue.dispatch([{ ...message!, tries: 2 }]);
    await queue.tasks.fetch(1, LEASE_MS);
    now += LEASE_MS + 1;

    expect(await newSweeper().sweep()).toEqual({ reaped: 1, repushed: 0, deadLettered: 0 });
    expect(await deadLetters()).toEqual([
      { ...message, tries: 3, error: EXECUTOR_LOST, failed_at: new Date(now).toISOString() },
    ]);
    expect(await queue.depths()).toMatchObject({ ready: 0, inflight: 0, deadLetters: 1, deadLetterInbox: 1 });
  });

  it('dead-letters a lost task that is out of attempts, with its last error, instead of pushing it', async () => {
    const [message] = await claimWithoutPush(1);
    await recordFailedAttempts(t.ctx.pool, [{ id: message!.id, attempts: 3, error: 'boom 3' }]);

    expect(await newSweeper().sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 1 });
    expect(await ready()).toEqual([]);
    expect(await deadLetters()).toEqual([
      { ...message, tries: 3, error: 'boom 3', failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    expect(await queue.depths()).toMatchObject({ deadLetterInbox: 1 });
    // Dead-lettered once: now the inbox holds it.
    expect(await newSweeper().sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 0 });
  });

  it('leaves finished tasks alone', async () => {
    const [message] = await claimWithoutPush(1);
    await t.ctx.pool.query("UPDATE tasks SET status = 'completed' WHERE id = ?", [message!.id]);
    expect(await newSweeper().sweep()).toEqual({ reaped: 0, repushed: 0, deadLettered: 0 });
    expect(await ready()).toEqual([]);
  });
});

describe('Sweeper.start', () => {
  it('sweeps every interval until stopped', async () => {
    const [message] = await claimWithoutPush(1);
    sweeper = newSweeper({ intervalMs: 100 });
    sweeper.start();
    await until(async () => (await ready()).length === 1);
    expect(await ready()).toEqual([message]);
    const stopping = Date.now();
    await sweeper.stop();
    sweeper = null;
    expect(Date.now() - stopping).toBeLessThan(2_000);
  });
});
