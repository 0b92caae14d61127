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
export function inTransaction<T>(pool: Pool, work: (connection: PoolConnection) => Promise<T>): Promise<T> {
  return retried(() => once(pool, work));
}

/** Runs `transaction` again while the server rolls it back for a deadlock or a lock wait timeout, up to TRANSACTION_RETRIES times in all. */
async function retried<T>(transaction: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await transaction();
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
 * Sends statements of a transaction to the server, several in one round trip; see
 * inTransactionTrips. Resolves with one result per statement.
 */
export type Trip = (statements: Statement[], options?: { commit?: boolean }) => Promise<unknown[]>;

/**
 * Runs `work` in a transaction whose statements go to the server a round trip at a time, as
 * many statements in each as `work` passes to `trip` (the pool's connections accept several
 * statements per query; each is formatted from its placeholders, never pasted as text).
 * START TRANSACTION goes with the first trip, and COMMIT with the trip `work` marks
 * `{ commit: true }` (or on its own after `work`, when none did). Where a commit waits for a log
 * flush, every round trip saved is time a batch of the caller is not waiting.
 *
 * The server stops at the first statement that fails; the transaction is then rolled back
 * (before the connection returns to the pool) and that error thrown, as when `work` throws.
 * Deadlocks and lock wait timeouts run the whole of `work` again, as inTransaction does.
 */
export function inTransactionTrips<T>(pool: Pool, work: (trip: Trip) => Promise<T>): Promise<T> {
  return retried(() => tripsOnce(pool, work));
}

async function tripsOnce<T>(pool: Pool, work: (trip: Trip) => Promise<T>): Promise<T> {
  const connection = await pool.getConnection();
  let started = false;
  let committed = false;
  const trip: Trip = async (statements, options = {}) => {
    if (committed) throw new Error('the transaction was committed already');
    const sql = [
      ...(started ? [] : ['START TRANSACTION']),
      ...statements.map((s) => (s.values ? connection.format(s.sql, s.values) : s.sql)),
      ...(options.commit ? ['COMMIT'] : []),
    ];
    const skip = started ? 0 : 1;
    started = true;
    const [results] = await connection.query(sql.join(';\n'));
    committed = options.commit === true;
    if (statements.length === 0) return [];
    // A query of one statement answers with its result; of several, with one per statement.
    return sql.length === 1 ? [results] : (results as unknown[]).slice(skip, skip + statements.length);
  };
  try {
    const result = await work(trip);
    if (!committed) await trip([], { commit: true });
    return result;
  } catch (err) {
    if (started && !committed) await connection.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    connection.release();
  }
}

/** The statements as one transaction in a single round trip (see inTransactionTrips); one result per statement. */
export function transactionInOneTrip(pool: Pool, statements: Statement[]): Promise<unknown[]> {
  return inTransactionTrips(pool, (trip) => trip(statements, { commit: true }));
}
