import type { Connection, ResultSetHeader } from 'mysql2/promise';
import type { Statement, Trip } from '../mysql/transaction.js';
import { insertStatement, isDelayed, type NewTask } from './insert-tasks.js';
import { countingTrip } from './status-counts.js';

/**
 * A task inserted on a caller's own MySQL connection, in the caller's own transaction (a
 * transactional outbox): the same row and the same counted status as the store's insert
 * (insertStatement, countingTrip), committed or rolled back with the caller's work. Nothing
 * announces it: the schedulers find it by their poll (POLL_INTERVAL_MS) once it is committed.
 *
 * The connection is the caller's, in whatever state the caller left it: its statements go
 * through the binary protocol (`execute`), so no value is ever escaped into the text whatever
 * the session's sql_mode (NO_BACKSLASH_ESCAPES, ANSI_QUOTES) or character set escaping rules;
 * times are MySQL's UTC clock, whatever the session's time zone. A connection outside a
 * transaction (autocommit) gets one of its own, so the task and its count commit together.
 */

/** What enqueue needs of a mysql2 promise connection (a Connection or a PoolConnection; not a Pool). */
export type CallerConnection = Pick<Connection, 'execute' | 'query'>;

/** The connections whose character set was found to be UTF-8. */
const checked = new WeakSet<CallerConnection>();

/** The server's status flag: a transaction is open on the session. */
const SERVER_STATUS_IN_TRANS = 1;

/** The character sets in which a client's text is what JSON in a utf8mb4 column holds. */
const UTF8_CLIENTS = new Set(['utf8mb4', 'utf8mb3', 'utf8']);

export class EnqueueError extends Error {}

/** A statement with values, by the binary protocol: its values are never escaped into its text. */
async function run(connection: CallerConnection, statement: Statement): Promise<unknown> {
  const [result] = await connection.execute(
    statement.sql,
    (statement.values ?? []) as Parameters<Connection['execute']>[1],
  );
  return result;
}

/** A statement without values (MySQL prepares no START TRANSACTION, COMMIT or ROLLBACK). */
async function plain(connection: CallerConnection, sql: string): Promise<unknown> {
  const [result] = await connection.query(sql);
  return result;
}

/** A task inserted by insertOnConnection: its id, and whether it waits for its due time. */
export interface Enqueued {
  id: number;
  status: 'pending' | 'delayed';
}

/** Inserts the task on `connection`. Commits with the caller's transaction, or at once outside one. */
export async function insertOnConnection(connection: CallerConnection, task: NewTask): Promise<Enqueued> {
  if (typeof (connection as { getConnection?: unknown }).getConnection === 'function') {
    throw new EnqueueError(
      'enqueue takes a connection (await pool.getConnection()), not a pool: its statements must share one session',
    );
  }
  if (!checked.has(connection)) {
    const [[charset]] = (await connection.query('SELECT @@character_set_client AS cs')) as [{ cs: string }[], unknown];
    if (!UTF8_CLIENTS.has(String(charset?.cs))) {
      throw new EnqueueError(
        `the connection's character set is ${charset?.cs}: enqueue needs a UTF-8 one (mysql2's default, utf8mb4)`,
      );
    }
    checked.add(connection);
  }
  const status = (await plain(connection, 'DO 0')) as ResultSetHeader;
  const own = (status.serverStatus & SERVER_STATUS_IN_TRANS) === 0;
  if (own) await plain(connection, 'START TRANSACTION');
  try {
    const trip: Trip = async (statements, options = {}) => {
      const results: unknown[] = [];
      for (const statement of statements) results.push(await run(connection, statement));
      if (options.commit && own) await plain(connection, 'COMMIT');
      return results;
    };
    const [inserted] = (await countingTrip(trip).trip([insertStatement([task], null)], { commit: true })) as [
      ResultSetHeader,
    ];
    return { id: inserted.insertId, status: isDelayed(task) ? 'delayed' : 'pending' };
  } catch (err) {
    if (own) await plain(connection, 'ROLLBACK').catch(() => undefined);
    throw err;
  }
}
