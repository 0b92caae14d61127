import type { RowDataPacket } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { TransactionStoppedError } from '../../mysql/stop.js';
import type { TaskQueue } from '../../redis/task-queue.js';
import { type DeadLetterEntry, readDeadLetter } from '../../wire/dead-letter.js';
import { countedOneTrip } from '../status-counts.js';
import type { TaskStatus } from '../task-schema.js';

/**
 * Redrive: failed tasks go back to `pending` in MySQL, so the scheduler claims them and the
 * normal path runs them again (attempts start over). MySQL is written first, then the task's
 * entries leave the `dead-letter-queue` list; a redrive that stops between the two leaves the
 * entries in place, never removes one whose task was not redriven. The list is read before
 * MySQL is written, so with Redis down a redrive fails having changed nothing; should Redis
 * fail after the commit, the outcome says the tasks were redriven and their entries not
 * removed. The claim that runs a redriven task starts a new run, so a stale dead letter of its
 * old run changes nothing. Entries of tasks that are
 * not `failed` in MySQL stay: in particular a dead letter that the DLQ processor has not
 * recorded yet (its task is still `processing`) can be retried once it is recorded.
 */

export interface RedriveDeps {
  pool: Database;
  queue: TaskQueue;
  /**
   * The caller's deadline (an API request answered 503 once it passed): once it aborts, the
   * redrive does not start writing MySQL, and throws TransactionStoppedError having changed
   * nothing. So a list read that Redis answers late redrives nothing. A redrive that has started
   * writing goes to its end.
   */
  signal?: AbortSignal;
}

export type RedriveOutcome =
  | { redriven: true; id: number; removedEntries: number | null }
  | { redriven: false; id: number; reason: 'not_found' }
  | { redriven: false; id: number; reason: 'not_failed'; status: TaskStatus };

export interface RedriveAllResult {
  /** Tasks put back to pending. */
  redriven: number[];
  /** Entries removed from the dead-letter list (those of the redriven tasks); null if removing them failed. */
  removedEntries: number | null;
  /** Why the redriven tasks' entries could not be removed (they stay in the list), if so. */
  removalError?: string;
  /** Entries left in the list: their task is not failed in MySQL (or they name none). */
  keptEntries: number;
}

const CHUNK = 1_000;

/** Why a task was not redriven, as a sentence for an operator. */
export function notRedrivenReason(outcome: Exclude<RedriveOutcome, { redriven: true }>): string {
  if (outcome.reason === 'not_found') return `task ${outcome.id} does not exist`;
  const hint =
    outcome.status === 'processing'
      ? ' (a dead letter the DLQ processor has not recorded yet is still processing: retry it once it is failed)'
      : '';
  return `task ${outcome.id} is ${outcome.status}, not failed: only a failed task can be retried${hint}`;
}

async function wakeSchedulers(queue: TaskQueue): Promise<void> {
  // A lost announcement only delays the task until the scheduler's next poll.
  await queue.notifyInserted().catch(() => undefined);
}

/**
 * Puts `failed` tasks back to `pending` with their attempts reset, in one transaction, so the
 * scheduler runs them again from the start; `last_error` keeps the error they failed with
 * until a new run replaces it. Returns the ids that were failed and now are pending.
 *
 * Their failures leave the per-minute finish counts in the same transaction (from the minute
 * of their `finished_at`): those count the finished tasks by their status now, as the
 * per-status counts do, so a redriven task is counted again only when it finishes again.
 */
export async function retryFailedTasks(db: Database, ids: number[]): Promise<number[]> {
  if (ids.length === 0) return [];
  const [rows] = await countedOneTrip(db, [
    { sql: `SELECT id FROM tasks WHERE id IN (?) AND status = 'failed' ORDER BY id FOR UPDATE`, values: [ids] },
    {
      // A minute never goes below zero (a failure counted before the counts were kept).
      sql: `UPDATE tasks_finished_per_minute AS m
        JOIN (SELECT UNIX_TIMESTAMP(finished_at) DIV 60 AS minute, COUNT(*) AS n FROM tasks
               WHERE id IN (?) AND status = 'failed' AND finished_at IS NOT NULL
               GROUP BY UNIX_TIMESTAMP(finished_at) DIV 60) AS f ON f.minute = m.minute
        SET m.failed = m.failed - LEAST(m.failed, f.n)`,
      values: [ids],
    },
    {
      sql: `UPDATE tasks SET status = 'pending', attempts = 0, dispatched_at = NULL, finished_at = NULL
        WHERE id IN (?) AND status = 'failed'`,
      values: [ids],
      move: { from: 'failed', to: 'pending' },
    },
  ]);
  return (rows as RowDataPacket[]).map((r) => Number(r.id));
}

/**
 * Redrives the failed tasks among `ids`, `entries` being the dead-letter list as read before:
 * MySQL first, then the redriven tasks' entries leave the list.
 */
async function redrive(deps: RedriveDeps, ids: number[], entries: DeadLetterEntry[]): Promise<RedriveAllResult> {
  if (deps.signal?.aborted) throw new TransactionStoppedError();
  const redriven: number[] = [];
  for (let i = 0; i < ids.length; i += CHUNK) {
    redriven.push(...(await retryFailedTasks(deps.pool, ids.slice(i, i + CHUNK))));
  }
  if (redriven.length === 0) return { redriven, removedEntries: 0, keptEntries: entries.length };
  await wakeSchedulers(deps.queue);
  const done = new Set(redriven);
  const mine = entries.filter((e) => e.id !== null && done.has(e.id)).map((e) => e.raw);
  try {
    const removedEntries = await deps.queue.deadLetterList().remove(mine);
    return { redriven, removedEntries, keptEntries: entries.length - removedEntries };
  } catch (err) {
    const removalError = err instanceof Error ? err.message : String(err);
    return { redriven, removedEntries: null, removalError, keptEntries: entries.length };
  }
}

/** Redrives each of `ids` that is failed, in one transaction per 1,000; one outcome per id, in order. */
export async function redriveTasks(deps: RedriveDeps, ids: number[]): Promise<RedriveOutcome[]> {
  const entries = (await deps.queue.deadLetterList().all()).map(readDeadLetter);
  const result = await redrive(deps, [...new Set(ids)], entries);
  const done = new Set(result.redriven);
  const others = ids.filter((id) => !done.has(id));
  const statuses = new Map<number, TaskStatus>();
  if (others.length > 0) {
    const [rows] = await deps.pool.query<RowDataPacket[]>('SELECT id, status FROM tasks WHERE id IN (?)', [others]);
    for (const row of rows) statuses.set(Number(row.id), row.status as TaskStatus);
  }
  const perTask = new Map<number, number>();
  for (const entry of entries) if (entry.id !== null) perTask.set(entry.id, (perTask.get(entry.id) ?? 0) + 1);
  return ids.map((id): RedriveOutcome => {
    if (done.has(id)) {
      return { redriven: true, id, removedEntries: result.removedEntries === null ? null : (perTask.get(id) ?? 0) };
    }
    const status = statuses.get(id);
    return status === undefined
      ? { redriven: false, id, reason: 'not_found' }
      : { redriven: false, id, reason: 'not_failed', status };
  });
}

/** Redrives one failed task and removes its entries from the dead-letter list. */
export async function redriveTask(deps: RedriveDeps, id: number): Promise<RedriveOutcome> {
  const [outcome] = await redriveTasks(deps, [id]);
  return outcome as RedriveOutcome;
}

/** Redrives every task named in the dead-letter list that is failed in MySQL. */
export async function redriveAllDeadLetters(deps: RedriveDeps): Promise<RedriveAllResult> {
  const entries = (await deps.queue.deadLetterList().all()).map(readDeadLetter);
  const ids = [...new Set(entries.flatMap((e) => (e.id === null ? [] : [e.id])))];
  return redrive(deps, ids, entries);
}
