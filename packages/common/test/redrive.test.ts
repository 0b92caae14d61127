import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { deadLetteredTask, unrecordedDeadLetter } from '../../../test/support/runs.js';
import { DeadLetterList } from '../src/redis/dead-letter-list.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { getTask } from '../src/tasks/task-reads.js';
import { claimPending } from '../src/tasks/transitions/claim-and-dispatch.js';
import { redriveAllDeadLetters, redriveTask } from '../src/tasks/transitions/redrive.js';
import { readDeadLetter } from '../src/wire/dead-letter.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;

beforeEach(async () => {
  await t?.cleanup();
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

function list() {
  return new DeadLetterList(t.ctx.redis, t.ctx.queue.keys.deadLetters);
}

async function listedIds(): Promise<(number | null)[]> {
  return (await list().all()).map((raw) => readDeadLetter(raw).id);
}

/** Resolves with the next announcement on the inserted channel. */
async function nextAnnouncement(): Promise<() => Promise<void>> {
  const subscriber = t.ctx.openRedis('test-announce');
  const heard = new Promise<void>((resolve) => subscriber.once('message', () => resolve()));
  await subscriber.subscribe(t.ctx.queue.keys.insertedChannel);
  return async () => {
    await heard;
    subscriber.disconnect();
  };
}

describe('redriveTask', () => {
  it('puts a failed task back to pending with attempts reset and removes only its entries', async () => {
    const a = await deadLetteredTask(t, { message: 'a', error: 'boom a' });
    const b = await deadLetteredTask(t, { message: 'b' });
    // A second entry for task a (a duplicate message dead-lettered too), and an invalid one.
    await t.ctx.queue.deadLetter([
      { token: null, letter: { id: a.id, message: 'a', time: 0, tries: 1, run: 1, error: 'again', failed_at: 'x' } },
    ]);
    await t.ctx.redis.lpush(t.ctx.queue.keys.deadLetters, 'not json');
    const announced = await nextAnnouncement();

    const outcome = await redriveTask(t.ctx, a.id);

    expect(outcome).toEqual({ redriven: true, id: a.id, removedEntries: 2 });
    const task = await getTask(t.ctx.pool, a.id);
    expect(task).toMatchObject({ status: 'pending', attempts: 0, dispatchedAt: null, finishedAt: null });
    // The error it failed with stays until a new run replaces it.
    expect(task?.lastError).toBe('boom a');
    expect(await listedIds()).toEqual([null, b.id]);
    await announced();
  });

  it('is run again by the normal path: the scheduler claims it', async () => {
    const a = await deadLetteredTask(t);
    await redriveTask(t.ctx, a.id);
    const claimed = await claimPending(t.ctx.pool, 10);
    // Its second run, from its first try.
    expect(claimed.dispatched).toEqual([expect.objectContaining({ id: a.id, tries: 0, run: 2 })]);
  });

  it('refuses a task that is not failed, and leaves its entries', async () => {
    const id = await unrecordedDeadLetter(t);
    const outcome = await redriveTask(t.ctx, id);
    expect(outcome).toEqual({ redriven: false, id, reason: 'not_failed', status: 'processing' });
    expect((await getTask(t.ctx.pool, id))?.status).toBe('processing');
    expect(await listedIds()).toEqual([id]);
    expect((await t.ctx.queue.depths()).deadLetterInbox).toBe(1);
  });

  it('refuses a pending or completed task', async () => {
    const pending = await insertTask(t.ctx.pool, { message: 'p', time: 0 });
    expect(await redriveTask(t.ctx, pending)).toMatchObject({
      redriven: false,
      reason: 'not_failed',
      status: 'pending',
    });
  });

  it('reports a task that does not exist', async () => {
    expect(await redriveTask(t.ctx, 424242)).toEqual({ redriven: false, id: 424242, reason: 'not_found' });
  });

  it('a second redrive of the same task is refused (it is pending now)', async () => {
    const a = await deadLetteredTask(t);
    await redriveTask(t.ctx, a.id);
    expect(await redriveTask(t.ctx, a.id)).toMatchObject({ redriven: false, status: 'pending' });
  });
});

describe('redriveAllDeadLetters', () => {
  it('redrives every failed task the list names and keeps every other entry', async () => {
    const failed = [await deadLetteredTask(t), await deadLetteredTask(t), await deadLetteredTask(t)];
    // Failed in MySQL but not named by the list (its entry was purged): not touched.
    const unlisted = await deadLetteredTask(t);
    await list().remove((await list().all()).filter((raw) => readDeadLetter(raw).id === unlisted.id));
    const inInbox = await unrecordedDeadLetter(t);
    await t.ctx.redis.lpush(t.ctx.queue.keys.deadLetters, '{"error":"invalid message: not JSON","raw":"x"}');

    const result = await redriveAllDeadLetters(t.ctx);

    expect(result.redriven.sort((x, y) => x - y)).toEqual(failed.map((f) => f.id));
    expect(result).toMatchObject({ removedEntries: 3, keptEntries: 2 });
    for (const f of failed) expect((await getTask(t.ctx.pool, f.id))?.status).toBe('pending');
    expect((await getTask(t.ctx.pool, unlisted.id))?.status).toBe('failed');
    expect(await listedIds()).toEqual([null, inInbox]);
  });

  it('does nothing on an empty list', async () => {
    expect(await redriveAllDeadLetters(t.ctx)).toEqual({ redriven: [], removedEntries: 0, keptEntries: 0 });
  });
});

describe('DeadLetterList', () => {
  it('purges every entry in one step and says how many there were', async () => {
    const a = await deadLetteredTask(t);
    await deadLetteredTask(t);
    expect(await list().purge()).toBe(2);
    expect(await list().length()).toBe(0);
    // MySQL keeps the failed status.
    expect((await getTask(t.ctx.pool, a.id))?.status).toBe('failed');
  });

  it('pages newest first', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await deadLetteredTask(t, { message: `m${i}` })).id);
    const page = (await list().range(1, 2)).map(readDeadLetter);
    expect(page.map((e) => e.id)).toEqual([ids[3], ids[2]]);
    expect(page[0]).toMatchObject({ message: 'm3', tries: 3 });
  });
});
