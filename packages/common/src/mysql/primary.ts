import mysql, { type RowDataPacket } from 'mysql2/promise';
import { NO_WRITABLE_PRIMARY } from './errors.js';
import { hostNames, type MysqlHost, type MysqlTarget, withDatabase } from './mysql-url.js';

/**
 * Finding the writable primary among the members MYSQL_URL lists (a Group Replication group,
 * InnoDB Cluster's engine, in single-primary mode; or any servers of which one takes writes).
 * There is no router: each member is asked, and the writable one is the one whose `read_only`
 * and `super_read_only` are both off. A secondary has `super_read_only` on; so does a primary
 * that is demoted in a switchover, one that left the group in error, and a new primary until
 * it has applied what the old one committed. MariaDB has no `super_read_only`; the statement
 * below asks for it without failing there.
 */

/** Longest one probe may take (connect, ask, answer), whatever DB_CONNECT_TIMEOUT_MS allows. */
export const PROBE_TIMEOUT_MS = 1_000;

export const READ_ONLY_VARIABLES = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('read_only', 'super_read_only')";

/** The read-only settings that are on in the rows of READ_ONLY_VARIABLES (`super_read_only=ON`), or null. */
export function readOnlySettings(rows: RowDataPacket[]): string | null {
  const on = rows
    .filter((row) => !['OFF', '0'].includes(String(row.Value).toUpperCase()))
    .map((row) => `${String(row.Variable_name)}=${String(row.Value)}`);
  return on.length > 0 ? on.join(', ') : null;
}

/**
 * None of the members is a writable primary now: each is down, unreachable or read-only (an
 * election or a switchover under way, or the group lost its majority). No statement was sent.
 * Its code makes it a connection error (mysql/errors.ts): transient, the API answers 503.
 */
export class NoWritablePrimaryError extends Error {
  readonly code = NO_WRITABLE_PRIMARY;

  constructor(
    /** The members, as `h1:3306, h2:3306, h3:3306`. */
    readonly hosts: string,
    /** What each member answered (`h2:3306 is read-only (super_read_only=ON)`). */
    readonly findings: string[],
  ) {
    super(`no writable primary among ${hosts}${findings.length > 0 ? ` (${findings.join('; ')})` : ''}`);
    this.name = 'NoWritablePrimaryError';
  }
}

/** Why a probe did not find `host` writable, in a few words. */
function probeFailure(host: MysqlHost, err: unknown): string {
  const { code, message } = (err ?? {}) as { code?: string; message?: string };
  if (code === 'ECONNREFUSED') return `${host.name} refused the connection`;
  if (code === 'ETIMEDOUT' || code === 'PROBE_TIMEOUT') return `${host.name} did not answer in time`;
  return `${host.name}: ${code ?? ''}${code && message ? ' ' : ''}${message ?? String(err)}`;
}

/**
 * Asks `host` whether it takes writes: null when it does, or why not. Never throws, and
 * settles within `timeoutMs`: a member that does not answer is as good as down.
 */
export async function probe(host: MysqlHost, timeoutMs: number): Promise<string | null> {
  let connection: mysql.Connection | null = null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('no answer'), { code: 'PROBE_TIMEOUT' })), timeoutMs);
  });
  const ask = async () => {
    // Without the database: the probe needs none, and ensureDatabase probes before it exists.
    connection = await mysql.createConnection({ uri: withDatabase(host.url, ''), connectTimeout: timeoutMs });
    const [rows] = await connection.query<RowDataPacket[]>({ sql: READ_ONLY_VARIABLES, timeout: timeoutMs });
    return rows;
  };
  const asked = ask();
  asked.catch(() => undefined);
  try {
    const readOnly = readOnlySettings(await Promise.race([asked, timeout]));
    return readOnly ? `${host.name} is read-only (${readOnly})` : null;
  } catch (err) {
    return probeFailure(host, err);
  } finally {
    clearTimeout(timer);
    // A connection that came after the timeout is closed when it comes.
    void asked.then(
      () => (connection as mysql.Connection | null)?.destroy(),
      () => undefined,
    );
  }
}

/**
 * The writable member: every member is probed at once, and the first to say it takes writes
 * wins, without waiting for members that do not answer (single-primary Group Replication has
 * one writable member; with several, any is as good). Throws a NoWritablePrimaryError saying
 * what each member answered when none takes writes.
 */
export function findPrimary(target: MysqlTarget, timeoutMs: number): Promise<MysqlHost> {
  return new Promise((resolve, reject) => {
    const findings: (string | null)[] = [];
    let answered = 0;
    target.hosts.forEach((host, i) => {
      void probe(host, timeoutMs).then((finding) => {
        if (finding === null) resolve(host);
        findings[i] = finding;
        if (++answered < target.hosts.length || findings.includes(null)) return;
        reject(new NoWritablePrimaryError(hostNames(target), findings as string[]));
      });
    });
  });
}
