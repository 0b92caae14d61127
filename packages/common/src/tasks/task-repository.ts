import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { TaskData, TaskStatus } from './task-schema.js';

/** Every SQL statement on `tasks`. Status writes are guarded so a final status never changes. */

export interface Task {
  id: number;
  status: TaskStatus;
  data: TaskData;
  attempts: number;
  lastError: string | null;
  idempotencyKey: string | null;
  createdAt: Date;
  updatedAt: Date;
  dispatchedAt: Date | null;
  finishedAt: Date | null;
}

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

interface TaskRow extends RowDataPacket {
  id: number;
  status: TaskStatus;
  data: TaskData | string;
  attempts: number;
  last_error: string | null;
  idempotency_key: string | null;
  created_at: Date;
  updated_at: Date;
  dispatched_at: Date | null;
  finished_at: Date | null;
}

/** MySQL returns JSON columns parsed; MariaDB (where JSON is LONGTEXT) returns the text. */
function parseData(data: TaskData | string): TaskData {
  return typeof data === 'string' ? (JSON.parse(data) as TaskData) : data;
}

function toTask(row: TaskRow): Task {
  return {
    id: Number(row.id),
    status: row.status,
    data: parseData(row.data),
    attempts: row.attempts,
    lastError: row.last_error,
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    dispatchedAt: row.dispatched_at,
    finishedAt: row.finished_at,
  };
}

export class DuplicateIdempotencyKeyError extends Error {
  constructor(readonly key: string) {
    super(`a task with Idempotency-Key ${key} already exists`);
  }
}

export async function insertTask(pool: Pool, data: TaskData, idempotencyKey: string | null = null): Promise<number> {
  try {
    const [result] = await pool.execute<ResultSetHeader>('INSERT INTO tasks (data, idempotency_key) VALUES (?, ?)', [
      JSON.stringify(data),
      idempotencyKey,
    ]);
    return result.insertId;
  } catch (err) {
    if (idempotencyKey !== null && (err as { code?: string }).code === 'ER_DUP_ENTRY') {
      throw new DuplicateIdempotencyKeyError(idempotencyKey);
    }
    throw err;
  }
}

/** A task to insert; see insertTasks. */
export interface NewTask {
  data: TaskData;
  idempotencyKey: string | null;
}

/** What became of one task of insertTasks: its id, or why its INSERT failed. */
export type InsertOutcome = { id: number } | { error: Error };

const TRANSACTION_RETRIES = 3;

function isRetryableTransactionError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

interface AutoIncrement {
  /** Whether the ids of one multi-row INSERT are consecutive (innodb_autoinc_lock_mode 0 or 1). */
  consecutive: boolean;
  /** auto_increment_increment: the distance between consecutive ids. */
  step: number;
}

const autoIncrementByPool = new WeakMap<Pool, Promise<AutoIncrement>>();

/** The server's auto-increment settings, read once per pool. */
function autoIncrementOf(pool: Pool): Promise<AutoIncrement> {
  let known = autoIncrementByPool.get(pool);
  if (!known) {
    known = pool
      .query<RowDataPacket[]>('SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step')
      .then(([[row]]) => ({ consecutive: Number(row?.mode) <= 1, step: Number(row?.step ?? 1) }));
    known.catch(() => autoIncrementByPool.delete(pool));
    autoIncrementByPool.set(pool, known);
  }
  return known;
}

/**
 * Inserts several tasks with one commit — one log flush — for all of them, and tells each its
 * own id. Where the server hands out consecutive ids for a multi-row INSERT (MariaDB's default
 * innodb_autoinc_lock_mode 1) and no task carries an Idempotency-Key, that is one statement;
 * otherwise one transaction with an INSERT per task, in which a task whose Idempotency-Key is
 * taken gets a DuplicateIdempotencyKeyError as its outcome while the others are inserted all
 * the same. Any other error fails the whole batch (after retrying a transaction the server
 * rolled back for a deadlock). One task alone is a plain INSERT.
 */
export async function insertTasks(pool: Pool, tasks: NewTask[]): Promise<InsertOutcome[]> {
  if (tasks.length === 0) return [];
  const single = tasks.length === 1 ? tasks[0] : undefined;
  if (single) {
    try {
      return [{ id: await insertTask(pool, single.data, single.idempotencyKey) }];
    } catch (err) {
      if (err instanceof DuplicateIdempotencyKeyError) return [{ error: err }];
      throw err;
    }
  }
  if (tasks.every((t) => t.idempotencyKey === null)) {
    const { consecutive, step } = await autoIncrementOf(pool);
    if (consecutive) {
      const [result] = await pool.query<ResultSetHeader>('INSERT INTO tasks (data) VALUES ?', [
        tasks.map((t) => [JSON.stringify(t.data)]),
      ]);
      return tasks.map((_, i) => ({ id: result.insertId + i * step }));
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(pool, async (connection) => {
        const outcomes: InsertOutcome[] = [];
        for (const task of tasks) {
          try {
            const [result] = await connection.execute<ResultSetHeader>(
              'INSERT INTO tasks (data, idempotency_key) VALUES (?, ?)',
              [JSON.stringify(task.data), task.idempotencyKey],
            );
            outcomes.push({ id: result.insertId });
          } catch (err) {
            // A duplicate key undoes that one statement only; the transaction goes on.
            if (task.idempotencyKey === null || (err as { code?: string }).code !== 'ER_DUP_ENTRY') throw err;
            outcomes.push({ error: new DuplicateIdempotencyKeyError(task.idempotencyKey) });
          }
        }
        return outcomes;
      });
    } catch (err) {
      if (attempt >= TRANSACTION_RETRIES || !isRetryableTransactionError(err)) throw err;
    }
  }
}

export async function getTask(pool: Pool, id: number): Promise<Task | null> {
  const [rows] = await pool.execute<TaskRow[]>('SELECT * FROM tasks WHERE id = ?', [id]);
  return rows[0] ? toTask(rows[0]) : null;
}

export async function getTaskByIdempotencyKey(pool: Pool, key: string): Promise<Task | null> {
  const [rows] = await pool.execute<TaskRow[]>('SELECT * FROM tasks WHERE idempotency_key = ?', [key]);
  return rows[0] ? toTask(rows[0]) : null;
}

async function inTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection();
  try {
    await connection.beginTransaction();
    const result = await work(connection);
    await connection.commit();
    return result;
  } catch (err) {
    await connection.rollback().catch(() => undefined);
    throw err;
  } finally {
    connection.release();
  }
}

interface DispatchRow extends RowDataPacket {
  id: number;
  data: TaskData | string;
  attempts: number;
  last_error: string | null;
}

/**
 * `id IN (…)` for the ids of a batch, with each run of consecutive ids written as a range:
 * `(id BETWEEN ? AND ? OR … OR id IN (?))`. A batch's ids are mostly consecutive (tasks are
 * claimed in id order), and the database finds a range with one index descent where a list
 * of 1,000 ids takes 1,000 (about a quarter of the CPU of a batch's UPDATE). Matches exactly
 * the ids given: a range holds only ids that are all in the batch.
 */
export function idsCondition(ids: readonly number[]): { sql: string; params: unknown[] } {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const ranges: string[] = [];
  const params: unknown[] = [];
  const singles: number[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === (sorted[j] as number) + 1) j++;
    if (j > i) {
      ranges.push('id BETWEEN ? AND ?');
      params.push(sorted[i], sorted[j]);
    } else {
      singles.push(sorted[i] as number);
    }
    i = j + 1;
  }
  if (singles.length > 0) {
    ranges.push('id IN (?)');
    params.push(singles);
  }
  return { sql: ranges.length > 0 ? `(${ranges.join(' OR ')})` : 'FALSE', params };
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

function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
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

/* ---- Operators: listing, counting, redriving ---- */

export interface ListTasksOptions {
  status?: TaskStatus;
  limit: number;
  /** Keyset cursor: only tasks with an id below this one (the listing is newest first). */
  after?: number;
}

/** Tasks newest first (by id), optionally of one status; a page of `limit` after the cursor. */
export async function listTasks(pool: Pool, { status, limit, after }: ListTasksOptions): Promise<Task[]> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (status !== undefined) {
    where.push('status = ?');
    params.push(status);
  }
  if (after !== undefined) {
    where.push('id < ?');
    params.push(after);
  }
  const [rows] = await pool.query<TaskRow[]>(
    `SELECT * FROM tasks ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    [...params, limit],
  );
  return rows.map(toTask);
}

/** How many tasks have each status (every status present, 0 when none). */
export async function countByStatus(pool: Pool): Promise<Record<TaskStatus, number>> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT status, COUNT(*) AS n FROM tasks GROUP BY status');
  const counts: Record<TaskStatus, number> = { pending: 0, processing: 0, completed: 0, failed: 0 };
  for (const row of rows) counts[row.status as TaskStatus] = Number(row.n);
  return counts;
}

/** The status of each of `ids` that exists. */
export async function getStatuses(pool: Pool, ids: number[]): Promise<Map<number, TaskStatus>> {
  if (ids.length === 0) return new Map();
  const [rows] = await pool.query<RowDataPacket[]>('SELECT id, status FROM tasks WHERE id IN (?)', [ids]);
  return new Map(rows.map((r) => [Number(r.id), r.status as TaskStatus]));
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

export interface MinuteCounts {
  /** Start of the minute (UTC). */
  minute: Date;
  completed: number;
  failed: number;
}

/**
 * Tasks that finished (completed, or recorded failed) in each of the `minutes` minutes up to
 * and including the one holding `now`, oldest first; minutes without any count 0.
 */
export async function finishedPerMinute(pool: Pool, minutes: number, now: number): Promise<MinuteCounts[]> {
  const last = Math.floor(now / 60_000);
  const first = last - minutes + 1;
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT minute, completed, failed FROM tasks_finished_per_minute WHERE minute BETWEEN ? AND ?',
    [first, last],
  );
  const series: MinuteCounts[] = [];
  for (let m = first; m <= last; m++) series.push({ minute: new Date(m * 60_000), completed: 0, failed: 0 });
  for (const row of rows) {
    const bucket = series[Number(row.minute) - first];
    if (bucket) {
      bucket.completed = Number(row.completed);
      bucket.failed = Number(row.failed);
    }
  }
  return series;
}
