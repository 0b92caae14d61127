import type { Database } from './database.js';
import { isRefusedAsReadOnly, isRolledBack } from './errors.js';
import { losesCommit, markOutcomeUnknown, queryUntilStopped, TransactionStoppedError, untilStopped } from './stop.js';

/** Most times a transaction runs when the server keeps rolling it back (deadlock, certification conflict). */
export const TRANSACTION_RETRIES = 3;

/** One SQL statement and the values of its `?` placeholders. */
export interface Statement {
  sql: string;
  values?: unknown[];
}

/**
 * Sends statements of a transaction to the server, several in one round trip, and resolves
 * with one result per statement. `commit` sends COMMIT in the same round trip.
 */
export type Trip = (statements: Statement[], options?: { commit?: boolean }) => Promise<unknown[]>;

export interface TransactionOptions {
  /**
   * Stops the transaction when it aborts (see mysql/stop.ts): before a trip, nothing more is
   * sent and it is rolled back; during one, its statement is stopped on the server. It then
   * throws TransactionStoppedError when nothing was written, and is not run again.
   */
  signal?: AbortSignal;
}

/**
 * The one way to run a transaction. `work` sends its statements a round trip at a time, as
 * many in each as it passes to `trip`: START TRANSACTION goes with the first trip, COMMIT with
 * the trip marked `{ commit: true }` (or on its own after `work`, when none was). Each
 * statement is formatted from its placeholders, never pasted as text, on a connection of the
 * private multi-statement pool.
 *
 * Row locks live from the statement that takes them to the COMMIT: a transaction whose writes
 * and COMMIT go in one trip holds no lock while the process is away (paused, partitioned,
 * collecting garbage); one that must read before it writes holds the read's locks for one
 * turn of the caller. Every round trip saved is also time a caller's batch is not waiting.
 *
 * The server stops at the first statement that fails; the transaction is then rolled back
 * (before the connection returns to the pool) and that error thrown, as when `work` throws.
 * A transaction the server rolled back (a deadlock, a certification conflict) runs again at
 * once, up to TRANSACTION_RETRIES times in all, so `work` must do nothing but its statements.
 * So does one that a member refused as read-only (1290) when the Database follows a primary
 * among several (a switchover demoted the member it was on): nothing of it was committed, and
 * the next run waits for the Database to find the new primary. A transaction whose connection
 * was lost, or whose commit the server could not complete (3100, a primary that left its
 * group), is never run again here: it may have been committed, and only its caller can tell.
 * A connection lost while the COMMIT was on it leaves the outcome unknown, and its error says
 * so (isCommitOutcomeUnknown).
 */
export async function transaction<T>(
  db: Database,
  work: (trip: Trip) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await once(db, work, options.signal);
    } catch (err) {
      const again = isRolledBack(err) || (db.followsPrimary && isRefusedAsReadOnly(err));
      if (attempt >= TRANSACTION_RETRIES || !again || options.signal?.aborted) throw err;
    }
  }
}

/** The statements as one transaction in a single round trip; one result per statement. */
export function oneTrip(db: Database, statements: Statement[], options: TransactionOptions = {}): Promise<unknown[]> {
  return transaction(db, (trip) => trip(statements, { commit: true }), options);
}

async function once<T>(db: Database, work: (trip: Trip) => Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) throw new TransactionStoppedError();
  const connection = await untilStopped(db.multiStatementConnection(), signal, (late) => late.release());
  let started = false;
  let committed = false;
  const trip: Trip = async (statements, options = {}) => {
    if (committed) throw new Error('the transaction was committed already');
    if (signal?.aborted) throw new TransactionStoppedError();
    const sql = [
      ...(started ? [] : ['START TRANSACTION']),
      ...statements.map((s) => (s.values ? db.format(s.sql, s.values) : s.sql)),
      ...(options.commit ? ['COMMIT'] : []),
    ];
    const skip = started ? 0 : 1;
    started = true;
    let results: unknown;
    try {
      results = await queryUntilStopped(db, connection, sql.join(';\n'), signal);
    } catch (err) {
      if (options.commit && losesCommit(err)) markOutcomeUnknown(err);
      throw err;
    }
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
    if (started && !committed) await connection.query('ROLLBACK').catch(() => connection.destroy());
    throw err;
  } finally {
    connection.release();
  }
}
