import type { Logger } from '@tasks/common';
import type { Database } from '@tasks/common/internal';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { openPool, resetDatabase } from './database.js';
import { pidListeningOn } from './processes.js';
import { progress } from './progress.js';
import { type BenchSettings, DEFAULT_MYSQL_URLS } from './settings.js';

/** One MySQL or MariaDB server the database figures are measured on. */
export interface DatabaseServer {
  /** `MariaDB 10.11.19` or `MySQL 9.7.4`: the name of its column and rows. */
  label: string;
  kind: 'mariadb' | 'mysql';
  version: string;
  url: string;
  /** The server process (found by its listening port), for its CPU time; null when not found. */
  pid: number | null;
  /** A pool on the bench database, for the bench's own reads; open from resolveServers to closeServers. */
  pool: Database;
  /** Whether performance_schema is on: then each drain records where the server spent its time. */
  performanceSchema: boolean;
  /** Settings that explain its figures (durability, binary log, buffer pool), as the server reports them. */
  variables: Record<string, string>;
}

/** A server that was asked for (or is a default) and did not answer. */
export interface MissingServer {
  url: string;
  error: string;
}

const VARIABLES = [
  'innodb_flush_log_at_trx_commit',
  'sync_binlog',
  'log_bin',
  'binlog_format',
  'binlog_row_image',
  'innodb_buffer_pool_size',
  'innodb_autoinc_lock_mode',
  'innodb_flush_method',
  'innodb_doublewrite',
  'innodb_change_buffering',
  'innodb_redo_log_capacity',
  'innodb_log_file_size',
  'performance_schema',
  'transaction_isolation',
  'tx_isolation',
];

async function describe(url: string): Promise<{ version: string; variables: Record<string, string> }> {
  const parsed = new URL(url);
  parsed.pathname = '/';
  const connection = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: 3_000 });
  try {
    const [[row]] = await connection.query<RowDataPacket[]>('SELECT VERSION() AS v');
    const [rows] = await connection.query<RowDataPacket[]>('SHOW GLOBAL VARIABLES WHERE Variable_name IN (?)', [
      VARIABLES,
    ]);
    const variables: Record<string, string> = {};
    for (const r of rows) variables[String(r.Variable_name)] = String(r.Value);
    return { version: String(row?.v ?? 'unknown'), variables };
  } finally {
    await connection.end();
  }
}

function labelOf(version: string): { kind: 'mariadb' | 'mysql'; label: string } {
  const number = /^\d+\.\d+\.\d+/.exec(version)?.[0] ?? version;
  return /mariadb/i.test(version)
    ? { kind: 'mariadb', label: `MariaDB ${number}` }
    : { kind: 'mysql', label: `MySQL ${number}` };
}

/**
 * Connects to every server of the settings. A server named in BENCH_MYSQL_URLS must answer; of
 * the defaults, one that does not (MySQL on 3307 is started by hand) is left out and returned
 * as missing, for the bench to say so loudly.
 */
export async function resolveServers(
  settings: BenchSettings,
  logger: Logger,
): Promise<{ servers: DatabaseServer[]; missing: MissingServer[] }> {
  const servers: DatabaseServer[] = [];
  const missing: MissingServer[] = [];
  for (const url of settings.mysqlUrls) {
    let described: Awaited<ReturnType<typeof describe>>;
    try {
      described = await describe(url);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (!settings.defaultServers) throw new Error(`${url} does not answer: ${error}`);
      missing.push({ url, error });
      continue;
    }
    const { kind, label } = labelOf(described.version);
    if (servers.some((s) => s.label === label)) {
      throw new Error(`two servers are both ${label}: give each server of BENCH_MYSQL_URLS once`);
    }
    await resetDatabase(url, logger);
    servers.push({
      label,
      kind,
      version: described.version,
      url,
      pid: pidListeningOn(Number(new URL(url).port || 3306)),
      pool: openPool(url, logger),
      performanceSchema: described.variables.performance_schema === 'ON',
      variables: described.variables,
    });
  }
  if (servers.length === 0) {
    throw new Error(`no MySQL or MariaDB server answers: ${missing.map((m) => `${m.url} (${m.error})`).join('; ')}`);
  }
  return { servers, missing };
}

/** The loud lines for the default servers that did not answer (empty when all did). */
export function missingServerBanner(missing: MissingServer[]): string[] {
  return missing.map(
    (m) =>
      `!!! ${m.url} could not be reached (${m.error}): its figures are MISSING from this run. ` +
      (m.url === DEFAULT_MYSQL_URLS[1]
        ? 'Start it with ../shared/mysql-real/start.sh (from the project root) and run again.'
        : ''),
  );
}

export function announceMissing(missing: MissingServer[]): void {
  for (const line of missingServerBanner(missing)) progress(line);
}

export async function closeServers(servers: DatabaseServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.pool.end()));
}

/** The target a figure must meet on this server: `byKind` picks the MariaDB or MySQL value. */
export function targetFor<T>(server: DatabaseServer, byKind: { mariadb: T; mysql: T }): T {
  return byKind[server.kind];
}
