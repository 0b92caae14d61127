import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { countedOneTrip } from '../status-counts.js';
import type { TaskStatus } from '../task-schema.js';
import type { TransitionDeps } from './deps.js';

/**
 * Cancel: a task that has not finished becomes `cancelled`, a final status, through the same
 * kind of guarded write as a completion (only a task still `delayed`, `pending` or `processing` changes),
 * counted in the same transaction. Whatever its run does afterwards is fenced out: a
 * completion, a failed try or a dead letter of it changes only a task still `processing`. Then
 * the executors are told, so the one running it aborts its handler (a courtesy: the fence is
 * the guarantee), and the waiters, so they answer.
 */

export type CancelOutcome =
  | { cancelled: true; id: number; was: 'delayed' | 'pending' | 'processing' }
  | { cancelled: false; id: number; reason: 'not_found' }
  | { cancelled: false; id: number; reason: 'finished'; status: TaskStatus };

interface StatusRow extends RowDataPacket {
  status: TaskStatus;
}

export async function cancelTask(deps: TransitionDeps, id: number): Promise<CancelOutcome> {
  const cancel = (from: 'delayed' | 'pending' | 'processing') => ({
    sql: `UPDATE tasks SET status = 'cancelled', finished_at = NOW(3), due_at = NULL WHERE id = ? AND status = ?`,
    values: [id, from],
    move: { from, to: 'cancelled' } as const,
  });
  const [rows, delayed, pending, processing] = (await countedOneTrip(deps.pool, [
    { sql: 'SELECT status FROM tasks WHERE id = ? FOR UPDATE', values: [id] },
    cancel('delayed'),
    cancel('pending'),
    cancel('processing'),
  ])) as [StatusRow[], ResultSetHeader, ResultSetHeader, ResultSetHeader];
  const before = rows[0]?.status;
  if (before === undefined) return { cancelled: false, id, reason: 'not_found' };
  if (delayed.affectedRows + pending.affectedRows + processing.affectedRows === 0) {
    return { cancelled: false, id, reason: 'finished', status: before };
  }
  // Told after the commit, without holding the outcome on Redis (a silent Redis would hold
  // it): a lost announcement is made up for by the executors' and the waiters' own look at
  // MySQL within a second.
  void Promise.all([
    deps.queue.announce(deps.queue.keys.cancelledChannel, String(id)),
    deps.queue.announce(deps.queue.keys.finishedChannel, String(id)),
  ]).catch(() => undefined);
  const was = delayed.affectedRows > 0 ? 'delayed' : pending.affectedRows > 0 ? 'pending' : 'processing';
  return { cancelled: true, id, was };
}

/**
 * Why a task was not cancelled, in words; null when it is cancelled all the same (it was
 * already: a second cancel is harmless).
 */
export function notCancelledReason(outcome: CancelOutcome): string | null {
  if (outcome.cancelled) return null;
  if (outcome.reason === 'not_found') return `task ${outcome.id} does not exist`;
  if (outcome.status === 'cancelled') return null;
  return `task ${outcome.id} is ${outcome.status}: a finished task cannot be cancelled`;
}
