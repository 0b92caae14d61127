import type { RowDataPacket } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { groupBy } from '../../mysql/ids-condition.js';
import { oneTrip } from '../../mysql/transaction.js';
import { type DeadLetter, encodeMessage, errorText, type QueueMessage } from '../../wire/message-codec.js';
import type { TransitionDeps } from './deps.js';

/**
 * Fail runs: a failed try is recorded in MySQL first (attempts and last error), then settled
 * in Redis: retried after its backoff, or dead-lettered on the task's last attempt. MySQL
 * learns the last attempt before the dead letter exists, so should Redis lose the letter
 * before the DLQ processor records it, the recover transition finds the task out of attempts.
 *
 * A try counts only if its task is `processing` in the same run and has not counted this try
 * already (`attempts <= tries`): a stale message, or a duplicate copy of one whose try was
 * counted, changes nothing, uses none of the run's attempts, and is dropped. A counted try
 * whose lease was lost (`lease-lost`) pushes nothing: the reaper already returned its message,
 * or Redis lost it, and then the sweeper pushes the task again from its attempts.
 */

/** A failed try of a leased message. */
export interface FailedRun {
  /** The message that was run. */
  message: QueueMessage;
  token: string;
  error: string;
  /** Whether this was its task's last attempt (dead-letter instead of retrying). */
  last: boolean;
  /** How long to wait before the next try (ms). */
  delayMs: number;
  /** When it failed (ISO 8601), for the dead letter. */
  failedAt: string;
  /**
   * Known once the try's MySQL part committed (whether it counted): settling it again (after
   * Redis failed) goes straight to Redis, so a try is never counted, or dropped, twice.
   */
  counted?: boolean;
}

/** What became of a failed run; `dropped`: stale or a duplicate, nothing followed. */
export type FailedRunOutcome = 'retried' | 'dead-lettered' | 'dropped' | 'lease-lost';

interface AttemptRow extends RowDataPacket {
  id: number;
  status: string;
  run: number;
  attempts: number;
}

/**
 * Which of `runs` count, decided from their tasks as locked before the writes, in order (a
 * second copy of a run in the same batch finds its try counted by the first).
 */
function whichCount(rows: AttemptRow[], runs: FailedRun[]): boolean[] {
  const tasks = new Map(rows.map((r) => [Number(r.id), { ...r }]));
  return runs.map((r) => {
    const task = tasks.get(r.message.id);
    if (task?.status !== 'processing' || task.run !== r.message.run || task.attempts > r.message.tries) return false;
    task.attempts = r.message.tries + 1;
    return true;
  });
}

/**
 * Counts the tries that count, in one transaction of one round trip (no row stays locked while
 * this process is away): the tasks are locked and read, then one guarded UPDATE per group of
 * runs that share their run, tries and error writes them. The guard is the same rule as
 * whichCount's, so what the read says counted is what the writes changed.
 */
async function countTries(db: Database, runs: FailedRun[]): Promise<boolean[]> {
  const ids = [...new Set(runs.map((r) => r.message.id))];
  const groups = groupBy(runs, (r) => `${r.message.run}:${r.message.tries}\u0000${r.error}`);
  const [rows] = (await oneTrip(db, [
    { sql: 'SELECT id, status, run, attempts FROM tasks WHERE id IN (?) FOR UPDATE', values: [ids] },
    ...groups.map((group) => {
      const { message, error } = group[0] as FailedRun;
      return {
        sql: `UPDATE tasks SET attempts = ?, last_error = ?
          WHERE id IN (?) AND status = 'processing' AND run = ? AND attempts <= ?`,
        values: [message.tries + 1, errorText(error), group.map((r) => r.message.id), message.run, message.tries],
      };
    }),
  ])) as [AttemptRow[]];
  return whichCount(rows, runs);
}

/**
 * Settles failed runs; `onCounted(i, counted)` learns, for each run whose MySQL part committed
 * now, whether it counted, so that the caller settles it again with `counted` set.
 */
export async function failRuns(
  deps: TransitionDeps,
  runs: FailedRun[],
  onCounted: (index: number, counted: boolean) => void = () => undefined,
): Promise<FailedRunOutcome[]> {
  if (runs.length === 0) return [];
  const counts = runs.map((r) => r.counted === true);
  const fresh = runs.flatMap((r, i) => (r.counted === undefined ? [i] : []));
  if (fresh.length > 0) {
    const counted = await countTries(
      deps.pool,
      fresh.map((i) => runs[i] as FailedRun),
    );
    fresh.forEach((runIndex, n) => {
      counts[runIndex] = counted[n] === true;
      onCounted(runIndex, counts[runIndex] as boolean);
    });
  }

  // A dropped message leaves, and so does its task's presence, whatever the task's state: the
  // copy that counted this try may itself have been lost (Redis lost its data, and its next
  // message with it). If another copy is still there, the sweeper pushes one more, which the
  // same rule fences; never may a task be present with no message left.
  const outcomes: FailedRunOutcome[] = runs.map((_, i) => (counts[i] ? 'lease-lost' : 'dropped'));
  const dropped = runs.filter((_, i) => !counts[i]);
  await deps.queue.tasks.ack(
    dropped.map((r) => r.token),
    dropped.map((r) => r.message.id),
  );

  const retryAt = runs.flatMap((r, i) => (counts[i] && !r.last ? [i] : []));
  const retried = await deps.queue.tasks.retry(
    retryAt.map((i) => {
      const r = runs[i] as FailedRun;
      return { token: r.token, next: encodeMessage({ ...r.message, tries: r.message.tries + 1 }), delayMs: r.delayMs };
    }),
  );
  retryAt.forEach((i, n) => {
    if (retried[n]) outcomes[i] = 'retried';
  });

  const letterAt = runs.flatMap((r, i) => (counts[i] && r.last ? [i] : []));
  const moved = await deps.queue.deadLetter(
    letterAt.map((i) => {
      const r = runs[i] as FailedRun;
      const letter: DeadLetter = { ...r.message, tries: r.message.tries + 1, error: r.error, failed_at: r.failedAt };
      return { token: r.token, letter };
    }),
  );
  letterAt.forEach((i, n) => {
    if (moved[n]) outcomes[i] = 'dead-lettered';
  });
  return outcomes;
}
