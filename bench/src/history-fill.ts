import type { TaskStore } from '@tasks/common';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import type { DatabaseServer } from './servers.js';

/**
 * Fills `tasks` with finished rows fast: INSERT … SELECT over a sequence table, one statement
 * (one transaction) per million rows, never a round trip per row. The rows look like a long
 * history: ids 1…n in the order they were created, `created_at` spread evenly over the past
 * 30 days up to an hour ago, about 95% `completed` (10% of them after a failed try) and 5%
 * `failed` after 3 attempts, each in run 1 with `dispatched_at` and `finished_at` set.
 */

/** Rows per INSERT … SELECT: one transaction each, so none is huge. */
export const FILL_CHUNK = 1_000_000;
const HISTORY_DAYS = 30;
/** Of 100 hash buckets of an id: below FAILED failed, below RETRIED tried more than once. */
const FAILED = 5;
const RETRIED = 15;
export const HISTORY_ERROR = 'simulated failure (FAILURE_RATE=0.2)';

export interface FillFigures {
  rows: number;
  /** Rows per status, counted after the fill. */
  completed: number;
  failed: number;
  /** Seconds of the INSERTs, then of ANALYZE TABLE. */
  insertSeconds: number;
  analyzeSeconds: number;
  /** Seconds of setting the per-status counts from the table (the store's recount). */
  recountSeconds: number;
  /** Whether the fill was kept out of the binary log (its own session's sql_log_bin=0; see below). */
  binlogSkipped: boolean;
}

const DIGITS =
  'SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9';

/** 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC: a DATETIME literal for sessions in UTC. */
function utcDatetime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '000');
}

/** The table `bench_seq` of the numbers 0…count-1 (at most a million), for INSERT … SELECT. */
async function createSequence(connection: mysql.Connection, count: number): Promise<void> {
  await connection.query('DROP TABLE IF EXISTS bench_seq');
  await connection.query('CREATE TABLE bench_seq (n INT UNSIGNED NOT NULL, PRIMARY KEY (n)) ENGINE = InnoDB');
  await connection.query(
    `INSERT INTO bench_seq (n)
     SELECT n FROM (
       SELECT d0.d + 10 * d1.d + 100 * d2.d + 1000 * d3.d + 10000 * d4.d + 100000 * d5.d AS n
         FROM (${DIGITS}) d0 CROSS JOIN (${DIGITS}) d1 CROSS JOIN (${DIGITS}) d2
              CROSS JOIN (${DIGITS}) d3 CROSS JOIN (${DIGITS}) d4 CROSS JOIN (${DIGITS}) d5
     ) AS s WHERE n < ? ORDER BY n`,
    [count],
  );
}

/**
 * Adds `rows` (at most a million) delayed tasks to `tasks`, due `aheadHours` from now and over
 * the following hour, by MySQL's clock: a backlog of future work that no drain may touch. One
 * INSERT … SELECT, then the store's recount (the rows bypass the counted inserts).
 */
export async function fillDelayed(
  server: DatabaseServer,
  store: TaskStore,
  rows: number,
  aheadHours = 24,
): Promise<{ seconds: number }> {
  const connection = await mysql.createConnection({ uri: server.url, timezone: 'Z' });
  try {
    await connection.query("SET time_zone = '+00:00'");
    if (server.variables.log_bin === 'ON') await connection.query('SET SESSION sql_log_bin = 0');
    const started = performance.now();
    await createSequence(connection, rows);
    await connection.query(
      // A delayed task's due time is in due_at too, as the inserts write it (tasks/delays.ts).
      `INSERT INTO tasks (data, status, run_at, due_at, created_at, updated_at)
       SELECT CONCAT('{"message":"later ', n, '","time":0}'), 'delayed', due, due, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)
         FROM (SELECT n, UTC_TIMESTAMP(3) + INTERVAL ? HOUR + INTERVAL (n * 3600000000 DIV ?) MICROSECOND AS due
                 FROM bench_seq WHERE n < ?) AS s`,
      [aheadHours, rows, rows],
    );
    await connection.query('DROP TABLE bench_seq');
    await store.recount();
    return { seconds: (performance.now() - started) / 1000 };
  } finally {
    await connection.end();
  }
}

/**
 * Appends `rows` finished tasks to an empty `tasks` of the server's bench database. On a server
 * with the binary log on, the fill's own session leaves it out (`sql_log_bin = 0`): ten million
 * rows would otherwise add gigabytes of binary log to a shared server at every run. The drains
 * and reads measured afterwards run with the binary log as configured.
 */
export async function fillHistory(
  server: DatabaseServer,
  store: TaskStore,
  rows: number,
  now = Date.now(),
): Promise<FillFigures> {
  const connection = await mysql.createConnection({ uri: server.url, timezone: 'Z' });
  try {
    await connection.query("SET time_zone = '+00:00'");
    const binlogSkipped = server.variables.log_bin === 'ON';
    if (binlogSkipped) await connection.query('SET SESSION sql_log_bin = 0');
    const started = performance.now();
    await createSequence(connection, Math.min(rows, FILL_CHUNK));
    const first = now - 3_600_000 - HISTORY_DAYS * 86_400_000;
    const spacingMicros = Math.max(1, Math.floor((HISTORY_DAYS * 86_400_000_000) / rows));
    for (let base = 0; base < rows; base += FILL_CHUNK) {
      const n = Math.min(FILL_CHUNK, rows - base);
      await connection.query(
        `INSERT INTO tasks (id, data, status, attempts, last_error, created_at, dispatched_at, finished_at,
                            updated_at, run)
         SELECT s.id,
                CONCAT('{"message":"history ', s.id, '","time":', s.id % 4, '}'),
                IF(s.h < ${FAILED}, 'failed', 'completed'),
                IF(s.h < ${FAILED}, 3, IF(s.h < ${RETRIED}, 2, 1)),
                IF(s.h < ${RETRIED}, ?, NULL),
                s.created,
                s.created + INTERVAL 2000 MICROSECOND,
                s.created + INTERVAL (20000 + s.h * 30000) MICROSECOND,
                s.created + INTERVAL (20000 + s.h * 30000) MICROSECOND,
                1
           FROM (SELECT ? + n + 1 AS id, CRC32(? + n + 1) % 100 AS h,
                        TIMESTAMP(?) + INTERVAL ((? + n) * ?) MICROSECOND AS created
                   FROM bench_seq WHERE n < ?) AS s`,
        [HISTORY_ERROR, base, base, utcDatetime(first), base, spacingMicros, n],
      );
    }
    const insertSeconds = (performance.now() - started) / 1000;
    await connection.query('DROP TABLE bench_seq');
    const analyzing = performance.now();
    await connection.query('ANALYZE TABLE tasks');
    const analyzeSeconds = (performance.now() - analyzing) / 1000;
    // Rows loaded around the status writes: the store sets its per-status counts from the table.
    const recounting = performance.now();
    const counts = await store.recount();
    const recountSeconds = (performance.now() - recounting) / 1000;
    return {
      rows,
      completed: counts.completed,
      failed: counts.failed,
      insertSeconds,
      analyzeSeconds,
      recountSeconds,
      binlogSkipped,
    };
  } finally {
    await connection.end();
  }
}

/**
 * Waits (up to `timeoutMs`) until the buffer pool has written out what the fill left dirty
 * (down to 5% of its pages, or until the count stops falling for 2 s: MariaDB leaves some
 * dirty while idle), so that the reads measured next do not share the disk with that
 * flushing. Returns the seconds waited.
 */
export async function waitForFlush(server: DatabaseServer, timeoutMs = 60_000, idleMs = 2_000): Promise<number> {
  const started = performance.now();
  let least = Number.POSITIVE_INFINITY;
  let lastFell = started;
  for (;;) {
    const [rows] = await server.pool.query<RowDataPacket[]>(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('Innodb_buffer_pool_pages_dirty', 'Innodb_buffer_pool_pages_total')",
    );
    const value = (name: string) => Number(rows.find((r) => r.Variable_name === name)?.Value ?? 0);
    const dirty = value('Innodb_buffer_pool_pages_dirty');
    const now = performance.now();
    if (dirty < least) {
      least = dirty;
      lastFell = now;
    }
    if (
      dirty <= value('Innodb_buffer_pool_pages_total') * 0.05 ||
      now - lastFell >= idleMs ||
      now - started >= timeoutMs
    ) {
      return (now - started) / 1000;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
