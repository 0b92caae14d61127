import { randomInt } from 'node:crypto';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { Statement } from '../mysql/transaction.js';
import type { TaskStatus } from './task-schema.js';

/**
 * The counts operators read (tasks per status, tasks finished per minute), kept by the
 * statements that change statuses, in their own transaction: exact through crashes (a rolled
 * back transaction counts nothing), and read without scanning `tasks`.
 *
 * `task_counts` holds each status's count split over `COUNT_SHARDS` rows; a transaction adds
 * to one shard chosen at random, so writers that commit at the same moment seldom wait for
 * each other's row lock. The counts are the last statement of the transaction, so the lock is
 * held only until its commit.
 */

export const COUNT_SHARDS = 16;

/** `n` tasks moved from one status to another (`from` null: inserted; `to` null: deleted). */
export interface StatusMove {
  from: TaskStatus | null;
  to: TaskStatus | null;
  n: number;
}

/** Counts moves in the transaction that made them; finishes also count in their minute. */
export async function countMoves(connection: PoolConnection, moves: StatusMove[]): Promise<void> {
  for (const { sql, values } of countStatements(moves)) await connection.query(sql, values);
}

/** The statements that count `moves` (none when nothing moved), for a transaction to run. */
export function countStatements(moves: StatusMove[]): Statement[] {
  const delta = new Map<TaskStatus, number>();
  let completed = 0;
  let failed = 0;
  for (const { from, to, n } of moves) {
    if (n === 0) continue;
    if (from) delta.set(from, (delta.get(from) ?? 0) - n);
    if (to) delta.set(to, (delta.get(to) ?? 0) + n);
    if (to === 'completed') completed += n;
    if (to === 'failed') failed += n;
  }
  const statements: Statement[] = [];
  if (completed + failed > 0) {
    statements.push({
      sql: `INSERT INTO tasks_finished_per_minute (minute, completed, failed) VALUES (UNIX_TIMESTAMP() DIV 60, ?, ?)
        ON DUPLICATE KEY UPDATE completed = completed + ?, failed = failed + ?`,
      values: [completed, failed, completed, failed],
    });
  }
  const changes = [...delta].filter(([, n]) => n !== 0);
  if (changes.length > 0) {
    statements.push({
      sql: `UPDATE task_counts SET n = n + CASE status ${changes.map(() => 'WHEN ? THEN ?').join(' ')} END
      WHERE shard = ? AND status IN (?)`,
      values: [...changes.flat(), randomInt(COUNT_SHARDS), changes.map(([status]) => status)],
    });
  }
  return statements;
}

/** How many tasks have each status (every status present, 0 when none): a read of 64 rows. */
export async function countByStatus(db: Pool | PoolConnection): Promise<Record<TaskStatus, number>> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT status, SUM(n) AS n FROM task_counts GROUP BY status');
  const counts: Record<TaskStatus, number> = { pending: 0, processing: 0, completed: 0, failed: 0 };
  for (const row of rows) counts[row.status as TaskStatus] = Number(row.n);
  return counts;
}

/**
 * Sets the per-status counts to the table's, exactly, for rows written around the status
 * writes (loaded in bulk, or by hand). The count rows are locked first, so a status write that
 * commits meanwhile waits and adds its change after; the table is then counted as of that
 * moment. Takes as long as counting the table (seconds for millions of rows), during which
 * status writes wait.
 */
export async function recountStatuses(pool: Pool): Promise<Record<TaskStatus, number>> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    await connection.query('SELECT n FROM task_counts FOR UPDATE');
    const [rows] = await connection.query<RowDataPacket[]>('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status');
    const counts: Record<TaskStatus, number> = { pending: 0, processing: 0, completed: 0, failed: 0 };
    for (const row of rows) counts[row.status as TaskStatus] = Number(row.n);
    await connection.query('UPDATE task_counts SET n = 0 WHERE shard <> 0');
    for (const [status, n] of Object.entries(counts)) {
      await connection.query('UPDATE task_counts SET n = ? WHERE status = ? AND shard = 0', [n, status]);
    }
    await connection.commit();
    return counts;
  } catch (err) {
    await connection.rollback().catch(() => undefined);
    throw err;
  } finally {
    connection.release();
  }
}
