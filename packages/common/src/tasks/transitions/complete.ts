import type { ResultSetHeader } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { groupBy, idsCondition } from '../../mysql/ids-condition.js';
import { countedOneTrip } from '../status-counts.js';
import type { TransitionDeps } from './deps.js';

/**
 * Complete: runs that succeeded mark their tasks `completed` in MySQL (only a task still
 * `processing` in that same run changes, and only those count as finished, in the same
 * transaction), then their messages are acknowledged in Redis. A crash in between leaves the
 * messages leased: they run again, and their completion changes nothing.
 */

/** A run that succeeded: its task, its run, the tries before it, its lease, and its result. */
export interface Completion {
  id: number;
  run: number;
  tries: number;
  token: string;
  /** What its handler returned, as JSON text; none for the original's work. */
  result?: string;
}

export interface CompleteResult {
  /** Tasks that became `completed` (the others were finished already, or in a newer run). */
  completed: number;
  /** Messages whose lease had run out meanwhile (reaped and returned; their next run changes nothing). */
  leasesLost: number;
}

/** Groups that share their run and attempts, so one statement writes each group. */
const runAndAttempts = (c: Completion) => `${c.run}:${c.tries + 1}`;

/**
 * Marks the runs completed, and counts the tasks that changed, in one transaction of one round
 * trip: the UPDATEs (one per group), the counts and the commit.
 */
async function markCompleted(db: Database, completions: Completion[]): Promise<number> {
  const plain = completions.filter((c) => c.result === undefined);
  // A result is a row's own value: one statement each.
  const withResult = completions.flatMap((c) =>
    c.result === undefined
      ? []
      : [
          {
            sql: `UPDATE tasks SET status = 'completed', attempts = GREATEST(attempts, ?), result = ?,
              finished_at = NOW(3) WHERE id = ? AND status = 'processing' AND run = ?`,
            values: [c.tries + 1, c.result, c.id, c.run],
            move: { from: 'processing', to: 'completed' } as const,
          },
        ],
  );
  const updates = groupBy(plain, runAndAttempts).map((group) => {
    const first = group[0] as Completion;
    const ids = idsCondition(group.map((c) => c.id));
    return {
      sql: `UPDATE tasks SET status = 'completed', attempts = GREATEST(attempts, ?), finished_at = NOW(3)
        WHERE ${ids.sql} AND status = 'processing' AND run = ?`,
      values: [first.tries + 1, ...ids.params, first.run],
      move: { from: 'processing', to: 'completed' } as const,
    };
  });
  const results = (await countedOneTrip(db, [...updates, ...withResult])) as ResultSetHeader[];
  return results.reduce((sum, result) => sum + result.affectedRows, 0);
}

export async function completeRuns(deps: TransitionDeps, completions: Completion[]): Promise<CompleteResult> {
  if (completions.length === 0) return { completed: 0, leasesLost: 0 };
  const completed = await markCompleted(deps.pool, completions);
  // Every acknowledged message takes its task out of the present set (the rule of QueueKeys.present).
  const held = await deps.queue.tasks.ack(
    completions.map((c) => c.token),
    completions.map((c) => c.id),
  );
  // The waiters re-read MySQL: naming a task that did not change costs them a read.
  if (completed > 0) {
    await deps.queue
      .announce(deps.queue.keys.finishedChannel, completions.map((c) => c.id).join(','))
      .catch(() => undefined);
  }
  return { completed, leasesLost: completions.length - held };
}
