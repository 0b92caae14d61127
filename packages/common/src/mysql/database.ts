import mysql, {
  type Connection,
  type FieldPacket,
  type PoolConnection,
  type QueryOptions,
  type QueryResult,
  type RowDataPacket,
} from 'mysql2/promise';
import type { Logger } from '../logger.js';
import { isConnectionError, isReadOnlyError, isRefusedAsReadOnly } from './errors.js';
import { type MysqlHost, type MysqlTarget, parseMysqlUrl, withDatabase } from './mysql-url.js';
import {
  connectionOptions,
  type DatabaseSettings,
  type PinnedPool,
  pinnedPool,
  sessionStatement,
} from './pinned-pool.js';
import { findPrimary, PROBE_TIMEOUT_MS, READ_ONLY_VARIABLES, readOnlySettings } from './primary.js';

export { type DatabaseSettings, SESSION_SQL_MODE } from './pinned-pool.js';

/**
 * The pools of one server: one statement per query, and the private multi-statement one
 * (opened on first use).
 */
interface Server {
  host: MysqlHost;
  single: PinnedPool;
  multi: PinnedPool | null;
  /** Connections handed out and not yet given back (counted only when following a primary). */
  lent: number;
  /** No longer the primary: its pools end once every connection lent is back. */
  retired: boolean;
  ended: Promise<void> | null;
}

/**
 * While no member is a writable primary, a search's answer stands this long: queries in the
 * meantime fail at once with it, and the members are asked again after.
 */
export const PRIMARY_SEARCH_INTERVAL_MS = 250;

/**
 * The door to MySQL: connections whose sessions are pinned (see SESSION_SQL_MODE), for one
 * statement per query, and a private pool that accepts several statements per query, used only
 * by the transaction helper (mysql/transaction.ts), which formats every statement from its
 * placeholders.
 *
 * MYSQL_URL names one server, or the members of a Group Replication group (a host list, see
 * mysql/mysql-url.ts). With one server the pools are opened on it and never change: nothing
 * is probed, and every call goes straight to them as it always has. With a list, the Database
 * follows the writable primary: the first query finds it (mysql/primary.ts) and opens the
 * pools on it. A connection of those pools that is lost or cannot be made (the primary died)
 * or is told "read-only" (1290: demoted in a switchover; 3100: it left its group) makes the
 * Database look for the primary again, once for all the queries that fail together, and swap
 * in pools on the one it finds; the old pools end once their connections are given back.
 * Queries that come meanwhile wait for the search. While no member takes writes, they fail at
 * once with a NoWritablePrimaryError (a connection error: transient) naming the members, and
 * /readyz is not ready.
 *
 * What is run again on the primary found, and what is not: a connection that could not be
 * made sent nothing, and a statement refused as read-only changed nothing, so `query` and
 * `execute` make the connection or run the statement there once more, and the transaction
 * helper reruns a refused transaction likewise. A statement whose connection was lost in
 * flight is never run again here: its commit may have happened, and only its caller can tell
 * (the API answers 503; a retry with the same Idempotency-Key finds the task if it was stored).
 */
export class Database {
  private readonly target: MysqlTarget;
  /** The primary's pools; null while it is being looked for. */
  private server: Server | null;
  /** Servers no longer the primary whose pools have not ended yet. */
  private readonly retired = new Set<Server>();
  private search: Promise<Server> | null = null;
  /** The last search that found no primary, and when it ended. */
  private miss: { error: unknown; at: number } | null = null;
  private closed = false;

  constructor(
    private readonly settings: DatabaseSettings,
    private readonly logger: Logger,
  ) {
    this.target = parseMysqlUrl(settings.url);
    const [only] = this.target.hosts;
    this.server = this.target.hosts.length === 1 && only ? this.open(only) : null;
  }

  /** Whether MYSQL_URL lists several members, of which the Database follows the writable primary. */
  get followsPrimary(): boolean {
    return this.target.hosts.length > 1;
  }

  /** The member the pools are on now (`host:port`), or null while the primary is being looked for. */
  get primary(): string | null {
    return this.server?.host.name ?? null;
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
    for (let attempt = 1; ; attempt++) {
      const connection = await this.getConnection();
      try {
        return await use(connection);
      } catch (err) {
        // Refused as read-only: nothing ran, and the primary is being looked for again.
        if (attempt === 1 && this.followsPrimary && isRefusedAsReadOnly(err)) continue;
        throw err;
      } finally {
        connection.release();
      }
    }
  }

  /** A pinned connection (one statement per query), to release when done. */
  async getConnection(): Promise<PoolConnection> {
    if (!this.followsPrimary) return (this.server as Server).single.getConnection();
    return (await this.connect((server) => server.single)).connection;
  }

  /**
   * A pinned connection that accepts several statements per query: for the transaction helper
   * alone, which never pastes a value into SQL text.
   */
  async multiStatementConnection(): Promise<PoolConnection> {
    if (!this.followsPrimary) {
      const server = this.server as Server;
      server.multi ??= pinnedPool(this.settings, server.host.url, this.logger, true);
      return server.multi.getConnection();
    }
    const { connection } = await this.connect((server) => {
      server.multi ??= pinnedPool(this.settings, server.host.url, this.logger, true);
      return server.multi;
    });
    return connection;
  }

  /**
   * A connection of `pool` on the primary. One that cannot be made (the primary died while the
   * pool was idle) sent nothing: the primary is looked for, and the connection made there.
   */
  private async connect(pool: (server: Server) => PinnedPool): Promise<{ server: Server; connection: PoolConnection }> {
    for (let attempt = 1; ; attempt++) {
      const server = this.server ?? (await this.searchPrimary());
      try {
        return { server, connection: await this.lend(server, pool(server)) };
      } catch (err) {
        if (attempt === 1 && isConnectionError(err)) continue;
        throw err;
      }
    }
  }

  /**
   * Whether the database takes work now, for /readyz: `SELECT 1` on a single server; with a
   * host list, the primary must answer that it is still writable (a primary demoted by a
   * planned switchover answers reads as before), or the primary is looked for again.
   */
  async ping(timeoutMs: number): Promise<void> {
    if (!this.followsPrimary) {
      await this.query({ sql: 'SELECT 1', timeout: timeoutMs });
      return;
    }
    const { server, connection } = await this.connect((primary) => primary.single);
    try {
      const [rows] = await connection.query<RowDataPacket[]>({ sql: READ_ONLY_VARIABLES, timeout: timeoutMs });
      const readOnly = readOnlySettings(rows);
      if (readOnly) {
        const err = new Error(`${server.host.name} is read-only now (${readOnly}): looking for the writable primary`);
        this.lost(server, err);
        throw err;
      }
    } finally {
      connection.release();
    }
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
    this.closed = true;
    const servers = new Set([...this.retired, ...(this.server ? [this.server] : [])]);
    // One server keeps its (ended) pools, which refuse what comes after as they always have.
    if (this.followsPrimary) this.server = null;
    await Promise.all([...servers].map((server) => this.endPools(server)));
  }

  private open(host: MysqlHost): Server {
    return {
      host,
      single: pinnedPool(this.settings, host.url, this.logger, false),
      multi: null,
      lent: 0,
      retired: false,
      ended: null,
    };
  }

  /**
   * The primary's pools, found by one search however many queries wait for it. While no
   * member takes writes, the search's error is the answer for PRIMARY_SEARCH_INTERVAL_MS.
   */
  private searchPrimary(): Promise<Server> {
    if (this.closed) return Promise.reject(new Error('the database connections are closed'));
    if (this.search) return this.search;
    if (this.miss && Date.now() - this.miss.at < PRIMARY_SEARCH_INTERVAL_MS) return Promise.reject(this.miss.error);
    const timeoutMs = Math.min(this.settings.connectTimeoutMs, PROBE_TIMEOUT_MS);
    const search = findPrimary(this.target, timeoutMs).then(
      (host) => {
        if (this.closed) throw new Error('the database connections are closed');
        const server = this.open(host);
        this.server = server;
        if (this.miss) this.logger.info({ primary: host.name }, 'MySQL: writes go to the primary found');
        else this.logger.debug({ primary: host.name }, 'MySQL: writes go to the primary found');
        this.miss = null;
        return server;
      },
      (err: unknown) => {
        if (!this.miss) this.logger.warn({ err }, 'MySQL: no writable primary; looking again on the next query');
        this.miss = { error: err, at: Date.now() };
        throw err;
      },
    );
    this.search = search;
    search.then(
      () => this.searched(search),
      () => this.searched(search),
    );
    return search;
  }

  private searched(search: Promise<Server>): void {
    if (this.search === search) this.search = null;
  }

  /**
   * A connection of `server`, counted until it is given back, whose errors are watched: one
   * that says the primary is gone or demoted starts a search for the new one.
   */
  private async lend(server: Server, pool: PinnedPool): Promise<PoolConnection> {
    server.lent++;
    let connection: PoolConnection;
    try {
      connection = await pool.getConnection();
    } catch (err) {
      this.given(server);
      this.failed(server, err);
      throw err;
    }
    const watch =
      <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
      (...args: A): Promise<R> =>
        call.apply(connection, args).catch((err: unknown) => {
          this.failed(server, err);
          throw err;
        });
    const { query, execute, release, destroy } = connection;
    connection.query = watch(query as (...args: unknown[]) => Promise<never>) as typeof query;
    connection.execute = watch(execute as (...args: unknown[]) => Promise<never>) as typeof execute;
    let given = false;
    const giveBack = () => {
      if (given) return;
      given = true;
      this.given(server);
    };
    connection.release = () => {
      release.call(connection);
      giveBack();
    };
    connection.destroy = () => {
      destroy.call(connection);
      giveBack();
    };
    return connection;
  }

  private given(server: Server): void {
    server.lent--;
    if (server.retired && server.lent === 0) void this.endPools(server);
  }

  /** An error on `server`'s connection: a lost connection or a read-only answer means the primary moved. */
  private failed(server: Server, err: unknown): void {
    if (isConnectionError(err) || isReadOnlyError(err)) this.lost(server, err);
  }

  /** `server` is no longer taken for the primary: retire its pools and look for the primary. */
  private lost(server: Server, err: unknown): void {
    if (server !== this.server) return;
    this.server = null;
    server.retired = true;
    this.retired.add(server);
    if (server.lent === 0) void this.endPools(server);
    this.logger.warn(
      { primary: server.host.name, err },
      'MySQL: lost the primary or it refused a write; looking for the writable primary',
    );
    this.searchPrimary().catch(() => undefined);
  }

  private endPools(server: Server): Promise<void> {
    server.ended ??= Promise.all([server.single.pool.end(), server.multi?.pool.end()])
      .catch((err: unknown) => this.logger.debug({ err, primary: server.host.name }, 'MySQL: closing old pools'))
      .then(() => {
        this.retired.delete(server);
      });
    return server.ended;
  }
}

export function createDatabase(settings: DatabaseSettings, logger: Logger): Database {
  return new Database(settings, logger);
}

/** The URL of the server to connect to: MYSQL_URL's own, or with a host list, the writable primary's. */
async function serverUrl(settings: DatabaseSettings): Promise<string> {
  const target = parseMysqlUrl(settings.url);
  if (target.hosts.length === 1) return settings.url;
  return (await findPrimary(target, Math.min(settings.connectTimeoutMs, PROBE_TIMEOUT_MS))).url;
}

/** A single connection (the migrations'), its session pinned like the pools', on the primary. */
export async function openConnection(settings: DatabaseSettings): Promise<Connection> {
  const connection = await mysql.createConnection(connectionOptions(settings, await serverUrl(settings)));
  try {
    await connection.query(sessionStatement(settings));
  } catch (err) {
    connection.destroy();
    throw err;
  }
  return connection;
}

/** Creates the URL's database when it does not exist yet (a no-op when it does), on the primary. */
export async function ensureDatabase(settings: DatabaseSettings): Promise<void> {
  const { database } = parseMysqlUrl(settings.url);
  if (!database) return;
  const url = withDatabase(await serverUrl(settings), '');
  const connection = await openConnection({ ...settings, url });
  try {
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(database)}`);
  } finally {
    await connection.end();
  }
}
