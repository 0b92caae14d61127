import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask } from '../../../test/support/runs.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { countByStatus } from '../src/tasks/status-counts.js';
import { getStatuses, listTasks } from '../src/tasks/task-reads.js';
import { claimAndDispatch } from '../src/tasks/transitions/claim-and-dispatch.js';
import { completeRuns } from '../src/tasks/transitions/complete.js';
import { retryFailedTasks } from '../src/tasks/transitions/redrive.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;
const ids: number[] = [];
let failedIds: number[] = [];

beforeAll(async () => {
  t = await createTestEnv();
  for (let i = 0; i < 7; i++) ids.push(await insertTask(t.ctx.pool, { message: `task ${i}`, time: 0 }));
  // Two of the pending ones (the oldest) claimed and completed.
  await claimAndDispatch(t.ctx, 2);
  failedIds = [(await deadLetteredTask(t)).id, (await deadLetteredTask(t)).id];
  await completeRuns(
    t.ctx,
    ids.slice(0, 2).map((id) => ({ id, run: 1, tries: 0, token: `token-${id}` })),
  );
});
afterAll(async () => {
  await t.cleanup();
});

describe('listTasks', () => {
  it('lists newest first and pages with a keyset cursor', async () => {
    const all = [...ids, ...failedIds].sort((a, b) => b - a);
    const first = await listTasks(t.ctx.pool, { limit: 4 });
    expect(first.map((task) => task.id)).toEqual(all.slice(0, 4));
    const second = await listTasks(t.ctx.pool, { limit: 4, after: first.at(-1)!.id });
    expect(second.map((task) => task.id)).toEqual(all.slice(4, 8));
    const last = await listTasks(t.ctx.pool, { limit: 4, after: second.at(-1)!.id });
    expect(last.map((task) => task.id)).toEqual(all.slice(8));
  });

  it('filters by status', async () => {
    const failed = await listTasks(t.ctx.pool, { status: 'failed', limit: 10 });
    expect(failed.map((task) => task.id)).toEqual([...failedIds].reverse());
    expect(failed[0]).toMatchObject({ status: 'failed', lastError: 'simulated failure (FAILURE_RATE=1)' });
    const after = await listTasks(t.ctx.pool, { status: 'pending', limit: 2, after: ids[6]! });
    expect(after.map((task) => task.id)).toEqual([ids[5], ids[4]]);
  });
});

describe('countByStatus', () => {
  it('counts every status, zero included', async () => {
    expect(await countByStatus(t.ctx.pool)).toEqual({
      pending: 5,
      processing: 0,
      completed: 2,
      failed: 2,
      cancelled: 0,
      delayed: 0,
    });
  });
});

describe('getStatuses', () => {
  it('returns the status of the ids that exist', async () => {
    const statuses = await getStatuses(t.ctx.pool, [ids[0]!, failedIds[0]!, 999_999]);
    expect([...statuses.entries()]).toEqual(
      expect.arrayContaining([
        [ids[0], 'completed'],
        [failedIds[0], 'failed'],
      ]),
    );
    expect(statuses.size).toBe(2);
  });
});

describe('retryFailedTasks', () => {
  it('changes only failed tasks', async () => {
    expect(await retryFailedTasks(t.ctx.pool, [ids[0]!])).toEqual([]);
    expect(await retryFailedTasks(t.ctx.pool, [ids[0]!, ids[3]!, ...failedIds])).toEqual(failedIds);
    expect(await retryFailedTasks(t.ctx.pool, failedIds)).toEqual([]);
    expect(await countByStatus(t.ctx.pool)).toEqual({
      pending: 7,
      processing: 0,
      completed: 2,
      failed: 0,
      cancelled: 0,
      delayed: 0,
    });
  });
});
