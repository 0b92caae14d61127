import type { PoolConnection, ResultSetHeader } from 'mysql2/promise';
import { groupBy, idsCondition } from '../../mysql/ids-condition.js';
import { inTransaction } from '../../mysql/transaction.js';
import { countMoves } from '../status-counts.js';
import type { TransitionDeps } from './deps.js';

/**
 * Complete: runs that succeeded mark their tasks `completed` in MySQL (only a task still
 * `processing` in that same run changes, and only those count as finished, in the same
 * transaction), then their messages are acknowledged in Redis. A crash in between leaves the
 * messages leased: they run again, and their completion changes nothing.
 */

/** A run that succeeded: its task, its run, the tries before it, and its lease. */
export interface Completion {
  id: number;
  run: number;
  tries: number;
  token: string;
}

export interface CompleteResult {
  /** Tasks that became `completed` (the others were finished already, or in a newer run). */
  completed: number;
  /** Messages whose lease had run out meanwhile (reaped and returned; their next run changes nothing). */
  leasesLost: number;
}

/** Groups that share their run and attempts, so one statement writes each group. */
const runAndAttempts = (c: Completion) => `${c.run}:${c.tries + 1}`;

async function markCompleted(connection: PoolConnection, completions: Completion[]): Promise<number> {
  let changed = 0;
  for (const group of groupBy(completions, runAndAttempts)) {
    const first = group[0] as Completion;
    const ids = idsCondition(group.map((c) => c.id));
    const [result] = await connection.query<ResultSetHeader>(
      `UPDATE tasks SET status = 'completed', attempts = GREATEST(attempts, ?), finished_at = NOW(3)
        WHERE ${ids.sql} AND status = 'processing' AND run = ?`,
      [first.tries + 1, ...ids.params, first.run],
    );
    changed += result.affectedRows;
  }
  await countMoves(connection, [{ from: 'processing', to: 'completed', n: changed }]);
  return changed;
}

export async function completeRuns(deps: TransitionDeps, completions: Completion[]): Promise<CompleteResult> {
  if (completions.length === 0) return { completed: 0, leasesLost: 0 };
  const completed = await inTransaction(deps.pool, (connection) => markCompleted(connection, completions));
  // Every acknowledged message takes its task out of the present set (the rule of QueueKeys.present).
  const held = await deps.queue.tasks.ack(
    completions.map((c) => c.token),
    completions.map((c) => c.id),
  );
  return { completed, leasesLost: completions.length - held };
}
