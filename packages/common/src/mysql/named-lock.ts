import type { RowDataPacket } from 'mysql2/promise';
import type { Database } from './database.js';
import { isConnectionError } from './errors.js';

/**
 * A holder whose session has sent nothing for this many seconds while holding the lock has
 * stopped answering (paused, partitioned, a long pause for garbage collection): the work goes
 * ahead without the lock. A holder that works sends a statement every few milliseconds.
 */
export const NAMED_LOCK_SILENT_S = 2;

/** `<name>:<database>` for each database, as MySQL names a lock (at most 64 characters). */
const lockNames = new WeakMap<Database, Map<string, Promise<string>>>();

function lockName(db: Database, name: string): Promise<string> {
  let names = lockNames.get(db);
  if (!names) {
    names = new Map();
    lockNames.set(db, names);
  }
  let lock = names.get(name);
  if (!lock) {
    lock = db
      .query<RowDataPacket[]>("SELECT LEFT(CONCAT(?, ':', DATABASE()), 64) AS name", [name])
      .then(([[row]]) => String(row?.name));
    lock.catch(() => names?.delete(name));
    names.set(name, lock);
  }
  return lock;
}

/**
 * How long the lock's holder has been idle, from the server's list of sessions: MySQL's
 * performance_schema (its information_schema.PROCESSLIST is deprecated), MariaDB's
 * information_schema.PROCESSLIST (its performance_schema is off by default).
 */
const HOLDER_IDLE = {
  mysql: 'SELECT TIME AS idle FROM performance_schema.processlist WHERE ID = IS_USED_LOCK(?) AND COMMAND = ?',
  mariadb: 'SELECT TIME AS idle FROM information_schema.PROCESSLIST WHERE ID = IS_USED_LOCK(?) AND COMMAND = ?',
};
const holderIdleQuery = new WeakMap<Database, Promise<string>>();

function holderIdleSql(db: Database): Promise<string> {
  let sql = holderIdleQuery.get(db);
  if (!sql) {
    sql = db
      .query<RowDataPacket[]>("SELECT VERSION() LIKE '%MariaDB%' AS mariadb")
      .then(([[row]]) => (Number(row?.mariadb) === 1 ? HOLDER_IDLE.mariadb : HOLDER_IDLE.mysql));
    sql.catch(() => holderIdleQuery.delete(db));
    holderIdleQuery.set(db, sql);
  }
  return sql;
}

/**
 * Whether the lock's holder has sent nothing for NAMED_LOCK_SILENT_S. A holder this session
 * cannot see (another MySQL user, without the PROCESS privilege) counts as answering.
 */
async function holderSilent(db: Database, lock: string): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>(await holderIdleSql(db), [lock, 'Sleep']);
  return rows.some((row) => Number(row.idle) >= NAMED_LOCK_SILENT_S);
}

/**
 * Runs `work` holding the named lock `<name>:<database>` (MySQL GET_LOCK) when this process
 * can take it at once, and releases it after: among processes that try together, one does the
 * work and the others skip this turn (null). The lock is an optimisation, never the guarantee:
 * `work` must stay correct when it runs without it (`locked` false), because
 *
 * - a holder that stopped answering keeps the lock as long as its session lives (until the
 *   server's wait_timeout, hours): once its session has been silent for NAMED_LOCK_SILENT_S,
 *   `work` runs without the lock rather than every other process waiting for it;
 * - a lock lives on one server and does not survive a failover, so two may briefly hold it:
 *   with a Group Replication group (a multi-host MYSQL_URL), a holder's lock stays on the old
 *   primary (or dies with it) while another process takes the same name on the new one, and
 *   a holder's `work` may already run its statements on the new primary while its lock
 *   connection is still on the old one. Each caller says why its work stays exact then.
 *
 * A process that dies holding the lock loses it with its connection, and so does one whose
 * connection is lost: the lock is gone with the session, so a lost connection at the release
 * does not turn the work's result into a failure.
 */
export async function withNamedLock<T>(
  db: Database,
  name: string,
  work: (locked: boolean) => Promise<T>,
): Promise<T | null> {
  const lock = await lockName(db, name);
  const connection = await db.getConnection();
  try {
    const [[row]] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS locked', [lock]);
    if (Number(row?.locked) !== 1) {
      return (await holderSilent(db, lock)) ? await work(false) : null;
    }
    try {
      return await work(true);
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [lock]).catch((err: unknown) => {
        if (!isConnectionError(err)) throw err;
      });
    }
  } finally {
    connection.release();
  }
}
