import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { inTransaction, isRetryableTransactionError, TRANSACTION_RETRIES } from '../mysql/transaction.js';
import type { TaskData } from './task-schema.js';

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
