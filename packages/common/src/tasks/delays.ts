import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { countedOneTrip } from './status-counts.js';

/**
 * Delayed tasks: a task due later than its insert is `delayed` until its `run_at`, then
 * `pending` like any other. MySQL's clock decides, in the statements themselves (`NOW(3)`), so
 * no host's clock, however far off, makes a task run early; and the wait until the next one is
 * a length MySQL computes, not an instant a host compares with its own.
 */

/** Makes pending, counted, the delayed tasks due now, up to `limit`, oldest due first. */
export async function promoteDue(db: Database, limit: number): Promise<number> {
  const [promoted] = (await countedOneTrip(db, [
    {
      sql: `UPDATE tasks SET status = 'pending' WHERE delayed_until <= NOW(3) ORDER BY delayed_until LIMIT ?`,
      values: [limit],
      move: { from: 'delayed', to: 'pending' },
    },
  ])) as [ResultSetHeader];
  return promoted.affectedRows;
}

/** How long until the next delayed task is due (ms, 0 when one is due), by MySQL's clock; null when none waits. */
export async function nextDueInMs(db: Database): Promise<number | null> {
  const [[row]] = await db.query<RowDataPacket[]>(
    'SELECT GREATEST(0, TIMESTAMPDIFF(MICROSECOND, NOW(3), MIN(delayed_until))) DIV 1000 AS ms FROM tasks',
  );
  return row?.ms === null || row?.ms === undefined ? null : Number(row.ms);
}
