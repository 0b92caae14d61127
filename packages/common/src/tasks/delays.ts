import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { countedOneTrip } from './status-counts.js';

/**
 * Delayed tasks: a task due later than its insert is `delayed` until its `run_at`, then
 * `pending` like any other. While it is delayed, its due time is also in `due_at`, which the
 * promotion clears (migration 010): the `tasks_due` index holds the delayed tasks' due times
 * and nothing else worth reading. MySQL's clock decides, in the statements themselves (`NOW(3)`), so
 * no host's clock, however far off, makes a task run early; and the wait until the next one is
 * a length MySQL computes, not an instant a host compares with its own.
 */

/** The reads of the delays, naming their index (see CLAIM_READS). */
export const DELAY_READS = {
  promoteDue: `UPDATE tasks FORCE INDEX (tasks_due) SET status = 'pending', due_at = NULL
    WHERE due_at <= NOW(3) AND status = 'delayed' ORDER BY due_at LIMIT ?`,
  nextDue:
    'SELECT GREATEST(0, TIMESTAMPDIFF(MICROSECOND, NOW(3), MIN(due_at))) DIV 1000 AS ms FROM tasks FORCE INDEX (tasks_due)',
} as const;

/** Makes pending, counted, the delayed tasks due now, up to `limit`, oldest due first. */
export async function promoteDue(db: Database, limit: number): Promise<number> {
  const [promoted] = (await countedOneTrip(db, [
    {
      sql: DELAY_READS.promoteDue,
      values: [limit],
      move: { from: 'delayed', to: 'pending' },
    },
  ])) as [ResultSetHeader];
  return promoted.affectedRows;
}

/** How long until the next delayed task is due (ms, 0 when one is due), by MySQL's clock; null when none waits. */
export async function nextDueInMs(db: Database): Promise<number | null> {
  const [[row]] = await db.query<RowDataPacket[]>(DELAY_READS.nextDue);
  return row?.ms === null || row?.ms === undefined ? null : Number(row.ms);
}
