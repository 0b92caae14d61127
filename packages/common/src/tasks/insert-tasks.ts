import { randomBytes } from 'node:crypto';
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { isConnectionError } from '../mysql/pool.js';
import { isRetryableTransactionError, TRANSACTION_RETRIES } from '../mysql/transaction.js';
import type { TaskData } from './task-schema.js';

export class DuplicateIdempotencyKeyError extends Error {
  constructor(readonly key: string) {
    super(`a task with Idempotency-Key ${key} already exists`);
  }
}

/**
 * The database refused a task for what it holds (not for its key being taken): invalid JSON
 * text, a string the column's character set cannot hold, a value too long. `column` names the
 * column at fault when the server's message does.
 */
export class TaskRejectedError extends Error {
  constructor(
    readonly column: string | undefined,
    readonly reason: string,
  ) {
    super(`the database refused the task${column ? ` (column ${column})` : ''}: ${reason}`);
  }
}

/**
 * Server errors that mean "this row's values are not acceptable": bad NULL (1048), out of
 * range (1264), wrong value (1292, 1366), too long (1406), invalid JSON text (3140, 3144),
 * a CHECK constraint (MySQL 3819; MariaDB 4025, which also guards its JSON columns), a
 * parameter the column's character set cannot hold (3988, MySQL's binary protocol).
 */
const DATA_ERRNOS = new Set([1048, 1264, 1292, 1366, 1406, 3140, 3144, 3819, 3988, 4025]);

/** The column a data error names: `'tasks.data'`, `'idempotency_key'`, `` `db`.`tasks`.`idempotency_key` ``, ``CONSTRAINT `tasks.data` ``. */
const COLUMN_IN_MESSAGE = /column [`']?(?:[\w$]+[`']?\.[`']?)*([\w$]+)|CONSTRAINT `(?:[\w$]+\.)?([\w$]+)`/i;

function asRejection(err: unknown): TaskRejectedError | null {
  const { errno, message } = (err ?? {}) as { errno?: number; message?: string };
  if (errno === undefined || !DATA_ERRNOS.has(errno)) return null;
  const match = COLUMN_IN_MESSAGE.exec(message ?? '');
  return new TaskRejectedError(match?.[1] ?? match?.[2], message ?? `error ${errno}`);
}

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'ER_DUP_ENTRY';
}

/**
 * Inserts one task and returns its id. Throws DuplicateIdempotencyKeyError when its key is
 * taken, TaskRejectedError when the database refuses its values, and any other error as is.
 */
export async function insertTask(pool: Pool, data: TaskData, idempotencyKey: string | null = null): Promise<number> {
  try {
    // The text protocol, as the batch's INSERT: the server's errors then name the column at fault.
    const [result] = await pool.query<ResultSetHeader>('INSERT INTO tasks (data, idempotency_key) VALUES (?, ?)', [
      JSON.stringify(data),
      idempotencyKey,
    ]);
    return result.insertId;
  } catch (err) {
    if (idempotencyKey !== null && isDuplicateKey(err)) throw new DuplicateIdempotencyKeyError(idempotencyKey);
    throw asRejection(err) ?? err;
  }
}

/** A task to insert; see insertTasks. */
export interface NewTask {
  data: TaskData;
  idempotencyKey: string | null;
}

/** What became of one task of insertTasks: its id, or why it was not inserted. */
export type InsertOutcome = { id: number } | { error: Error };

function failAll(tasks: NewTask[], err: unknown): InsertOutcome[] {
  const error = err instanceof Error ? err : new Error(String(err));
  return tasks.map(() => ({ error }));
}

/** One task alone: a plain INSERT, run again after a deadlock. */
async function insertOne(pool: Pool, task: NewTask): Promise<InsertOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { id: await insertTask(pool, task.data, task.idempotencyKey) };
    } catch (err) {
      if (attempt < TRANSACTION_RETRIES && isRetryableTransactionError(err)) continue;
      return failAll([task], err)[0]!;
    }
  }
}

/** A number of 53 random bits: exact as a JavaScript number and as a double on the server. */
function batchMarker(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 11n);
}

/**
 * Inserts several tasks with one statement — one commit, one log flush — and tells each task
 * its own id, in any `innodb_autoinc_lock_mode`. With MySQL's default (2, interleaved) the ids
 * of one multi-row INSERT need not be consecutive, but within the statement they increase in
 * row order, the first is LAST_INSERT_ID(), and every row carries the batch's random marker in
 * `insert_batch`: reading the rows from that id on with that marker, in id order, gives each
 * task its id (a short range scan of the primary key, stopped after the batch's last row).
 *
 * A batch never shares one fate. When its INSERT fails for anything but a lost connection
 * (a taken Idempotency-Key, values the database refuses, a deadlock), nothing was inserted,
 * and its halves are inserted apart, down to single tasks: only the task at fault gets an
 * error (DuplicateIdempotencyKeyError, TaskRejectedError, or the server's), the others their
 * ids. A lost connection is every task's outcome, since the statement may or may not have
 * committed. One task alone is a plain INSERT.
 */
export async function insertTasks(pool: Pool, tasks: NewTask[]): Promise<InsertOutcome[]> {
  if (tasks.length === 0) return [];
  if (tasks.length === 1) return [await insertOne(pool, tasks[0]!)];
  const marker = batchMarker();
  let firstId: number;
  try {
    const [result] = await pool.query<ResultSetHeader>(
      'INSERT INTO tasks (data, idempotency_key, insert_batch) VALUES ?',
      [tasks.map((t) => [JSON.stringify(t.data), t.idempotencyKey, marker])],
    );
    firstId = result.insertId;
  } catch (err) {
    if (isConnectionError(err)) return failAll(tasks, err);
    const half = Math.ceil(tasks.length / 2);
    return [...(await insertTasks(pool, tasks.slice(0, half))), ...(await insertTasks(pool, tasks.slice(half)))];
  }
  try {
    const [rows] = await pool.query<RowDataPacket[]>(
      'SELECT id FROM tasks WHERE id >= ? AND insert_batch = ? ORDER BY id LIMIT ?',
      [firstId, marker, tasks.length],
    );
    if (rows.length !== tasks.length) {
      throw new Error(`inserted ${tasks.length} tasks from id ${firstId} but found ${rows.length} of them`);
    }
    return rows.map((row) => ({ id: Number(row.id) }));
  } catch (err) {
    // The tasks are inserted; only their ids are unknown. Inserting them again would double them.
    return failAll(tasks, err);
  }
}
