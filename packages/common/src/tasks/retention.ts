import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { withNamedLock } from '../mysql/named-lock.js';
import { countedOneTrip } from './status-counts.js';
import { FINAL_STATUSES, type FinalStatus } from './task-schema.js';

/**
 * Retention: finished tasks (`completed`, `failed`, `cancelled`) older than a number of days are deleted, a
 * page of ids at a time in id order, with the per-status counts in the same transaction; so
 * are the per-minute finish counts of those days. Tasks that are pending or processing are
 * never deleted, however old. A task's Idempotency-Key goes with it: a replay of that key after
 * the task was deleted creates a new task.
 *
 * Each call does a bounded amount of work (one page read by primary key, one transaction of one
 * round trip deleting at most a page), normally only in the one process holding the named lock
 * `retention:<database>`. Two that run at once (a holder that stopped answering, or a failover:
 * named locks stay on the member they were taken on, so one process's lock on the old primary
 * and another's on the new one overlap) stay exact: every DELETE is guarded by status and age
 * under its row locks and counted by the rows it changed, so a row deleted by one is not there
 * for the other to delete or count, and the minute rows deleted are the same whoever deletes them.
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
  cancelled: number;
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

/** One step of retention from `afterId`; null when another process is doing it. */
export function deleteExpiredTasks(
  db: Database,
  options: RetentionOptions,
  afterId: number,
): Promise<RetentionStep | null> {
  return withNamedLock(db, 'retention', async () => {
    const [page] = await db.query<PageRow[]>(
      `SELECT id,
              status IN ('completed', 'failed', 'cancelled') AND finished_at < NOW(3) - INTERVAL ? DAY AS expired,
              created_at >= NOW(3) - INTERVAL ? DAY AS recent
         FROM tasks WHERE id > ? ORDER BY id LIMIT ?`,
      [options.days, options.days, afterId, options.pageSize],
    );
    const expired = page.filter((r) => Number(r.expired) === 1).map((r) => Number(r.id));
    const deleted =
      expired.length === 0
        ? { completed: 0, failed: 0, cancelled: 0 }
        : await deleteFinished(db, expired, options.days);
    const [minutes] = await db.query<ResultSetHeader>(
      `DELETE FROM tasks_finished_per_minute WHERE minute < (UNIX_TIMESTAMP() DIV 60) - ? * 1440 LIMIT ?`,
      [options.days, options.pageSize],
    );
    // Tasks are created in id order: past the first one created within the window, none is old enough.
    const last = page.at(-1);
    const over = !last || page.length < options.pageSize || Number(last.recent) === 1;
    return { ...deleted, minutes: minutes.affectedRows, nextAfterId: over ? 0 : Number(last.id) };
  });
}

/** Deletes those of `ids` still finished and old, counted, in one transaction of one round trip. */
async function deleteFinished(
  db: Database,
  ids: number[],
  days: number,
): Promise<{ completed: number; failed: number; cancelled: number }> {
  const deleteOld = (status: FinalStatus) => ({
    sql: `DELETE FROM tasks WHERE id IN (?) AND status = ? AND finished_at < NOW(3) - INTERVAL ? DAY`,
    values: [ids, status, days],
    move: { from: status, to: null },
  });
  const [completed, failed, cancelled] = (await countedOneTrip(
    db,
    FINAL_STATUSES.map((status) => deleteOld(status)),
  )) as ResultSetHeader[];
  return {
    completed: completed?.affectedRows ?? 0,
    failed: failed?.affectedRows ?? 0,
    cancelled: cancelled?.affectedRows ?? 0,
  };
}
