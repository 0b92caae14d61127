import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { TaskQueue } from '../../redis/task-queue.js';

/** What every transition works on: MySQL, the source of truth, written first; then Redis. */
export interface TransitionDeps {
  pool: Pool;
  queue: TaskQueue;
}

/**
 * Of `ids`, those whose task is final (completed or failed) or gone: a message of one of them
 * that is settled takes its task out of the present set. A task still `pending` or
 * `processing` keeps its presence: the message that carries its current run is elsewhere.
 */
export async function finishedOrGone(db: Pool | PoolConnection, ids: number[]): Promise<number[]> {
  const distinct = [...new Set(ids)];
  if (distinct.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT id FROM tasks WHERE id IN (?) AND status IN ('pending', 'processing')`,
    [distinct],
  );
  const live = new Set(rows.map((r) => Number(r.id)));
  return distinct.filter((id) => !live.has(id));
}
