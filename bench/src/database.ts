import { type Logger, loadConfig, type NewTask, prepareDatabase, sleep, type TaskStore } from '@tasks/common';
import mysql, { type Pool, type RowDataPacket } from 'mysql2/promise';

/**
 * The bench's own SQL (dropping its database, reading outcomes and server state) goes through a
 * plain mysql2 pool of its own; what the system does (its schema, inserting tasks, the
 * per-status counts) goes through the system's own functions and TaskStore verbs.
 */

const READ_CHUNK = 1_000;

/** Drops the bench database, creates it anew and applies the migrations: every run starts empty. */
export async function resetDatabase(url: string, logger: Logger): Promise<void> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!/^bench\w*$/.test(database)) throw new Error(`the bench only drops databases named bench*; got ${database}`);
  parsed.pathname = '/';
  const connection = await mysql.createConnection({ uri: parsed.toString() });
  try {
    await connection.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
  } finally {
    await connection.end();
  }
  // As every service does on start: create the database, apply the migrations.
  await prepareDatabase(loadConfig({ MYSQL_URL: url }), logger);
}

/**
 * A pool for the bench's own reads, its sessions in UTC as the services' are (the times it
 * reads, `finished_at` and NOW(3), are then the same clock).
 */
export function openPool(url: string, logger: Logger): Pool {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4, timezone: 'Z', connectTimeout: 5_000 });
  pool.on('connection', (connection) => {
    connection.query("SET time_zone = '+00:00'");
  });
  pool.pool.on('error', (err: Error) => logger.warn({ err }, 'bench pool error'));
  return pool;
}

/**
 * Inserts `count` pending tasks through the store's insert verb, all in one call, which the
 * store commits as one transaction: they appear to the schedulers all at once. Returns the
 * database's clock after the commit, and the ids.
 */
export async function seedPending(
  store: TaskStore,
  pool: Pool,
  count: number,
  data: { message: string; time: number },
  fields: (i: number) => Pick<NewTask, 'type' | 'priority' | 'group'> = () => ({}),
): Promise<{ committedAt: number; firstId: number; lastId: number }> {
  const outcomes = await store.insert(
    Array.from({ length: count }, (_, i) => ({ data, idempotencyKey: null, ...fields(i) })),
  );
  let firstId = Number.POSITIVE_INFINITY;
  let lastId = 0;
  for (const outcome of outcomes) {
    if ('error' in outcome) throw new Error(`seeding ${count} tasks failed: ${outcome.error.message}`);
    firstId = Math.min(firstId, outcome.id);
    lastId = Math.max(lastId, outcome.id);
  }
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT NOW(3) AS now');
  if (!(row?.now instanceof Date)) throw new Error('the database did not say what time it is');
  return { committedAt: row.now.getTime(), firstId, lastId };
}

/** How many tasks are pending or processing, by the store's per-status counts (a page, never the table). */
export async function unfinished(store: TaskStore): Promise<number> {
  const { tasks } = await store.stats();
  return tasks.pending + tasks.processing;
}

/**
 * Whether every task is finished. Read from the per-status counts, which the transitions keep
 * in their own transactions, rather than from `tasks`: during a drain the `(status, id)` index
 * holds thousands of entries that the purge has not removed yet, which a read of the first
 * pending one steps over (milliseconds of the server's CPU per poll on MySQL, taken from the
 * drain it watches). A wrong count cannot pass unseen: every drain checks its tasks after.
 */
export async function allFinished(store: TaskStore): Promise<boolean> {
  return (await unfinished(store)) === 0;
}

export interface RangeSummary {
  completed: number;
  failed: number;
  unfinished: number;
  /** Runs counted over all tasks of the range. */
  attempts: number;
  /** Tasks of the range whose `run` is not 1: claimed more than once, or never. */
  runNotOne: number;
  /** The database clock when the last task of the range finished (ms since the epoch). */
  lastFinishedAt: number;
  /** The database clock when the first task of the range was first claimed, by its run (ms since the epoch). */
  firstDispatchedAt: number;
}

/** Outcome of the tasks with ids in [firstId, lastId]. */
export async function summarizeRange(pool: Pool, firstId: number, lastId: number): Promise<RangeSummary> {
  const [[row]] = await pool.query<RowDataPacket[]>(
    `SELECT SUM(status = 'completed') AS completed, SUM(status = 'failed') AS failed,
            SUM(status IN ('pending', 'processing')) AS unfinished, SUM(attempts) AS attempts,
            SUM(run <> 1) AS run_not_one, MAX(finished_at) AS last_finished_at,
            MIN(dispatched_at) AS first_dispatched_at
       FROM tasks WHERE id BETWEEN ? AND ?`,
    [firstId, lastId],
  );
  return {
    completed: Number(row?.completed ?? 0),
    failed: Number(row?.failed ?? 0),
    unfinished: Number(row?.unfinished ?? 0),
    attempts: Number(row?.attempts ?? 0),
    runNotOne: Number(row?.run_not_one ?? 0),
    lastFinishedAt: row?.last_finished_at instanceof Date ? row.last_finished_at.getTime() : Number.NaN,
    firstDispatchedAt: row?.first_dispatched_at instanceof Date ? row.first_dispatched_at.getTime() : Number.NaN,
  };
}

/** Finish times (ms since the epoch, the database's clock) of the given tasks; unfinished ones are left out. */
export async function finishTimes(pool: Pool, ids: number[]): Promise<Map<number, number>> {
  const times = new Map<number, number>();
  for (let i = 0; i < ids.length; i += READ_CHUNK) {
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT id, finished_at FROM tasks WHERE id IN (?) AND finished_at IS NOT NULL',
      [ids.slice(i, i + READ_CHUNK)],
    );
    for (const row of rows) times.set(Number(row.id), (row.finished_at as Date).getTime());
  }
  return times;
}

export async function serverVersion(pool: Pool): Promise<string> {
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v');
  return String(row?.v ?? 'unknown');
}

/**
 * Transactions whose undo records InnoDB has yet to purge (the history list): what earlier
 * writes, such as a warm-up's, still cost the server in the background. MariaDB reports it as
 * a status variable, MySQL 8+ as an InnoDB metric.
 */
export async function historyListLength(pool: Pool): Promise<number> {
  const [status] = await pool.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'");
  if (status[0]) return Number(status[0].Value);
  const [metric] = await pool.query<RowDataPacket[]>(
    "SELECT count FROM information_schema.innodb_metrics WHERE name = 'trx_rseg_history_len'",
  );
  return Number(metric[0]?.count ?? 0);
}

/**
 * Waits (up to `timeoutMs`) until InnoDB has purged what earlier writes left behind: until the
 * history list is back to `baseline` (its length before those writes; other clients of a
 * shared server keep it above 0), or has stopped shrinking for `idleMs` (MySQL's purge leaves
 * a short list alone until more comes).
 */
export async function waitForPurge(pool: Pool, baseline = 0, timeoutMs = 15_000, idleMs = 1_000): Promise<void> {
  const started = performance.now();
  let last = Number.POSITIVE_INFINITY;
  let lastShrank = started;
  for (;;) {
    const length = await historyListLength(pool);
    const now = performance.now();
    if (length < last) {
      last = length;
      lastShrank = now;
    }
    if (length <= baseline || now - lastShrank >= idleMs || now - started >= timeoutMs) return;
    await sleep(50);
  }
}
