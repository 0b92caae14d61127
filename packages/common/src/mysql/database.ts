import mysql, {
  type Connection,
  type FieldPacket,
  type PoolConnection,
  type PoolOptions,
  type QueryOptions,
  type QueryResult,
} from 'mysql2/promise';
import type { Logger } from '../logger.js';

export interface DatabaseSettings {
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
function sessionStatement(settings: DatabaseSettings): string {
  return mysql.format("SET NAMES utf8mb4, SESSION sql_mode = ?, time_zone = '+00:00', innodb_lock_wait_timeout = ?", [
    SESSION_SQL_MODE,
    settings.lockWaitTimeoutS,
  ]);
}

function connectionOptions(settings: DatabaseSettings): PoolOptions {
  return {
    uri: settings.url,
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
function pinnedPool(settings: DatabaseSettings, logger: Logger, multipleStatements: boolean) {
  const pool = mysql.createPool({
    ...connectionOptions(settings),
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

/**
 * The door to MySQL: connections whose sessions are pinned (see SESSION_SQL_MODE), for one
 * statement per query, and a private pool that accepts several statements per query, used only
 * by the transaction helper (mysql/transaction.ts), which formats every statement from its
 * placeholders.
 */
export class Database {
  private readonly single: ReturnType<typeof pinnedPool>;
  private multi: ReturnType<typeof pinnedPool> | null = null;

  constructor(
    private readonly settings: DatabaseSettings,
    private readonly logger: Logger,
  ) {
    this.single = pinnedPool(settings, logger, false);
  }

  /** One statement, its values escaped into the text (the session pins how they are read). */
  query<T extends QueryResult>(sql: string | QueryOptions, values?: unknown[]): Promise<[T, FieldPacket[]]> {
    return this.withConnection((connection) => connection.query<T>(sql as string, values as never));
  }

  /** One prepared statement, its values sent apart from the text. */
  execute<T extends QueryResult>(sql: string, values?: unknown[]): Promise<[T, FieldPacket[]]> {
    return this.withConnection((connection) => connection.execute<T>(sql, values as never));
  }

  private async withConnection<R>(use: (connection: PoolConnection) => Promise<R>): Promise<R> {
    const connection = await this.single.getConnection();
    try {
      return await use(connection);
    } finally {
      connection.release();
    }
  }

  /** A pinned connection (one statement per query), to release when done. */
  getConnection(): Promise<PoolConnection> {
    return this.single.getConnection();
  }

  /**
   * A pinned connection that accepts several statements per query: for the transaction helper
   * alone, which never pastes a value into SQL text.
   */
  multiStatementConnection(): Promise<PoolConnection> {
    this.multi ??= pinnedPool(this.settings, this.logger, true);
    return this.multi.getConnection();
  }

  /**
   * Stops the statement the session `threadId` runs (KILL QUERY), on a connection opened for
   * that alone: a pool whose every connection waits on the server can still stop one. The
   * statement fails with ER_QUERY_INTERRUPTED and its session stays open; a session that runs
   * nothing is left as it is. The connection is closed after `timeoutMs` at most.
   */
  async stopStatement(threadId: number, timeoutMs: number): Promise<void> {
    const opening = openConnection({ ...this.settings, connectTimeoutMs: timeoutMs });
    const killing = opening.then(async (connection) => {
      try {
        await connection.query('KILL QUERY ?', [threadId]);
      } finally {
        connection.destroy();
      }
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A server that does not answer: the connection goes (a destroyed one may never settle its query).
        opening.then(
          (connection) => connection.destroy(),
          () => undefined,
        );
        reject(new Error(`KILL QUERY ${threadId} was not answered within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([killing, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `sql` with its `?` placeholders filled in, escaped as the pinned sessions read it. */
  format(sql: string, values: unknown[]): string {
    return mysql.format(sql, values as never);
  }

  async end(): Promise<void> {
    await Promise.all([this.single.pool.end(), this.multi?.pool.end()]);
  }
}

export function createDatabase(settings: DatabaseSettings, logger: Logger): Database {
  return new Database(settings, logger);
}

/** A single connection (the migrations'), its session pinned like the pools'. */
export async function openConnection(settings: DatabaseSettings): Promise<Connection> {
  const connection = await mysql.createConnection(connectionOptions(settings));
  try {
    await connection.query(sessionStatement(settings));
  } catch (err) {
    connection.destroy();
    throw err;
  }
  return connection;
}

/** Creates the URL's database when it does not exist yet (a no-op when it does). */
export async function ensureDatabase(settings: DatabaseSettings): Promise<void> {
  const parsed = new URL(settings.url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) return;
  parsed.pathname = '/';
  const connection = await openConnection({ ...settings, url: parsed.toString() });
  try {
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(database)}`);
  } finally {
    await connection.end();
  }
}
