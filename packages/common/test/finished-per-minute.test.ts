import { finishedPerMinute, insertTask, markCompleted, markFailed, retryFailedTasks } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

/** Finishes counted over the last two minutes (a test may straddle a minute's end). */
async function finishes(): Promise<{ completed: number; failed: number }> {
  const series = await finishedPerMinute(t.ctx.pool, 2, Date.now());
  return {
    completed: series.reduce((sum, m) => sum + m.completed, 0),
    failed: series.reduce((sum, m) => sum + m.failed, 0),
  };
}

async function processingTasks(n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(await insertTask(t.ctx.pool, { message: `task ${i}`, time: 0 }));
  await t.ctx.pool.query("UPDATE tasks SET status = 'processing' WHERE id IN (?)", [ids]);
  return ids;
}

describe('tasks finished per minute', () => {
  it('counts the tasks a write finished, and only those', async () => {
    const [a, b, c] = await processingTasks(3);
    const pending = await insertTask(t.ctx.pool, { message: 'never dispatched', time: 0 });
    const completed = await markCompleted(t.ctx.pool, [
      { id: a!, attempts: 1 },
      { id: b!, attempts: 2 },
      { id: pending, attempts: 1 },
    ]);
    expect(completed).toBe(2);
    expect(await markFailed(t.ctx.pool, [{ id: c!, attempts: 3, error: 'boom' }])).toBe(1);
    expect(await finishes()).toEqual({ completed: 2, failed: 1 });

    // Late or duplicate outcomes of finished tasks change nothing and count nothing.
    expect(await markCompleted(t.ctx.pool, [{ id: a!, attempts: 1 }])).toBe(0);
    expect(await markFailed(t.ctx.pool, [{ id: b!, attempts: 3, error: 'late' }])).toBe(0);
    expect(await finishes()).toEqual({ completed: 2, failed: 1 });
  });

  it('counts a task retried by an operator again when it finishes again', async () => {
    const before = await finishes();
    const [id] = await processingTasks(1);
    await markFailed(t.ctx.pool, [{ id: id!, attempts: 3, error: 'boom' }]);
    expect(await retryFailedTasks(t.ctx.pool, [id!])).toEqual([id]);
    await t.ctx.pool.query("UPDATE tasks SET status = 'processing' WHERE id = ?", [id]);
    await markCompleted(t.ctx.pool, [{ id: id!, attempts: 1 }]);
    expect(await finishes()).toEqual({ completed: before.completed + 1, failed: before.failed + 1 });
  });

  it('gives every minute of the window, oldest first, zero when nothing finished', async () => {
    const now = Date.now();
    const series = await finishedPerMinute(t.ctx.pool, 5, now);
    expect(series.map((m) => m.minute.getTime())).toEqual(
      [4, 3, 2, 1, 0].map((back) => (Math.floor(now / 60_000) - back) * 60_000),
    );
    const earlier = await finishedPerMinute(t.ctx.pool, 5, now - 10 * 60_000);
    expect(earlier.every((m) => m.completed === 0 && m.failed === 0)).toBe(true);
  });
});
