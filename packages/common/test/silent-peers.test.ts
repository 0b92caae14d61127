import type { Task } from '@tasks/common';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Executor } from '../../../services/executor/src/executor.js';
import { simulatedWork } from '../../../services/executor/src/simulated-work.js';
import { dispatchedTasks } from '../../../test/support/runs.js';
import { until } from '../../../test/support/wait.js';
import { NAMED_LOCK_SILENT_S } from '../src/mysql/named-lock.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { deleteExpiredTasks } from '../src/tasks/retention.js';
import { getTask } from '../src/tasks/task-reads.js';
import { claimAndDispatch } from '../src/tasks/transitions/claim-and-dispatch.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

/**
 * A process that holds a named lock or row locks and stops answering (SIGSTOP, a VM pause, a
 * long pause for garbage collection, a partition that leaves its session open) keeps them as
 * long as its session lives, hours by default. Here that process is a session of the test's own
 * that takes the locks and then sends nothing; the others must go on within seconds.
 */

let t: TestEnv;
let silent: Connection | null = null;

beforeAll(async () => {
  t = await createTestEnv({ DB_LOCK_WAIT_TIMEOUT_S: '2' });
});
afterEach(async () => {
  await silent?.end().catch(() => undefined);
  silent = null;
});
afterAll(async () => {
  await t.cleanup();
});

/** A session that will hold locks and then say nothing. */
async function silentSession(): Promise<Connection> {
  silent = await mysql.createConnection({ uri: t.config.MYSQL_URL });
  return silent;
}

async function namedLock(connection: Connection, name: string): Promise<void> {
  const [[row]] = await connection.query<RowDataPacket[]>(
    "SELECT GET_LOCK(LEFT(CONCAT(?, ':', DATABASE()), 64), 0) AS locked",
    [name],
  );
  expect(Number(row?.locked)).toBe(1);
}

async function pendingTasks(count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) ids.push(await insertTask(t.ctx.pool, { message: `task ${i}`, time: 0 }));
  return ids;
}

describe('a named lock whose holder stopped answering', () => {
  it('stalls claims for seconds, not for as long as the holder lives', async () => {
    const ids = await pendingTasks(5);
    await namedLock(await silentSession(), 'claim');
    // While the holder may still be working, the lock keeps the others out.
    expect(await claimAndDispatch(t.ctx, 10)).toMatchObject({ busy: true, dispatched: [] });
    const started = Date.now();
    let dispatched: number[] = [];
    await until(async () => {
      dispatched = (await claimAndDispatch(t.ctx, 10)).dispatched.map((m) => m.id);
      return dispatched.length > 0;
    }, 15_000);
    expect(dispatched.sort((a, b) => a - b)).toEqual(ids);
    expect(Date.now() - started).toBeLessThan((NAMED_LOCK_SILENT_S + 5) * 1000);
  });

  it('stalls retention for seconds', async () => {
    await namedLock(await silentSession(), 'retention');
    const options = { days: 1, pageSize: 100 };
    expect(await deleteExpiredTasks(t.ctx.pool, options, 0)).toBeNull();
    let step: Awaited<ReturnType<typeof deleteExpiredTasks>> = null;
    await until(async () => {
      step = await deleteExpiredTasks(t.ctx.pool, options, 0);
      return step !== null;
    }, 15_000);
    expect(step).toMatchObject({ completed: 0, failed: 0 });
  });
});

describe('row locks held by a session that stopped answering', () => {
  it('do not stop a claim: it takes the other pending tasks', async () => {
    const ids = await pendingTasks(8);
    const held = ids.slice(0, 3);
    // What a claim that stopped answering between its marks and its commit holds.
    const holder = await silentSession();
    await holder.beginTransaction();
    await holder.query(
      "UPDATE tasks SET status = 'processing', run = run + 1 WHERE id BETWEEN ? AND ? AND status = 'pending'",
      [held[0], held[2]],
    );
    const first = (await claimAndDispatch(t.ctx, 10)).dispatched.map((m) => m.id);
    // The rows after the held ones (MariaDB also keeps the first of them locked, for the gap).
    expect(first.length).toBeGreaterThanOrEqual(4);
    expect(first.every((id) => !held.includes(id))).toBe(true);
    await holder.rollback();
    const rest = (await claimAndDispatch(t.ctx, 10)).dispatched.map((m) => m.id);
    expect([...first, ...rest].sort((a, b) => a - b)).toEqual(ids);
  });

  it("hold up only their own task's outcome, not the outcomes written with it or after it", async () => {
    const messages = await dispatchedTasks(t, 40);
    const ids = messages.map((m) => m.id);
    const [locked] = ids as [number];
    const holder = await silentSession();
    await holder.beginTransaction();
    await holder.query('SELECT id FROM tasks WHERE id = ? FOR UPDATE', [locked]);
    const executor = new Executor(
      { store: t.ctx.store, logger: t.ctx.logger, clock: t.ctx.clock, work: simulatedWork(0) },
      {
        concurrency: 40,
        fetchBatchSize: 40,
        leaseMs: 60_000,
        pollIntervalMs: 50,
        shutdownTimeoutMs: 2_000,
      },
    );
    executor.start();
    try {
      const tasks = async () => Promise.all(ids.map(async (id) => (await getTask(t.ctx.pool, id)) as Task));
      await until(async () => (await tasks()).filter((task) => task.status === 'completed').length === 39, 15_000);
      // The one whose row is held is still running its completion: still leased, not failed.
      expect((await getTask(t.ctx.pool, locked))?.status).toBe('processing');
      // Outcomes that come after are not held up either.
      const [later] = await dispatchedTasks(t, 1);
      await until(async () => (await getTask(t.ctx.pool, later?.id as number))?.status === 'completed', 10_000);
      await holder.rollback();
      await until(async () => (await getTask(t.ctx.pool, locked))?.status === 'completed', 15_000);
      expect((await getTask(t.ctx.pool, locked))?.attempts).toBe(1);
    } finally {
      await executor.stop();
    }
  });
});
