import mysql, { type PoolConnection, type PoolOptions } from 'mysql2/promise';
import type { Logger } from '../logger.js';

/**
 * Connections whose sessions are pinned: the options every connection to MySQL is made with,
 * and the session statement it runs before anything else.
 */

export interface DatabaseSettings {
  /** MYSQL_URL: one server, or the members of a Group Replication group (see mysql-url.ts). */
  url: string;
  size: number;
  connectTimeoutMs: number;
  /** How long a statement waits for a row lock another session holds before it fails (seconds). */
  lockWaitTimeoutS: number;
}

/**
 * The SQL mode every session runs in, whatever the server's global mode: strict (a value the
 * column cannot hold is an error, not a silent truncation), and without NO_BACKSLASH_ESCAPES
 * or ANSI_QUOTES, so the driver's escaping of values (backslashes, single quotes) means to the
 * server exactly what it means to the driver.
 */
export const SESSION_SQL_MODE =
  'STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';

/**
 * What every session pins before its first statement: the character set the driver escapes
 * for, the SQL mode above, UTC, and a bounded wait for row locks (a lock held by a process that
 * stopped answering costs a statement seconds, not the server's default of minutes).
 */
export function sessionStatement(settings: DatabaseSettings): string {
  return mysql.format("SET NAMES utf8mb4, SESSION sql_mode = ?, time_zone = '+00:00', innodb_lock_wait_timeout = ?", [
    SESSION_SQL_MODE,
    settings.lockWaitTimeoutS,
  ]);
}

export function connectionOptions(settings: DatabaseSettings, url = settings.url): PoolOptions {
  return {
    uri: url,
    connectTimeout: settings.connectTimeoutMs,
    enableKeepAlive: true,
    timezone: 'Z',
    charset: 'utf8mb4',
    supportBigNumbers: true,
    bigNumberStrings: false,
  };
}

/** The session of a connection the pool just opened, pinned (see sessionStatement), or why not. */
type Pinning = Promise<void>;

/**
 * A pool of connections whose every session is pinned before it runs anything: a connection
 * whose pinning fails is destroyed and never handed out, so no statement ever runs under the
 * server's own `sql_mode` or character set. Connections that break (server restart, KILL) are
 * dropped by the pool and replaced on the next query, so callers recover by retrying.
 */
export function pinnedPool(settings: DatabaseSettings, url: string, logger: Logger, multipleStatements: boolean) {
  const pool = mysql.createPool({
    ...connectionOptions(settings, url),
    multipleStatements,
    connectionLimit: settings.size,
    maxIdle: settings.size,
    idleTimeout: 60_000,
    queueLimit: 0,
  });
  const pinnings = new WeakMap<object, Pinning>();
  const session = sessionStatement(settings);
  // The callback pool emits `connection` for a new connection before handing it to anyone, so
  // the session statement is queued ahead of every other statement on it.
  pool.pool.on('connection', (core) => {
    pinnings.set(
      core,
      new Promise<void>((resolve, reject) => {
        core.query(session, (err: Error | null) => (err ? reject(err) : resolve()));
      }),
    );
    core.on('error', (err: Error) => logger.warn({ err }, 'mysql connection error'));
  });
  return {
    pool,
    async getConnection(): Promise<PoolConnection> {
      const connection = await pool.getConnection();
      const core = (connection as unknown as { connection: object }).connection;
      try {
        await pinnings.get(core);
      } catch (err) {
        connection.destroy();
        throw err;
      }
      return connection;
    },
  };
}

export type PinnedPool = ReturnType<typeof pinnedPool>;
