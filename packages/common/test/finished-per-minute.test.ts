import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContextParts } from '../src/context.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { finishedPerMinute } from '../src/tasks/task-reads.js';
import { completeRuns } from '../src/tasks/transitions/complete.js';
import { recordDeadLetters } from '../src/tasks/transitions/record-dead-letters.js';
import { retryFailedTasks } from '../src/tasks/transitions/redrive.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

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
  await t.ctx.pool.query("UPDATE tasks SET status = 'processing', run = 1 WHERE id IN (?)", [ids]);
  return ids;
}

/** Completions of run 1 (its tokens are not leased: the acknowledgements change nothing in Redis). */
async function complete(ids: number[]): Promise<number> {
  const result = await completeRuns(
    t.ctx,
    ids.map((id) => ({ id, run: 1, tries: 0, token: `token-${id}` })),
  );
  return result.completed;
}

/** Dead letters of run 1, recorded as the DLQ processor does. */
async function recordFailed(ctx: Pick<ContextParts, 'pool' | 'queue'>, ids: number[]): Promise<number> {
  const entries = ids.map((id) => ({
    token: `inbox-${id}`,
    raw: JSON.stringify({ id, message: 'm', time: 0, tries: 3, run: 1, error: 'boom', failed_at: '' }),
  }));
  return (await recordDeadLetters(ctx, entries)).markedFailed;
}

describe('tasks finished per minute', () => {
  it('counts the tasks a write finished, and only those', async () => {
    const [a, b, c] = await processingTasks(3);
    const pending = await insertTask(t.ctx.pool, { message: 'never dispatched', time: 0 });
    expect(await complete([a!, b!, pending])).toBe(2);
    expect(await recordFailed(t.ctx, [c!])).toBe(1);
    expect(await finishes()).toEqual({ completed: 2, failed: 1 });

    // Late or duplicate outcomes of finished tasks change nothing and count nothing.
    expect(await complete([a!])).toBe(0);
    expect(await recordFailed(t.ctx, [b!])).toBe(0);
    expect(await finishes()).toEqual({ completed: 2, failed: 1 });
  });

  it('counts tasks by their status now: a redrive takes the failure out, the next finish counts', async () => {
    const before = await finishes();
    const [id, other] = await processingTasks(2);
    await recordFailed(t.ctx, [id!, other!]);
    expect(await finishes()).toEqual({ completed: before.completed, failed: before.failed + 2 });
    expect(await retryFailedTasks(t.ctx.pool, [id!])).toEqual([id]);
    expect(await finishes()).toEqual({ completed: before.completed, failed: before.failed + 1 });
    await t.ctx.pool.query("UPDATE tasks SET status = 'processing' WHERE id = ?", [id]);
    await complete([id!]);
    expect(await finishes()).toEqual({ completed: before.completed + 1, failed: before.failed + 1 });
  });

  it('takes a redriven failure out of the minute it finished in, never below zero', async () => {
    const [a, b] = await processingTasks(2);
    await recordFailed(t.ctx, [a!, b!]);
    // As if they had failed 40 minutes ago, one of them before that minute was counted.
    const earlier = Math.floor(Date.now() / 60_000) - 40;
    await t.ctx.pool.query('UPDATE tasks SET finished_at = FROM_UNIXTIME(? * 60 + 7.5) WHERE id IN (?)', [
      earlier,
      [a, b],
    ]);
    await t.ctx.pool.query('INSERT INTO tasks_finished_per_minute (minute, completed, failed) VALUES (?, 3, 1)', [
      earlier,
    ]);
    const minute = async () =>
      (await finishedPerMinute(t.ctx.pool, 41, Date.now())).find((m) => m.minute.getTime() === earlier * 60_000);
    expect(await retryFailedTasks(t.ctx.pool, [a!, b!])).toEqual([a, b]);
    expect(await minute()).toMatchObject({ completed: 3, failed: 0 });
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
