import type { Pool, PoolConnection } from 'mysql2/promise';

export const TRANSACTION_RETRIES = 3;

/** A deadlock or lock wait timeout: the server rolled the transaction back, and it may simply be run again. */
export function isRetryableTransactionError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  return code === 'ER_LOCK_DEADLOCK' || code === 'ER_LOCK_WAIT_TIMEOUT';
}

/**
 * Runs `work` in a transaction on a connection of its own: committed if it resolves, rolled
 * back if it throws. A transaction the server rolled back for a deadlock or a lock wait
 * timeout is run again at once, up to TRANSACTION_RETRIES times in all: `work` must do nothing
 * but its statements (it may run more than once).
 */
export async function inTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(pool, work);
    } catch (err) {
      if (attempt >= TRANSACTION_RETRIES || !isRetryableTransactionError(err)) throw err;
    }
  }
}

async function once<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
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

/** One SQL statement and the values of its `?` placeholders. */
export interface Statement {
  sql: string;
  values?: unknown[];
}

/**
 * Runs `statements` as one transaction in a single round trip: START TRANSACTION, the
 * statements and COMMIT go to the server as one query (the pool's connections accept several
 * statements per query; each is formatted from its placeholders, never from raw text), and
 * come back as one result per statement. For transactions whose statements do not depend on
 * each other's results: where a commit waits for a log flush, every round trip saved is time
 * the caller's batch is not open to the next requests.
 *
 * The server stops at the first statement that fails; the transaction is then rolled back and
 * that statement's error thrown. Deadlocks and lock wait timeouts are run again as
 * inTransaction does.
 */
export async function transactionInOneTrip(pool: Pool, statements: Statement[]): Promise<unknown[]> {
  for (let attempt = 1; ; attempt++) {
    const connection = await pool.getConnection();
    try {
      const sql = [
        'START TRANSACTION',
        ...statements.map((s) => (s.values ? connection.format(s.sql, s.values) : s.sql)),
        'COMMIT',
      ].join(';\n');
      const [results] = await connection.query(sql);
      // One result for START TRANSACTION, then the statements', then COMMIT's.
      return (results as unknown[]).slice(1, 1 + statements.length);
    } catch (err) {
      await connection.query('ROLLBACK').catch(() => undefined);
      if (attempt >= TRANSACTION_RETRIES || !isRetryableTransactionError(err)) throw err;
    } finally {
      connection.release();
    }
  }
}
