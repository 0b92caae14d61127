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
