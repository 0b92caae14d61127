import type { Handlers } from '@tasks/common';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Scheduler } from '../../../services/scheduler/src/scheduler.js';
import { createTestEnv, listenForInserts, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { createEnqueue, type Enqueue, EnqueueError, TaskBodyError } from '../src/enqueue.js';

let t: TestEnv;
let connection: Connection;
let scheduler: Scheduler | null = null;

beforeEach(async () => {
  t = await createTestEnv();
  // A caller's own connection, as an application opens it: mysql2's defaults, no session set-up.
  connection = await mysql.createConnection(t.config.MYSQL_URL);
});
afterEach(async () => {
  await scheduler?.stop();
  scheduler = null;
  await connection.end();
  await t.cleanup();
});

// With the example handlers: `webhook` (a schema, timeoutMs 10 s, maxAttempts 5) and `primes`.
let enqueue: Enqueue;
beforeAll(async () => {
  const examples = new URL('../../../examples/handlers.js', import.meta.url).href;
  const { default: handlers } = (await import(examples)) as { default: Handlers };
  enqueue = createEnqueue({ handlers });
});

async function startScheduler(pollIntervalMs: number): Promise<void> {
  scheduler = new Scheduler(
    { store: t.store, logger: t.logger },
    { batchSize: 100, pollIntervalMs, maxQueueDepth: 1000 },
  );
  await scheduler.start();
}

async function readyIds(): Promise<number[]> {
  return (await t.redis.lrange(t.keys.tasks.ready, 0, -1)).map((m) => JSON.parse(m).id);
}

async function rowCount(): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
  return Number(row?.n);
}

describe('enqueue in a caller’s transaction', () => {
  it('runs nothing before the commit; after it, a running scheduler finds the task by its poll, unannounced', async () => {
    await startScheduler(200);
    const inserts = await listenForInserts(t);
    try {
      await connection.beginTransaction();
      await connection.query('CREATE TEMPORARY TABLE orders (id INT)');
      await connection.query('INSERT INTO orders VALUES (1)');
      const { id, status } = await enqueue(connection, { message: 'order 1 placed', time: 0 });
      expect(status).toBe('pending');
      // Other sessions see neither the row nor its count until the commit.
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await rowCount()).toBe(0);
      expect(await readyIds()).toEqual([]);
      expect((await t.store.stats()).tasks.pending ?? 0).toBe(0);

      await connection.commit();
      const committed = Date.now();
      await until(async () => (await readyIds()).includes(id), 5_000);
      expect(Date.now() - committed).toBeLessThan(2_000);
      expect(await t.store.getTask(id)).toMatchObject({
        status: 'processing',
        data: { message: 'order 1 placed', time: 0 },
      });
      const announced = await Promise.race([inserts.announced, new Promise((r) => setTimeout(() => r(null), 100))]);
      expect(announced).toBeNull();
    } finally {
      inserts.close();
    }
  });

  it('leaves no trace of a task whose transaction rolls back: no row, no count, nothing run', async () => {
    await startScheduler(50);
    await connection.beginTransaction();
    await enqueue(connection, { message: 'never', time: 0 });
    await enqueue(connection, { message: 'later, never', time: 0, delay_ms: 10 });
    await connection.rollback();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await rowCount()).toBe(0);
    expect(await readyIds()).toEqual([]);
    const { tasks } = await t.store.stats();
    expect(Object.values(tasks).every((n) => n === 0)).toBe(true);
  });

  it('commits at once on a connection outside a transaction, the task with its count', async () => {
    const { id } = await enqueue(connection, { message: 'alone', time: 1, priority: 5, group: 'tenant-a' });
    expect(await t.store.getTask(id)).toMatchObject({ status: 'pending', priority: 5, group: 'tenant-a' });
    expect((await t.store.stats()).tasks.pending).toBe(1);
    const [[autocommit]] = await connection.query<RowDataPacket[]>('SELECT @@autocommit AS a');
    expect(Number(autocommit?.a)).toBe(1);
  });

  it('stores the text as given and the due time right in any sql_mode and time zone of the session', async () => {
    await connection.query("SET SESSION sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES', time_zone = '+05:30'");
    const message = `it's "quoted" \\ back\\slashed \\' ; DROP TABLE tasks; -- ✓`;
    await connection.beginTransaction();
    const { id, status } = await enqueue(connection, { message, time: 2, delay_ms: 60_000 });
    await connection.commit();
    expect(status).toBe('delayed');
    const task = await t.store.getTask(id);
    expect(task?.data).toEqual({ message, time: 2 });
    const [[clock]] = await t.sql.query<RowDataPacket[]>(
      'SELECT TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(3), run_at) / 1000 AS ahead FROM tasks WHERE id = ?',
      [id],
    );
    expect(Number(clock?.ahead)).toBeGreaterThan(55_000);
    expect(Number(clock?.ahead)).toBeLessThanOrEqual(60_000);
    const runAt = new Date(Math.floor(Date.now() / 1000) * 1000 + 2 * 86_400_000 + 678);
    const at = await enqueue(connection, { message: 'at', time: 0, run_at: runAt.toISOString() });
    expect((await t.store.getTask(at.id))?.runAt?.toISOString()).toBe(runAt.toISOString());
  });

  it('checks a typed body with its type’s schema and takes the type’s deadline and attempts', async () => {
    const { id } = await enqueue(connection, { type: 'webhook', url: 'https://example.com/hook', extra: 1 });
    expect(await t.store.getTask(id)).toMatchObject({ type: 'webhook', data: { url: 'https://example.com/hook' } });
    const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT timeout_ms, max_attempts FROM tasks WHERE id = ?', [id]);
    expect(row).toMatchObject({ timeout_ms: 10_000, max_attempts: 5 });
  });

  it('refuses a body at fault naming every field, and inserts nothing', async () => {
    const refused = await enqueue(connection, { type: 'webhook', url: 'ftp://x', priority: 5000 }).catch((e) => e);
    expect(refused).toBeInstanceOf(TaskBodyError);
    expect((refused as TaskBodyError).problems.map((p) => p.field).sort()).toEqual(['priority', 'url']);
    const unknown = await enqueue(connection, { type: 'sms' }).catch((e) => e);
    expect((unknown as TaskBodyError).problems).toEqual([
      { field: 'type', message: 'must be one of primes, simulated, webhook (got "sms")' },
    ]);
    expect(await rowCount()).toBe(0);
  });

  it('refuses a connection whose character set is not UTF-8', async () => {
    const latin1 = await mysql.createConnection({ uri: t.config.MYSQL_URL, charset: 'LATIN1_SWEDISH_CI' });
    try {
      const refused = await enqueue(latin1, { message: 'café', time: 0 }).catch((e) => e);
      expect(refused).toBeInstanceOf(EnqueueError);
      expect(String(refused.message)).toMatch(/character set is latin1/);
    } finally {
      await latin1.end();
    }
    expect(await rowCount()).toBe(0);
  });

  it('refuses a pool, whose statements would not share the caller’s session', async () => {
    const pool = mysql.createPool(t.config.MYSQL_URL);
    try {
      const refused = await enqueue(pool as never, { message: 'x', time: 0 }).catch((e) => e);
      expect(refused).toBeInstanceOf(EnqueueError);
      expect(String(refused.message)).toMatch(/not a pool/);
    } finally {
      await pool.end();
    }
    expect(await rowCount()).toBe(0);
  });
});
