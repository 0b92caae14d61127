import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { completeLeased, failLeased, leaseAll, recordInbox } from '../../../test/support/runs.js';
import { withNamedLock } from '../src/mysql/named-lock.js';
import { insertTask, insertTasks } from '../src/tasks/insert-tasks.js';
import { deleteExpiredTasks } from '../src/tasks/retention.js';
import { countByStatus, countedOneTrip, recountStatuses } from '../src/tasks/status-counts.js';
import { claimAndDispatch } from '../src/tasks/transitions/claim-and-dispatch.js';
import { redriveAllDeadLetters } from '../src/tasks/transitions/redrive.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;

beforeEach(async () => {
  // Every failed try is its task's last: failLeased dead-letters.
  t = await createTestEnv({ MAX_ATTEMPTS: '1' });
});
afterEach(async () => {
  await t.cleanup();
});

/** The counts as the table has them, every status present. */
async function counted(): Promise<Record<string, number>> {
  const [rows] = await t.ctx.pool.query<RowDataPacket[]>('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status');
  const counts: Record<string, number> = {
    pending: 0,
    processing: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
    delayed: 0,
  };
  for (const row of rows) counts[row.status] = Number(row.n);
  return counts;
}

async function expectExact(expected: Record<string, number>): Promise<void> {
  expect(await counted()).toEqual(expected);
  expect(await countByStatus(t.ctx.pool)).toEqual(expected);
}

/**
 * One task inserted and claimed alone, older tasks left pending (which no claim does): its
 * status written in MySQL, counted, and its message pushed.
 */
async function claimedAlone(data: { message: string; time: number }): Promise<number> {
  const id = await insertTask(t.ctx.pool, data);
  await countedOneTrip(t.ctx.pool, [
    {
      sql: "UPDATE tasks SET status = 'processing', run = 1, dispatched_at = NOW(3) WHERE id = ?",
      values: [id],
      move: { from: 'pending', to: 'processing' },
    },
  ]);
  await t.ctx.queue.dispatch([{ id, ...data, tries: 0, run: 1 }]);
  return id;
}

describe('task counts', () => {
  it('stay exact through inserts, claims, completions, dead letters, redrives and retention', async () => {
    await insertTasks(
      t.ctx.pool,
      Array.from({ length: 10 }, (_, i) => ({ data: { message: `m${i}`, time: 0 }, idempotencyKey: null })),
    );
    await insertTask(t.ctx.pool, { message: 'alone', time: 0 });
    await expectExact({ pending: 11, processing: 0, completed: 0, failed: 0, cancelled: 0, delayed: 0 });

    await claimAndDispatch(t.ctx, 6);
    await expectExact({ pending: 5, processing: 6, completed: 0, failed: 0, cancelled: 0, delayed: 0 });

    const leased = await leaseAll(t);
    await completeLeased(t, leased.slice(0, 3));
    // A completion of a task already completed counts nothing.
    await completeLeased(t, leased.slice(0, 1));
    await failLeased(t, leased.slice(3));
    await recordInbox(t);
    await expectExact({ pending: 5, processing: 0, completed: 3, failed: 3, cancelled: 0, delayed: 0 });

    await redriveAllDeadLetters(t.ctx);
    await expectExact({ pending: 8, processing: 0, completed: 3, failed: 0, cancelled: 0, delayed: 0 });

    await t.ctx.pool.query("UPDATE tasks SET finished_at = NOW(3) - INTERVAL 10 DAY WHERE status = 'completed'");
    await deleteExpiredTasks(t.ctx.pool, { days: 7, pageSize: 100 }, 0);
    await expectExact({ pending: 8, processing: 0, completed: 0, failed: 0, cancelled: 0, delayed: 0 });
  });
});

describe('recountStatuses', () => {
  it('sets the counts from the table, and a status write during the recount still counts once', async () => {
    await insertTask(t.ctx.pool, { message: 'counted', time: 0 });
    await t.ctx.pool.query('INSERT INTO tasks (data, status) VALUES (\'{"message":"by hand","time":0}\', \'failed\')');
    expect((await countByStatus(t.ctx.pool)).failed).toBe(0);
    const [recounted] = await Promise.all([recountStatuses(t.ctx.pool), claimAndDispatch(t.ctx, 10)]);
    expect(recounted.failed).toBe(1);
    await expectExact(await counted());
  });
});

describe('retention', () => {
  async function ageTasks(days: number, where = '1 = 1'): Promise<void> {
    await t.ctx.pool.query(
      `UPDATE tasks SET created_at = NOW(3) - INTERVAL ? DAY,
              finished_at = IF(status IN ('completed', 'failed'), NOW(3) - INTERVAL ? DAY, NULL) WHERE ${where}`,
      [days, days],
    );
  }

  it('deletes finished tasks older than the window a page at a time, and nothing else', async () => {
    for (let i = 0; i < 10; i++) await insertTask(t.ctx.pool, { message: `old ${i}`, time: 0 });
    await claimAndDispatch(t.ctx, 10);
    const leased = await leaseAll(t);
    await completeLeased(t, leased.slice(0, 8));
    await failLeased(t, leased.slice(8));
    await recordInbox(t);
    // Two old tasks never ran.
    for (let i = 0; i < 2; i++) await insertTask(t.ctx.pool, { message: `old pending ${i}`, time: 0 });
    await ageTasks(30);
    // Three recent ones finished.
    for (let i = 0; i < 3; i++) await claimedAlone({ message: `new ${i}`, time: 0 });
    await completeLeased(t, await leaseAll(t));
    await ageTasks(1, "JSON_UNQUOTE(JSON_EXTRACT(data, '$.message')) LIKE 'new%'");
    await t.ctx.pool.query(
      'INSERT INTO tasks_finished_per_minute (minute, completed) VALUES (UNIX_TIMESTAMP() DIV 60 - 30 * 1440, 8)',
    );

    const steps = [];
    let afterId = 0;
    do {
      const step = await deleteExpiredTasks(t.ctx.pool, { days: 7, pageSize: 4 }, afterId);
      steps.push(step);
      afterId = step?.nextAfterId ?? 0;
    } while (afterId !== 0);

    expect(steps.reduce((sum, s) => sum + (s?.completed ?? 0), 0)).toBe(8);
    expect(steps.reduce((sum, s) => sum + (s?.failed ?? 0), 0)).toBe(2);
    expect(steps.reduce((sum, s) => sum + (s?.minutes ?? 0), 0)).toBe(1);
    // Never more than a page in one step.
    expect(Math.max(...steps.map((s) => (s?.completed ?? 0) + (s?.failed ?? 0)))).toBeLessThanOrEqual(4);
    await expectExact({ pending: 2, processing: 0, completed: 3, failed: 0, cancelled: 0, delayed: 0 });
  });

  it('runs in one process at a time: a step is skipped while another holds the lock', async () => {
    const other = await withNamedLock(t.ctx.pool, 'retention', () =>
      deleteExpiredTasks(t.ctx.pool, { days: 7, pageSize: 4 }, 0),
    );
    expect(other).toBeNull();
    expect(await deleteExpiredTasks(t.ctx.pool, { days: 7, pageSize: 4 }, 0)).toMatchObject({ nextAfterId: 0 });
  });
});
