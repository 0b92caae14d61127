import {
  createContext,
  EXECUTOR_LOST,
  loadConfig,
  type QueueMessage,
  type RecoverResult,
  sleep,
  type TaskStore,
} from '@tasks/common';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimedWithoutPush, failLeased, insertTask, leaseAll } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { Sweeper, type SweeperOptions } from '../src/sweeper.js';

const options: SweeperOptions = { intervalMs: 100, graceMs: 0, pageSize: 100 };
const LEASE_MS = 100;

let t: TestEnv;
let sweeper: Sweeper | null = null;

beforeEach(async () => {
  t = await createTestEnv();
});
afterEach(async () => {
  await sweeper?.stop();
  sweeper = null;
  await t.cleanup();
});

function newSweeper(overrides: Partial<SweeperOptions> = {}): Sweeper {
  return new Sweeper({ store: t.store, logger: t.logger }, { ...options, ...overrides });
}

/** What a sweep did, as counts. */
async function sweep(overrides: Partial<SweeperOptions> = {}) {
  const r: RecoverResult = await newSweeper(overrides).sweep();
  return {
    reaped: r.reaped,
    repushed: r.repushed.length,
    deadLettered: r.deadLettered.length,
    invalid: r.invalid.length,
  };
}

const NOTHING = { reaped: 0, repushed: 0, deadLettered: 0, invalid: 0 };

/** Inserts tasks and claims them in MySQL, without pushing: a scheduler that died after its commit. */
async function claimWithoutPush(count: number): Promise<QueueMessage[]> {
  for (let i = 0; i < count; i++) await insertTask(t, { message: `task ${i}`, time: 0 });
  const dispatched = await claimedWithoutPush(t, count);
  // The sweeper looks for tasks dispatched before now - grace: make sure the clock has moved past the claim.
  await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
  return dispatched;
}

/** Inserts tasks and claims them one at a time, as the scheduler does (each message pushed), oldest first. */
async function claimOneByOne(count: number): Promise<QueueMessage[]> {
  for (let i = 0; i < count; i++) await insertTask(t, { message: `task ${i}`, time: 0 });
  const messages: QueueMessage[] = [];
  for (let i = 0; i < count; i++) messages.push(...(await t.store.claim(1)).dispatched);
  await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
  return messages;
}

/** A task claimed after two failed attempts (its message's tries 2): its next try is its last of MAX_ATTEMPTS=3. */
async function claimedOnItsLastAttempt(): Promise<QueueMessage> {
  const id = await insertTask(t, { message: 'task 0', time: 0 });
  await t.sql.query('UPDATE tasks SET attempts = 2 WHERE id = ?', [id]);
  const [message] = (await t.store.claim(1)).dispatched;
  expect(message).toMatchObject({ id, tries: 2 });
  await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
  return message!;
}

/** Stores like the test's whose retries wait a minute: a failed try's message stays in the delayed set. */
const slowRetries: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(slowRetries.splice(0).map((c) => c.close()));
});
function storeRetryingInAMinute(): TaskStore {
  const config = loadConfig({ ...t.env, RETRY_BACKOFF_MS: '60000', RETRY_BACKOFF_MAX_MS: '60000' });
  const ctx = createContext(config, 'test-slow-retries', { logger: t.logger, random: () => 1 });
  slowRetries.push(ctx);
  return ctx.store;
}

/** Leases the next ready message (the oldest pushed) and fails it: its retry waits a minute. Returns its task. */
async function failIntoDelayed(): Promise<number> {
  const store = storeRetryingInAMinute();
  const { leased } = await store.fetch(1, 60_000);
  const [one] = leased;
  if (!one?.message) throw new Error('no message to fail');
  const [outcome] = await store.fail([{ token: one.token, message: one.message, error: 'boom', failedAt: Date.now() }]);
  expect(outcome).toEqual({ outcome: 'retried', retryInMs: 60_000 });
  return one.message.id;
}

async function ready(): Promise<QueueMessage[]> {
  return (await t.redis.lrange(t.keys.tasks.ready, 0, -1)).map((m) => JSON.parse(m));
}

async function deadLetters(): Promise<Record<string, unknown>[]> {
  return (await t.redis.lrange(t.keys.deadLetters, 0, -1)).map((m) => JSON.parse(m));
}

describe('Sweeper.sweep', () => {
  it('pushes again a processing task whose message Redis does not hold, in the same run', async () => {
    const [message] = await claimWithoutPush(1);
    expect(await sweep()).toEqual({ ...NOTHING, repushed: 1 });
    expect(await ready()).toEqual([message]);
    expect(await t.store.getTask(message!.id)).toMatchObject({ status: 'processing' });
    // Pushed once: the next sweep finds the message where it is.
    expect(await sweep()).toEqual(NOTHING);
    expect(await ready()).toHaveLength(1);
  });

  it('recovers a lost task in one pass behind 50,000 queued tasks, asking Redis one page of ids at a time', async () => {
    const backlog = 50_000;
    for (let done = 0; done <= backlog; done += 5_000) {
      const rows = Array.from({ length: Math.min(5_000, backlog + 1 - done) }, (_, i) => [
        JSON.stringify({ message: `task ${done + i}`, time: 0 }),
      ]);
      await t.sql.query('INSERT INTO tasks (data) VALUES ?', [rows]);
    }
    for (let done = 0; done < backlog; done += 5_000) await t.store.claim(5_000);
    // The newest task was claimed and never pushed: its scheduler died.
    const [lost] = await claimedWithoutPush(t, 1);
    await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
    expect(await t.store.depths()).toMatchObject({ ready: backlog });

    const monitor = await new Redis(t.config.REDIS_URL).monitor();
    const commands: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args.some((a) => a.startsWith(t.config.KEY_PREFIX))) commands.push(args);
    });
    try {
      const passStarted = performance.now();
      const result = await newSweeper({ pageSize: 1_000 }).sweep();
      console.log(
        `[sweep] one pass over ${backlog + 1} processing tasks: ${Math.round(performance.now() - passStarted)} ms`,
      );
      expect(result.repushed).toEqual([lost!.id]);
      expect(result.checked).toBe(backlog + 1);
    } finally {
      await sleep(100);
      monitor.disconnect();
    }
    const lookups = commands.filter((c) => c[0]?.toLowerCase() === 'smismember');
    expect(lookups).toHaveLength(Math.ceil((backlog + 1) / 1_000));
    expect(Math.max(...lookups.map((c) => c.length))).toBeLessThanOrEqual(1_000 + 2);
    // Nothing read a queue structure whole.
    const names = new Set(commands.map((c) => c[0]?.toLowerCase()));
    for (const whole of ['lrange', 'hvals', 'hgetall', 'zrange', 'smembers']) expect(names).not.toContain(whole);
    expect(await ready()).toHaveLength(backlog + 1);
  });

  it('rebuilds the present set when it is missing but messages are there, and pushes nothing again', async () => {
    // As after an upgrade from a version that kept no present set: messages, and no set.
    // One waits out a retry's backoff, one is leased, one is ready.
    const [delayed, leased, ready] = await claimOneByOne(3);
    expect(await failIntoDelayed()).toBe(delayed!.id);
    expect((await t.store.fetch(1, 60_000)).leased.map((l) => l.message?.id)).toEqual([leased!.id]);
    await t.redis.del(t.keys.present);
    expect(await t.store.depths()).toMatchObject({ ready: 1, inflight: 1, delayed: 1 });

    const result = await newSweeper().sweep();
    expect(result.restored).toBe(3);
    expect(result.repushed).toEqual([]);
    expect(await t.redis.smismember(t.keys.present, ready!.id, leased!.id, delayed!.id)).toEqual([1, 1, 1]);
    // Present already: nothing to rebuild.
    expect((await newSweeper().sweep()).restored).toBe(0);
  });

  it('leaves a task alone while it is within the grace period', async () => {
    await claimWithoutPush(1);
    expect(await sweep({ graceMs: 60_000 })).toEqual(NOTHING);
    expect(await ready()).toEqual([]);
  });

  it('covers every processing task in one pass, a page at a time', async () => {
    for (let i = 0; i < 25; i++) await insertTask(t, { message: `task ${i}`, time: 0 });
    // Of 25 claimed, the middle ten did reach Redis.
    const messages = [
      ...(await claimedWithoutPush(t, 5)),
      ...(await t.store.claim(10)).dispatched,
      ...(await claimedWithoutPush(t, 10)),
    ];
    await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
    const result = await newSweeper({ pageSize: 4 }).sweep();
    expect(result.checked).toBe(25);
    expect(result.repushed.sort((a, b) => a - b)).toEqual(
      [...messages.slice(0, 5), ...messages.slice(15)].map((m) => m.id).sort((a, b) => a - b),
    );
    expect(await sweep({ pageSize: 4 })).toEqual(NOTHING);
  });

  it('covers the processing tasks of every group and priority in one pass, each lane a page at a time', async () => {
    const lanes = [
      { group: null, priority: 0 },
      { group: null, priority: 5 },
      { group: null, priority: -2 },
      { group: 'a', priority: 0 },
      { group: 'a', priority: 3 },
      { group: 'b', priority: -1 },
    ];
    for (const [i, lane] of lanes.entries()) {
      const tasks = Array.from({ length: 5 }, (_, n) => ({
        data: { message: `lane ${i} task ${n}`, time: 0 },
        idempotencyKey: null,
        ...lane,
      }));
      await t.store.insert(tasks);
    }
    const messages = await claimedWithoutPush(t, 30);
    await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
    const result = await newSweeper({ pageSize: 2 }).sweep();
    expect(result.checked).toBe(30);
    expect(result.repushed.sort((a, b) => a - b)).toEqual(messages.map((m) => m.id).sort((a, b) => a - b));
    expect(await sweep({ pageSize: 2 })).toEqual(NOTHING);
  });

  it('does not push again a task whose message is ready, leased, delayed or on its way to the DLQ processor', async () => {
    const [inFlight, inDelayed, inInboxFlight, inInbox, inReady] = await claimOneByOne(5);

    const [leasedTask] = (await t.store.fetch(1, 60_000)).leased;
    expect(leasedTask?.message?.id).toBe(inFlight!.id);

    expect(await failIntoDelayed()).toBe(inDelayed!.id);

    // An executor sets a message aside: its dead letter goes to the DLQ processor's inbox.
    const setAside = async (id: number) => {
      const [leased] = (await t.store.fetch(1, 60_000)).leased;
      expect(leased?.message?.id).toBe(id);
      expect(await t.store.setAside(leased!, 'boom')).toBe(true);
    };
    await setAside(inInboxFlight!.id);
    // A DLQ processor has leased that dead letter and is recording it.
    const [recording] = await t.store.fetchDeadLetters(1, 60_000);
    expect(JSON.parse(recording!.raw).id).toBe(inInboxFlight!.id);

    await setAside(inInbox!.id);

    const before = await t.store.depths();
    expect(before).toMatchObject({ ready: 1, inflight: 1, delayed: 1, deadLetterInbox: 1 });
    expect(leasedTask).toBeDefined();

    expect(await sweep()).toEqual(NOTHING);
    expect(await t.store.depths()).toEqual(before);
    expect(await ready()).toEqual([inReady]);
  });

  it('returns a task whose lease expired, counting the lost run as an attempt', async () => {
    const [message] = await claimOneByOne(1);
    await t.store.fetch(1, LEASE_MS);

    expect(await sweep()).toEqual(NOTHING);
    await sleep(LEASE_MS + 10);
    expect(await sweep()).toEqual({ ...NOTHING, reaped: 1 });
    expect(await ready()).toEqual([{ ...message, tries: 1 }]);
    expect(await t.store.depths()).toMatchObject({ inflight: 0, deadLetters: 0 });
  });

  it('dead-letters a task whose lease expired on its last attempt, with the executor-lost error', async () => {
    const message = await claimedOnItsLastAttempt();
    await t.store.fetch(1, LEASE_MS);
    await sleep(LEASE_MS + 10);

    expect(await sweep()).toEqual({ ...NOTHING, reaped: 1 });
    expect(await deadLetters()).toEqual([
      { ...message, tries: 3, error: EXECUTOR_LOST, failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    expect(await t.store.depths()).toMatchObject({ ready: 0, inflight: 0, deadLetters: 1, deadLetterInbox: 1 });
  });

  it('dead-letters a lost task that is out of attempts, with its last error, instead of pushing it', async () => {
    const message = await claimedOnItsLastAttempt();
    // Its last try failed and was recorded, and Redis then lost the dead letter.
    expect(await failLeased(t, await leaseAll(t), { error: 'boom 3' })).toEqual(['dead-lettered']);
    await t.redis.del(t.keys.deadLetters, t.keys.deadLetterInbox.ready, t.keys.present);
    await t.sql.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');

    expect(await sweep()).toEqual({ ...NOTHING, deadLettered: 1 });
    expect(await ready()).toEqual([]);
    expect(await deadLetters()).toEqual([
      { ...message, tries: 3, error: 'boom 3', failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) },
    ]);
    expect(await t.store.depths()).toMatchObject({ deadLetterInbox: 1 });
    // Dead-lettered once: now the inbox holds it.
    expect(await sweep()).toEqual(NOTHING);
  });

  it('marks failed, with the reason, a lost task whose data cannot become a message', async () => {
    const [message] = await claimWithoutPush(1);
    await t.sql.query("UPDATE tasks SET data = 'null' WHERE id = ?", [message!.id]);
    expect(await sweep()).toEqual({ ...NOTHING, invalid: 1 });
    expect(await t.store.getTask(message!.id)).toMatchObject({
      status: 'failed',
      lastError: 'invalid task data: not a JSON object',
    });
    expect(await ready()).toEqual([]);
  });

  it('leaves finished tasks alone', async () => {
    const [message] = await claimWithoutPush(1);
    await t.sql.query("UPDATE tasks SET status = 'completed' WHERE id = ?", [message!.id]);
    expect(await sweep()).toEqual(NOTHING);
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

  it('with several sweepers, one of them sweeps in each interval', async () => {
    const swept: number[] = [];
    const sweepers = [0, 1, 2].map((i) => {
      const s = newSweeper({ intervalMs: 300 });
      const sweep = s.sweep.bind(s);
      s.sweep = async () => {
        swept.push(i);
        return sweep();
      };
      return s;
    });
    for (const s of sweepers) s.start();
    await sleep(1_000);
    await Promise.all(sweepers.map((s) => s.stop()));
    // Three sweepers ticking every 300 ms for a second: a pass per interval, not three.
    expect(swept.length).toBeGreaterThanOrEqual(2);
    expect(swept.length).toBeLessThanOrEqual(4);
  });
});
