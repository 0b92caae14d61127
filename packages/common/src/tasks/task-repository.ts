import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { groupBy, idsCondition } from '../mysql/ids-condition.js';
import { inTransaction, isRetryableTransactionError } from '../mysql/transaction.js';
import { parseData } from './task-row.js';
import type { TaskData } from './task-schema.js';

/** Every SQL statement on `tasks`. Status writes are guarded so a final status never changes. */

/** A task the scheduler (or the sweeper) has just marked `processing`, ready to be pushed. */
export interface DispatchedTask {
  id: number;
  data: TaskData;
  attempts: number;
  lastError: string | null;
}

/** The outcome of one run, to be written in a batch. */
export interface TaskOutcome {
  id: number;
  attempts: number;
  error?: string;
}

interface DispatchRow extends RowDataPacket {
  id: number;
  data: TaskData | string;
  attempts: number;
  last_error: string | null;
}

function toDispatched(row: DispatchRow): DispatchedTask {
  return { id: Number(row.id), data: parseData(row.data), attempts: row.attempts, lastError: row.last_error };
}

/** Marks the claimed rows `processing`; returns how many were still `pending`. */
async function markDispatched(connection: PoolConnection, rows: DispatchRow[]): Promise<number> {
  const ids = idsCondition(rows.map((r) => Number(r.id)));
  const [result] = await connection.query<ResultSetHeader>(
    `UPDATE tasks SET status = 'processing', dispatched_at = NOW(3) WHERE ${ids.sql} AND status = 'pending'`,
    ids.params,
  );
  return result.affectedRows;
}

/**
 * Claims up to `limit` pending tasks, oldest first, and marks them `processing` in the same
 * transaction. `SKIP LOCKED` lets several schedulers claim at once without sharing a task.
 */
export async function claimPending(pool: Pool, limit: number): Promise<DispatchedTask[]> {
  const claimed = await claimOptimistically(pool, limit);
  return claimed ?? claimWithLocks(pool, limit);
}

/**
 * The usual case, one scheduler or schedulers that do not collide: read the oldest pending
 * tasks without locking them, then mark exactly those. If every one was still pending, the
 * claim is ours (each changed row stays locked until the commit). If another scheduler took
 * some meanwhile, undo and claim with locks instead. Locking reads cost the database about as
 * much as the update itself, so this roughly halves the work of a claim.
 */
async function claimOptimistically(pool: Pool, limit: number): Promise<DispatchedTask[] | null> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    const [rows] = await connection.query<DispatchRow[]>(
      `SELECT id, data, attempts, last_error FROM tasks WHERE status = 'pending' ORDER BY id LIMIT ?`,
      [limit],
    );
    if (rows.length > 0 && (await markDispatched(connection, rows)) !== rows.length) {
      await connection.rollback();
      return null;
    }
    await connection.commit();
    return rows.map(toDispatched);
  } catch (err) {
    await connection.rollback().catch(() => undefined);
    // Two schedulers updating the same rows: the one the server chose to roll back claims with locks.
    if (isRetryableTransactionError(err)) return null;
    throw err;
  } finally {
    connection.release();
  }
}

/** Claims with `SKIP LOCKED`, so schedulers claiming at the same moment never share a task. */
function claimWithLocks(pool: Pool, limit: number): Promise<DispatchedTask[]> {
  return inTransaction(pool, async (connection) => {
    const [rows] = await connection.query<DispatchRow[]>(
      `SELECT id, data, attempts, last_error FROM tasks
        WHERE status = 'pending' ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    if (rows.length > 0) await markDispatched(connection, rows);
    return rows.map(toDispatched);
  });
}

/** Ids of tasks `processing` since before `olderThanMs` ago, oldest dispatch first. */
export async function findLongProcessing(pool: Pool, olderThanMs: number, limit: number): Promise<number[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT id FROM tasks
      WHERE status = 'processing' AND dispatched_at < NOW(3) - INTERVAL ? MICROSECOND
      ORDER BY dispatched_at LIMIT ?`,
    [olderThanMs * 1000, limit],
  );
  return rows.map((r) => Number(r.id));
}

/**
 * Re-dispatches tasks found stranded: those of `ids` still `processing` get a new
 * `dispatched_at` and are returned for pushing; any that finished meanwhile are left alone.
 */
export async function redispatch(pool: Pool, ids: number[]): Promise<DispatchedTask[]> {
  if (ids.length === 0) return [];
  return inTransaction(pool, async (connection) => {
    const [rows] = await connection.query<DispatchRow[]>(
      `SELECT id, data, attempts, last_error FROM tasks
        WHERE id IN (?) AND status = 'processing' ORDER BY id FOR UPDATE`,
      [ids],
    );
    if (rows.length === 0) return [];
    await connection.query('UPDATE tasks SET dispatched_at = NOW(3) WHERE id IN (?)', [rows.map((r) => r.id)]);
    return rows.map(toDispatched);
  });
}

/**
 * Counts `n` tasks finished now in `tasks_finished_per_minute`, in the transaction that
 * finished them. Last in the transaction, so the minute's row is locked only until its commit.
 */
async function countFinished(connection: PoolConnection, status: 'completed' | 'failed', n: number): Promise<void> {
  if (n === 0) return;
  await connection.query(
    `INSERT INTO tasks_finished_per_minute (minute, ${status}) VALUES (UNIX_TIMESTAMP() DIV 60, ?)
      ON DUPLICATE KEY UPDATE ${status} = ${status} + ?`,
    [n, n],
  );
}

/** Outcomes that share their attempts and error, so one statement writes them all. */
const sameAttemptsAndError = (o: TaskOutcome) => `${o.attempts}\u0000${o.error ?? ''}`;

/**
 * Writes the outcomes of runs to their tasks, only those still `processing`: one UPDATE of
 * `set` per group of outcomes that share their attempts and error (in practice one to three
 * per batch), `values` filling its placeholders from the group's first outcome. Returns the
 * number of rows changed.
 */
async function writeOutcomes(
  db: Pool | PoolConnection,
  outcomes: TaskOutcome[],
  set: string,
  values: (outcome: TaskOutcome) => unknown[],
): Promise<number> {
  let changed = 0;
  for (const group of groupBy(outcomes, sameAttemptsAndError)) {
    const ids = idsCondition(group.map((o) => o.id));
    const [result] = await db.query<ResultSetHeader>(
      `UPDATE tasks SET ${set} WHERE ${ids.sql} AND status = 'processing'`,
      [...values(group[0] as TaskOutcome), ...ids.params],
    );
    changed += result.affectedRows;
  }
  return changed;
}

/**
 * Marks tasks `completed`; only those still `processing` change, and only those are counted
 * as finished, in the same transaction. Returns the number of rows changed.
 */
export function markCompleted(pool: Pool, outcomes: TaskOutcome[]): Promise<number> {
  return inTransaction(pool, async (connection) => {
    const changed = await writeOutcomes(
      connection,
      outcomes,
      "status = 'completed', attempts = ?, finished_at = NOW(3)",
      (o) => [o.attempts],
    );
    await countFinished(connection, 'completed', changed);
    return changed;
  });
}

/** Records failed runs that will be retried: attempts and the last error, status unchanged. */
export function recordFailedAttempts(pool: Pool, outcomes: TaskOutcome[]): Promise<number> {
  return writeOutcomes(pool, outcomes, 'attempts = GREATEST(attempts, ?), last_error = ?', (o) => [
    o.attempts,
    o.error ?? null,
  ]);
}

/**
 * Marks dead-lettered tasks `failed` with their attempts and last error; only `processing`
 * ones change, and only those are counted as finished, in the same transaction. Returns the
 * number of rows changed.
 */
export function markFailed(pool: Pool, outcomes: TaskOutcome[]): Promise<number> {
  return inTransaction(pool, async (connection) => {
    const changed = await writeOutcomes(
      connection,
      outcomes,
      "status = 'failed', attempts = GREATEST(attempts, ?), last_error = ?, finished_at = NOW(3)",
      (o) => [o.attempts, o.error ?? null],
    );
    await countFinished(connection, 'failed', changed);
    return changed;
  });
}

/**
 * Puts a `failed` task back to `pending` with its attempts reset, so the scheduler runs it
 * again from the start; `last_error` keeps the error it failed with until a new run replaces
 * it. Only a failed task changes: false for any other status, or no such task.
 */
export async function retryFailedTask(pool: Pool, id: number): Promise<boolean> {
  return (await retryFailedTasks(pool, [id])).length === 1;
}

/** `retryFailedTask` for many tasks in one transaction; returns the ids that were failed and now are pending. */
export async function retryFailedTasks(pool: Pool, ids: number[]): Promise<number[]> {
  if (ids.length === 0) return [];
  return inTransaction(pool, async (connection) => {
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT id FROM tasks WHERE id IN (?) AND status = 'failed' ORDER BY id FOR UPDATE`,
      [ids],
    );
    const failed = rows.map((r) => Number(r.id));
    if (failed.length === 0) return [];
    await connection.query(
      `UPDATE tasks SET status = 'pending', attempts = 0, dispatched_at = NULL, finished_at = NULL
        WHERE id IN (?) AND status = 'failed'`,
      [failed],
    );
    return failed;
  });
}
