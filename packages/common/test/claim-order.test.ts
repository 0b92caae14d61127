import type { NewTask } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, describe, expect, it } from 'vitest';
import { completeLeased, failLeased, type LeasedMessage, leaseAll } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';

/**
 * When and in what order the claim takes tasks (claim-plan.ts, tasks/delays.ts), against real
 * MySQL and Redis: delayed tasks by MySQL's clock, priorities with no level starving, groups
 * in turn, and the groups' concurrency limits. Each test has a database of its own, so that the
 * claim's lanes (found again at most every 200 ms) are those of its own tasks.
 */

let t: TestEnv;
afterEach(async () => {
  await t?.cleanup();
});

type Shape = Omit<NewTask, 'data' | 'idempotencyKey'> & { message?: string };

/** Inserts tasks as the API does; returns their ids, in order. */
async function insert(...tasks: Shape[]): Promise<number[]> {
  const outcomes = await t.store.insert(
    tasks.map(({ message = 'task', ...fields }) => ({ data: { message, time: 0 }, idempotencyKey: null, ...fields })),
  );
  return outcomes.map((o) => {
    if ('error' in o) throw o.error;
    return o.id;
  });
}

const many = (n: number, shape: Shape): Shape[] => Array.from({ length: n }, () => shape);

/** One claim of up to `limit` tasks: the ids pushed, in the order they will run. */
async function claim(limit: number): Promise<number[]> {
  return (await t.store.claim(limit)).dispatched.map((m) => m.id);
}

async function statusOf(id: number): Promise<string | undefined> {
  const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT status FROM tasks WHERE id = ?', [id]);
  return row?.status;
}

/** The group's tasks `processing`, as MySQL has them. */
async function running(group: string): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM tasks WHERE status = 'processing' AND group_key = ?",
    [group],
  );
  return Number(row?.n);
}

describe('delayed tasks', () => {
  it('are delayed until their time by MySQL’s clock, then claimed exactly once', async () => {
    t = await createTestEnv();
    const [id] = (await insert({ delayMs: 1_200 })) as [number];
    expect(await statusOf(id)).toBe('delayed');
    expect((await t.store.stats()).tasks).toMatchObject({ delayed: 1, pending: 0 });
    expect(await t.store.promoteDue(100)).toBe(0);
    expect(await claim(100)).toEqual([]);
    const dueIn = (await t.store.nextDueInMs()) as number;
    expect(dueIn).toBeGreaterThan(0);
    expect(dueIn).toBeLessThanOrEqual(1_200);

    await until(async () => (await t.store.promoteDue(100)) === 1, 5_000);
    expect(await claim(100)).toEqual([id]);
    const [[row]] = await t.sql.query<RowDataPacket[]>(
      'SELECT dispatched_at >= run_at AS onTime, run_at >= created_at + INTERVAL 1200000 MICROSECOND AS late FROM tasks WHERE id = ?',
      [id],
    );
    expect(row).toEqual({ onTime: 1, late: 1 });
    // Once: nothing more is due, nothing more to claim.
    expect(await t.store.promoteDue(100)).toBe(0);
    expect(await claim(100)).toEqual([]);
    expect(await t.store.nextDueInMs()).toBeNull();
    expect((await t.store.stats()).tasks).toMatchObject({ delayed: 0, pending: 0, processing: 1 });
  });

  it('an instant already past is due at once; one far ahead is not, and the wait is MySQL’s', async () => {
    t = await createTestEnv();
    const [past, later] = (await insert(
      { runAt: new Date(Date.now() - 3_600_000) },
      { runAt: new Date(Date.now() + 3_600_000) },
    )) as [number, number];
    expect(await t.store.promoteDue(100)).toBe(1);
    expect(await claim(100)).toEqual([past]);
    expect(await statusOf(later)).toBe('delayed');
    const dueIn = (await t.store.nextDueInMs()) as number;
    expect(dueIn).toBeGreaterThan(3_500_000);
    expect(dueIn).toBeLessThanOrEqual(3_600_000);
  });

  it('a batch mixing due and delayed tasks tells each its own id, in order', async () => {
    t = await createTestEnv();
    const ids = await insert(
      { message: 'a' },
      { message: 'b', delayMs: 60_000 },
      { message: 'c' },
      { message: 'd', runAt: new Date(Date.now() + 60_000) },
    );
    const [rows] = await t.sql.query<RowDataPacket[]>(
      'SELECT id, JSON_UNQUOTE(JSON_EXTRACT(data, "$.message")) AS message, status FROM tasks',
    );
    const byId = new Map(rows.map((r) => [Number(r.id), { message: r.message, status: r.status }]));
    expect(ids.map((id) => byId.get(id))).toEqual([
      { message: 'a', status: 'pending' },
      { message: 'b', status: 'delayed' },
      { message: 'c', status: 'pending' },
      { message: 'd', status: 'delayed' },
    ]);
    expect((await t.store.stats()).tasks).toMatchObject({ pending: 2, delayed: 2 });
  });

  it('a delayed task cancelled before its time is never made pending', async () => {
    t = await createTestEnv();
    const [id] = (await insert({ delayMs: 300 })) as [number];
    expect(await t.store.cancel(id)).toEqual({ cancelled: true, id, was: 'delayed' });
    // Nothing waits any more: the scheduler does not wake for it.
    expect(await t.store.nextDueInMs()).toBeNull();
    await new Promise((r) => setTimeout(r, 400));
    expect(await t.store.promoteDue(100)).toBe(0);
    expect(await claim(100)).toEqual([]);
    expect(await statusOf(id)).toBe('cancelled');
    expect((await t.store.stats()).tasks).toMatchObject({ delayed: 0, cancelled: 1 });
  });
});

describe('priorities', () => {
  it('higher first, oldest first within a priority', async () => {
    t = await createTestEnv();
    const [a, b, c, d, e] = await insert(
      { priority: 0 },
      { priority: 10 },
      { priority: -5 },
      { priority: 10 },
      { priority: 0 },
    );
    expect(await claim(100)).toEqual([b, d, a, e, c]);
  });

  it('no level starves: every claim also takes the oldest task of each lower level', async () => {
    t = await createTestEnv();
    const high = await insert(...many(100, { priority: 10 }));
    const low = await insert(...many(3, { priority: 0 }));
    const lowest = await insert(...many(2, { priority: -10 }));
    const claims = [await claim(5), await claim(5), await claim(5)];
    // Each claim: three high, then the oldest low and the oldest lowest.
    expect(claims).toEqual([
      [...high.slice(0, 3), low[0], lowest[0]],
      [...high.slice(3, 6), low[1], lowest[1]],
      [...high.slice(6, 10), low[2]],
    ]);
  });
});

describe('groups', () => {
  it('take turns: a group with a large backlog does not hold back another’s few tasks', async () => {
    t = await createTestEnv();
    const a = await insert(...many(200, { group: 'tenant-a' }));
    const b = await insert(...many(10, { group: 'tenant-b' }));
    const first = await claim(20);
    // An equal share each, the oldest of each in turn.
    expect(first).toEqual(a.slice(0, 10).flatMap((id, i) => [id, b[i]]));
    expect(await claim(20)).toEqual(a.slice(10, 30));
  });

  it('the turn goes on from the group the last claim served last', async () => {
    t = await createTestEnv();
    const a = await insert(...many(3, { group: 'a' }));
    const b = await insert(...many(3, { group: 'b' }));
    const c = await insert(...many(3, { group: 'c' }));
    const claimed = [];
    for (let i = 0; i < 6; i++) claimed.push(...(await claim(1)));
    expect(claimed).toEqual([a[0], b[0], c[0], a[1], b[1], c[1]]);
  });

  it('a limited group never runs more than its limit, and each way a run ends makes room', async () => {
    t = await createTestEnv({ GROUP_CONCURRENCY: '3', GROUP_LIMITS: 'big=5' });
    await insert(...many(10, { group: 'small' }), ...many(10, { group: 'big' }), ...many(10, {}));
    const first = await claim(100);
    expect(first).toHaveLength(3 + 5 + 10);
    expect([await running('small'), await running('big')]).toEqual([3, 5]);
    // Full: nothing more of theirs, however often asked.
    expect(await claim(100)).toEqual([]);

    // A completion makes room for one.
    const leased = await leaseAll(t);
    const ofGroup = async (group: string) => {
      const [rows] = await t.sql.query<RowDataPacket[]>('SELECT id FROM tasks WHERE group_key = ?', [group]);
      const ids = new Set(rows.map((r) => Number(r.id)));
      return leased.filter((l) => ids.has(l.message.id));
    };
    const small = await ofGroup('small');
    await completeLeased(t, small.slice(0, 1));
    await until(async () => (await claim(100)).length === 1, 2_000);
    expect(await running('small')).toBe(3);

    // A cancel makes room for one.
    const big = await ofGroup('big');
    expect(await t.store.cancel((big[0] as { message: { id: number } }).message.id)).toMatchObject({ cancelled: true });
    await until(async () => (await claim(100)).length === 1, 2_000);
    expect(await running('big')).toBe(5);

    // A dead-lettered task, once recorded failed, makes room for one.
    let doomed = small[1] as LeasedMessage;
    while (!(await failLeased(t, [doomed])).includes('dead-lettered')) {
      doomed = (await leaseAll(t)).find((l) => l.message.id === doomed.message.id) as LeasedMessage;
    }
    const inbox = await t.store.fetchDeadLetters(100, 60_000);
    await t.store.recordDeadLetters(inbox);
    expect(await statusOf(doomed.message.id)).toBe('failed');
    await until(async () => (await claim(100)).length === 1, 2_000);
    expect(await running('small')).toBe(3);
  });
});
