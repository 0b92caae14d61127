import mysql, { type Pool, type PoolOptions } from 'mysql2/promise';
import type { Logger } from '../logger.js';

export type { Pool } from 'mysql2/promise';

export interface PoolSettings {
  url: string;
  size: number;
  connectTimeoutMs: number;
}

function baseOptions(settings: PoolSettings): PoolOptions {
  return {
    uri: settings.url,
    connectTimeout: settings.connectTimeoutMs,
    enableKeepAlive: true,
    timezone: 'Z',
    supportBigNumbers: true,
    bigNumberStrings: false,
  };
}

/**
 * A connection pool whose sessions run in UTC. Connections that break (server restart,
 * KILL) are dropped by the pool and replaced on the next query, so callers recover from
 * an outage by retrying.
 */
export function createPool(settings: PoolSettings, logger: Logger): Pool {
  const pool = mysql.createPool({
    ...baseOptions(settings),
    // A transaction sends its statements several to a query (inTransactionTrips); every one is
    // formatted from its placeholders.
    multipleStatements: true,
    connectionLimit: settings.size,
    maxIdle: settings.size,
    idleTimeout: 60_000,
    queueLimit: 0,
  });
  // The callback-style pool underneath emits the events.
  const events = pool.pool;
  events.on('connection', (connection) => {
    connection.query("SET time_zone = '+00:00'", (err: Error | null) => {
      if (err) logger.warn({ err }, 'could not set the session time zone');
    });
    connection.on('error', (err: Error) => logger.warn({ err }, 'mysql connection error'));
  });
  return pool;
}

/** Creates the URL's database when it does not exist yet (a no-op when it does). */
export async function ensureDatabase(url: string, connectTimeoutMs: number): Promise<void> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) return;
  parsed.pathname = '/';
  const connection = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: connectTimeoutMs });
  try {
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(database)}`);
  } finally {
    await connection.end();
  }
}

/** A single connection for the migrations, which run one statement at a time. */
export function createMigrationConnection(settings: PoolSettings) {
  return mysql.createConnection(baseOptions(settings));
}

/** Errors that mean "the database cannot be reached right now", as opposed to a bad query. */
export function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: string } | null)?.code;
  const fatal = (err as { fatal?: boolean } | null)?.fatal;
  return (
    fatal === true ||
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'ETIMEDOUT' ||
    code === 'EHOSTUNREACH' ||
    code === 'ENOTFOUND' ||
    code === 'EPIPE' ||
    code === 'PROTOCOL_CONNECTION_LOST' ||
    code === 'PROTOCOL_SEQUENCE_TIMEOUT' ||
    code === 'ER_CON_COUNT_ERROR' ||
    code === 'ER_SERVER_SHUTDOWN' ||
    code === 'ER_CONNECTION_KILLED' ||
    code === 'ER_QUERY_INTERRUPTED' ||
    code === 'ER_SERVER_GONE_ERROR' ||
    code === 'ER_CANT_CONNECT_TO_SERVER'
  );
}
