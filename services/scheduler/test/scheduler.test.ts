import { type Context, createContext, type TaskStore } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { PROMOTE_EVERY_MS, Scheduler, type SchedulerOptions } from '../src/scheduler.js';

const options: SchedulerOptions = { batchSize: 100, pollIntervalMs: 50, maxQueueDepth: 10_000 };

let t: TestEnv;
let started: Scheduler[] = [];
let others: Context[] = [];

beforeEach(async () => {
  t = await createTestEnv();
});
afterEach(async () => {
  await Promise.all(started.map((s) => s.stop()));
  started = [];
  await Promise.all(others.map((c) => c.close()));
  others = [];
  await t.cleanup();
});

function scheduler(overrides: Partial<SchedulerOptions> = {}, store: TaskStore = t.store): Scheduler {
  return new Scheduler({ store, logger: t.logger }, { ...options, ...overrides });
}

async function insert(count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(await insertTask(t, { message: `task ${i}`, time: i % 4 }));
  return ids;
}

/** The ready list in the order executors take it (they pop from the right). */
async function readyInTakeOrder(): Promise<string[]> {
  return (await t.redis.lrange(t.keys.tasks.ready, 0, -1)).reverse();
}

async function countByStatus(): Promise<Record<string, number>> {
  const [rows] = await t.sql.query<RowDataPacket[]>('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

describe('Scheduler.dispatchBatch', () => {
  it('runs rows an older client wrote when they mean the same, and fails with the reason those that cannot run', async () => {
    const rows = [
      '{"message":"older client","time":"3"}',
      'null',
      '{"message":5,"time":1}',
      '{"message":"no time"}',
      '{"message":"fine","time":2}',
    ];
    await t.sql.query('INSERT INTO tasks (data) VALUES ?', [rows.map((r) => [r])]);
    const [idRows] = await t.sql.query<RowDataPacket[]>('SELECT id FROM tasks ORDER BY id');
    const [older, nothing, numeric, timeless, fine] = idRows.map((r) => Number(r.id));

    const { dispatched, invalid } = await scheduler().dispatchBatch();
    expect(dispatched.map((m) => ['message' in m ? [m.id, m.message, m.time] : [m.id]].flat())).toEqual([
      [older, 'older client', 3],
      [fine, 'fine', 2],
    ]);
    expect(invalid).toEqual([
      { id: nothing, reason: 'invalid task data: not a JSON object' },
      { id: numeric, reason: 'invalid task data: message must be a string' },
      { id: timeless, reason: 'invalid task data: time must be a whole number of seconds from 0 to 86400' },
    ]);
    for (const { id, reason } of invalid) {
      expect(await t.store.getTask(id)).toMatchObject({
        status: 'failed',
        lastError: reason,
        finishedAt: expect.any(Date),
      });
    }
    expect(await countByStatus()).toEqual({ processing: 2, failed: 3 });
    // Nothing is left for a later claim or sweep to trip over.
    expect((await scheduler().dispatchBatch()).dispatched).toEqual([]);
  });

  it('claims pending tasks oldest first, marks them processing and pushes them in the original format', async () => {
    const ids = await insert(5);
    const { dispatched } = await scheduler({ batchSize: 3 }).dispatchBatch();
    expect(dispatched).toHaveLength(3);

    const ready = await readyInTakeOrder();
    expect(ready).toEqual([
      `{"id":${ids[0]},"message":"task 0","time":0,"tries":0,"run":1}`,
      `{"id":${ids[1]},"message":"task 1","time":1,"tries":0,"run":1}`,
      `{"id":${ids[2]},"message":"task 2","time":2,"tries":0,"run":1}`,
    ]);
    for (const id of ids.slice(0, 3)) {
      const task = await t.store.getTask(id);
      expect(task).toMatchObject({ status: 'processing', dispatchedAt: expect.any(Date) });
      const [[row]] = (await t.sql.query('SELECT run FROM tasks WHERE id = ?', [id])) as [{ run: number }[], unknown];
      expect(row?.run).toBe(1);
    }
    for (const id of ids.slice(3)) {
      expect(await t.store.getTask(id)).toMatchObject({ status: 'pending', dispatchedAt: null });
    }
  });

  it('sends the attempts already made as tries', async () => {
    const [id] = await insert(1);
    await t.sql.query('UPDATE tasks SET attempts = 2 WHERE id = ?', [id]);
    await scheduler().dispatchBatch();
    expect(await readyInTakeOrder()).toEqual([`{"id":${id},"message":"task 0","time":0,"tries":2,"run":1}`]);
  });

  it('returns 0 and pushes nothing when no task is pending', async () => {
    expect((await scheduler().dispatchBatch()).dispatched.length).toBe(0);
    expect(await t.store.depths()).toMatchObject({ ready: 0 });
  });

  it('claims nothing while the ready list is at maxQueueDepth, and only up to it after', async () => {
    await insert(10);
    const s = scheduler({ batchSize: 100, maxQueueDepth: 4 });
    expect((await s.dispatchBatch()).dispatched.length).toBe(4);
    expect((await s.dispatchBatch()).dispatched.length).toBe(0);
    expect(await countByStatus()).toEqual({ pending: 6, processing: 4 });

    // An executor takes three messages: there is room for three more.
    const { leased } = await t.store.fetch(3, 60_000);
    expect(leased).toHaveLength(3);
    expect((await s.dispatchBatch()).dispatched.length).toBe(3);
    expect(await t.store.depths()).toMatchObject({ ready: 4 });
    expect(await countByStatus()).toEqual({ pending: 3, processing: 7 });
  });

  it('never dispatches a task twice when two schedulers claim at once', async () => {
    const total = 2_000;
    const values = Array.from({ length: total }, (_, i) => [JSON.stringify({ message: `bulk ${i}`, time: 0 })]);
    await t.sql.query('INSERT INTO tasks (data) VALUES ?', [values]);
    const [idRows] = await t.sql.query<RowDataPacket[]>('SELECT id FROM tasks ORDER BY id');
    const ids = idRows.map((r) => Number(r.id));

    // Two schedulers, each with clients of its own, as two processes would have.
    others = [0, 1].map((i) => createContext(t.config, `scheduler-${i}`, { logger: t.logger }));
    const schedulers = others.map((other) => scheduler({ batchSize: 50 }, other.store));
    const runUntilDrained = async (s: Scheduler): Promise<number> => {
      let dispatched = 0;
      for (;;) {
        const count = (await s.dispatchBatch()).dispatched.length;
        dispatched += count;
        if (count === 0 && (await countByStatus()).pending === undefined) return dispatched;
      }
    };
    const counts = await Promise.all(schedulers.map(runUntilDrained));

    expect(counts[0]! + counts[1]!).toBe(total);
    expect(counts.every((c) => c > 0)).toBe(true);
    const pushed = (await readyInTakeOrder()).map((m) => JSON.parse(m).id as number);
    expect(pushed).toHaveLength(total);
    expect(new Set(pushed).size).toBe(total);
    expect([...pushed].sort((a, b) => a - b)).toEqual(ids);
    expect(await countByStatus()).toEqual({ processing: total });
  });
});

describe('Scheduler.start', () => {
  it('dispatches tasks that were pending when it started', async () => {
    const ids = await insert(3);
    const s = scheduler();
    started.push(s);
    await s.start();
    await until(async () => (await countByStatus()).processing === 3);
    expect((await readyInTakeOrder()).map((m) => JSON.parse(m).id)).toEqual(ids);
  });

  it('is woken by an insert announcement long before its poll interval', async () => {
    const [first] = await insert(1);
    const s = scheduler({ pollIntervalMs: 60_000 });
    started.push(s);
    await s.start();
    // The first pass has claimed and pushed the first task: the scheduler now waits out its poll interval.
    await until(async () => (await readyInTakeOrder()).length === 1);
    expect(JSON.parse((await readyInTakeOrder())[0]!).id).toBe(first);

    const woken = Date.now();
    const [second] = await insert(1);
    await t.store.announceInserted();
    // Marked processing at commit, pushed right after: wait for the push.
    await until(async () => (await readyInTakeOrder()).length === 2, 5_000);
    expect(Date.now() - woken).toBeLessThan(5_000);
    expect((await t.store.getTask(second!))?.status).toBe('processing');
    expect((await readyInTakeOrder()).map((m) => JSON.parse(m).id)).toEqual([first, second]);
  });

  it('makes the due tasks pending before the first of a run of full batches, then at most every PROMOTE_EVERY_MS', async () => {
    await insert(250);
    let promotions = 0;
    const counting = Object.assign(Object.create(t.store) as TaskStore, {
      promoteDue: (limit: number) => {
        promotions++;
        return t.store.promoteDue(limit);
      },
    });
    let clock = 0;
    const s = new Scheduler(
      { store: counting, logger: t.logger },
      { ...options, batchSize: 10, pollIntervalMs: 60_000 },
      () => clock,
    );
    started.push(s);
    await s.start();
    await until(async () => (await countByStatus()).processing === 250, 5_000);
    // 25 batches, one after another, within the same instant of the scheduler's clock.
    expect(promotions).toBe(1);

    clock = PROMOTE_EVERY_MS;
    await insert(30);
    await t.store.announceInserted();
    await until(async () => (await countByStatus()).processing === 280, 5_000);
    expect(promotions).toBe(2);
  });

  it('follows a full batch with another at once', async () => {
    await insert(25);
    const s = scheduler({ batchSize: 10, pollIntervalMs: 60_000 });
    started.push(s);
    await s.start();
    await until(async () => (await countByStatus()).processing === 25, 5_000);
  });

  it('stops promptly while waiting for its next poll', async () => {
    const s = scheduler({ pollIntervalMs: 60_000 });
    await s.start();
    const stopping = Date.now();
    await s.stop();
    expect(Date.now() - stopping).toBeLessThan(2_000);
  });
});
