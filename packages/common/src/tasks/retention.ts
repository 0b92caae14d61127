import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { withNamedLock } from '../mysql/named-lock.js';
import { inTransaction } from '../mysql/transaction.js';
import { countMoves } from './status-counts.js';

/**
 * Retention: finished tasks (`completed`, `failed`) older than a number of days are deleted, a
 * page of ids at a time in id order, with the per-status counts in the same transaction; so
 * are the per-minute finish counts of those days. Tasks that are pending or processing are
 * never deleted, however old. A task's Idempotency-Key goes with it: a replay of that key after
 * the task was deleted creates a new task.
 *
 * Each call does a bounded amount of work (one page read by primary key, one DELETE of at most
 * a page), and only in the one process holding the named lock `retention:<database>`.
 */

export interface RetentionOptions {
  /** Finished tasks older than this many days are deleted. */
  days: number;
  /** Tasks looked at (and at most deleted) per call. */
  pageSize: number;
}

export interface RetentionStep {
  /** Tasks deleted, by their status. */
  completed: number;
  failed: number;
  /** Minutes of finish counts deleted. */
  minutes: number;
  /** Where the next call goes on (0: the pass is over; the next one starts from the oldest task). */
  nextAfterId: number;
}

interface PageRow extends RowDataPacket {
  id: number;
  expired: number;
  recent: number;
}

interface ExpiredRow extends RowDataPacket {
  id: number;
  status: 'completed' | 'failed';
}

/** One step of retention from `afterId`; null when another process holds the lock. */
export function deleteExpiredTasks(
  pool: Pool,
  options: RetentionOptions,
  afterId: number,
): Promise<RetentionStep | null> {
  return withNamedLock(pool, 'retention', async () => {
    const [page] = await pool.query<PageRow[]>(
      `SELECT id,
              status IN ('completed', 'failed') AND finished_at < NOW(3) - INTERVAL ? DAY AS expired,
              created_at >= NOW(3) - INTERVAL ? DAY AS recent
         FROM tasks WHERE id > ? ORDER BY id LIMIT ?`,
      [options.days, options.days, afterId, options.pageSize],
    );
    const expired = page.filter((r) => Number(r.expired) === 1).map((r) => Number(r.id));
    const deleted =
      expired.length === 0
        ? { completed: 0, failed: 0 }
        : await inTransaction(pool, async (connection) => {
            // Still finished and old: locked, then deleted with their counts.
            const [rows] = await connection.query<ExpiredRow[]>(
              `SELECT id, status FROM tasks
                WHERE id IN (?) AND status IN ('completed', 'failed') AND finished_at < NOW(3) - INTERVAL ? DAY
                FOR UPDATE`,
              [expired, options.days],
            );
            if (rows.length === 0) return { completed: 0, failed: 0 };
            await connection.query('DELETE FROM tasks WHERE id IN (?)', [rows.map((r) => Number(r.id))]);
            const completed = rows.filter((r) => r.status === 'completed').length;
            const failed = rows.length - completed;
            await countMoves(connection, [
              { from: 'completed', to: null, n: completed },
              { from: 'failed', to: null, n: failed },
            ]);
            return { completed, failed };
          });
    const [minutes] = await pool.query<ResultSetHeader>(
      `DELETE FROM tasks_finished_per_minute WHERE minute < (UNIX_TIMESTAMP() DIV 60) - ? * 1440 LIMIT ?`,
      [options.days, options.pageSize],
    );
    // Tasks are created in id order: past the first one created within the window, none is old enough.
    const last = page.at(-1);
    const over = !last || page.length < options.pageSize || Number(last.recent) === 1;
    return { ...deleted, minutes: minutes.affectedRows, nextAfterId: over ? 0 : Number(last.id) };
  });
}
