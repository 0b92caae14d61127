import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLAIM_READS } from '../src/tasks/claim-plan.js';
import { DELAY_READS } from '../src/tasks/delays.js';
import { recountStatuses } from '../src/tasks/status-counts.js';
import { listingIndex, listTasks } from '../src/tasks/task-reads.js';
import { SWEEP_PAGE } from '../src/tasks/transitions/recover.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

/**
 * The claim's, the delays', the sweep's and the listings' reads cost what they return, on a table shaped like a drain's:
 * many finished rows below a few pending, delayed and running ones. Each names its index, so
 * that no statistics make the server walk the finished rows instead (as MySQL does, through
 * the primary key, for a lane read `ORDER BY id` that names none).
 */

const DIGITS =
  'SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9';
const SEQUENCE = `SELECT d0.d + 10 * d1.d + 100 * d2.d + 1000 * d3.d + 10000 * d4.d AS n
  FROM (${DIGITS}) d0 CROSS JOIN (${DIGITS}) d1 CROSS JOIN (${DIGITS}) d2 CROSS JOIN (${DIGITS}) d3 CROSS JOIN (${DIGITS}) d4`;

let t: TestEnv;
let session: Connection;

beforeAll(async () => {
  t = await createTestEnv();
  const add = (status: string, count: number, extra: Record<string, string> = {}) =>
    t.sql.query(
      `INSERT INTO tasks (data, status${Object.keys(extra)
        .map((c) => `, ${c}`)
        .join('')})
       SELECT '{"message":"m","time":0}', '${status}'${Object.values(extra)
         .map((v) => `, ${v}`)
         .join('')}
         FROM (${SEQUENCE}) AS s WHERE n < ${count}`,
    );
  // A drain's table: what earlier drains finished, then a batch of pending tasks in one lane.
  await add('completed', 25_000);
  await add('processing', 200, { group_key: "CONCAT('g', n % 5)" });
  await add('delayed', 500, {
    run_at: 'UTC_TIMESTAMP(3) + INTERVAL 1 HOUR',
    due_at: 'UTC_TIMESTAMP(3) + INTERVAL 1 HOUR',
  });
  await add('failed', 20);
  await recountStatuses(t.ctx.pool);
  await t.sql.query('ANALYZE TABLE tasks');
  await add('pending', 20_000);
  await add('pending', 500, { priority: '1 + n % 3', group_key: "CONCAT('g', n % 5)" });
  session = await mysql.createConnection(t.config.MYSQL_URL);
}, 120_000);
afterAll(async () => {
  await session?.end();
  await t?.cleanup();
});

/** The index EXPLAIN says `sql` reads. */
async function indexOf(sql: string, values: unknown[]): Promise<string | null> {
  // MySQL 9 explains as a tree by default; MariaDB knows no FORMAT=TRADITIONAL but explains so.
  const [plan] = await session
    .query<RowDataPacket[]>(`EXPLAIN FORMAT=TRADITIONAL ${sql}`, values)
    .catch(() => session.query<RowDataPacket[]>(`EXPLAIN ${sql}`, values));
  return (plan[0]?.key as string | null) ?? null;
}

/** Index entries read (Handler_read_next) by `sql` on this session. */
async function entriesRead(sql: string, values: unknown[]): Promise<number> {
  await session.query('FLUSH STATUS');
  await session.query(sql, values);
  const [[status]] = await session.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'Handler_read_next'");
  return Number(status?.Value);
}

describe('the claim’s, the delays’ and the sweep’s reads on 25,000 finished rows below 20,000 pending', () => {
  const reads: [string, string, unknown[], string][] = [
    ['the first group', CLAIM_READS.firstGroup, ['pending'], 'tasks_lanes'],
    ['the group after another', CLAIM_READS.groupAfter, ['pending', 'g1'], 'tasks_lanes'],
    ['a group’s first level', CLAIM_READS.firstLevel, ['pending', ''], 'tasks_lanes'],
    ['a group’s level after another', CLAIM_READS.levelAfter, ['pending', 'g1', -3], 'tasks_lanes'],
    ['a lane’s oldest tasks', CLAIM_READS.laneRows, ['', 0, 0, 1000], 'tasks_lanes'],
    ['the running tasks of groups', CLAIM_READS.runningInGroups, [['g1', 'g2']], 'tasks_lanes'],
    ['the delayed tasks due', DELAY_READS.promoteDue, [100], 'tasks_due'],
    ['the next due time', DELAY_READS.nextDue, [], 'tasks_due'],
    ['the first group of running tasks', CLAIM_READS.firstGroup, ['processing'], 'tasks_lanes'],
    ['a running group’s level after another', CLAIM_READS.levelAfter, ['processing', 'g1', 0], 'tasks_lanes'],
    ['the running group after another', CLAIM_READS.groupAfter, ['processing', 'g1'], 'tasks_lanes'],
    ['a page of a running lane', SWEEP_PAGE, [0, 'g1', 0, 0, 1000], 'tasks_lanes'],
  ];

  it.each(reads)('%s reads its index', async (_name, sql, values, index) => {
    // MIN() over an index is answered from the index's end: no row is read, no key is named.
    const key = await indexOf(sql, values);
    if (sql === DELAY_READS.nextDue) expect([index, null]).toContain(key);
    else expect(key).toBe(index);
  });

  it('a lane read of 1,000 reads about 1,000 index entries, not the finished rows below them', async () => {
    const [rows] = await session.query<RowDataPacket[]>(CLAIM_READS.laneRows, ['', 0, 0, 1000]);
    expect(rows).toHaveLength(1000);
    expect(await entriesRead(CLAIM_READS.laneRows, ['', 0, 0, 1000])).toBeLessThan(1100);
  });

  it('a page of a running lane reads that lane’s entries, not the other lanes’ nor the finished rows', async () => {
    const [rows] = await session.query<RowDataPacket[]>(SWEEP_PAGE, [0, 'g1', 0, 0, 1000]);
    expect(rows).toHaveLength(40);
    expect(await entriesRead(SWEEP_PAGE, [0, 'g1', 0, 0, 1000])).toBeLessThan(50);
  });
});

describe('a listing of one status, newest first', () => {
  it('of a rare status goes through its index, of a common one along the primary key, and both are right', async () => {
    expect(await listingIndex(t.ctx.pool, 'failed', 50)).toBe('tasks_lanes');
    expect(await listingIndex(t.ctx.pool, 'completed', 50)).toBe('PRIMARY');
    const failed = await listTasks(t.ctx.pool, { status: 'failed', limit: 50 });
    expect(failed.map((task) => task.status)).toEqual(Array(20).fill('failed'));
    const completed = await listTasks(t.ctx.pool, { status: 'completed', limit: 50 });
    expect(completed).toHaveLength(50);
    expect(completed.every((task) => task.status === 'completed')).toBe(true);
    const ids = completed.map((task) => task.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
  });
});
