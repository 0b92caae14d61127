/**
 * What a MySQL error means for the caller, in one place: the database cannot take the work
 * right now (retry later), the transaction was rolled back and may run again at once, or the
 * credentials are wrong (no retry will help). Anything else is caused by the statement or its
 * values.
 */

interface MysqlErrorShape {
  code?: string;
  errno?: number;
  fatal?: boolean;
}

function shape(err: unknown): MysqlErrorShape {
  return (err ?? {}) as MysqlErrorShape;
}

/**
 * Not the server's: the code of the error the Database fails with while none of the members
 * MYSQL_URL lists is a writable primary (a failover under way, see mysql/primary.ts). No
 * statement was sent; like a connection that could not be made, it passes once one is found.
 */
export const NO_WRITABLE_PRIMARY = 'ER_NO_WRITABLE_PRIMARY';

/** Socket and protocol failures: the connection is gone (or never came). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_QUERY_INTERRUPTED',
  'ER_SERVER_GONE_ERROR',
  'ER_CANT_CONNECT_TO_SERVER',
  NO_WRITABLE_PRIMARY,
]);

/** The connection is lost or could not be made: nothing is known of a statement in flight. */
export function isConnectionError(err: unknown): boolean {
  const { code, fatal } = shape(err);
  return fatal === true || (code !== undefined && CONNECTION_CODES.has(code));
}

/**
 * The server refuses writes for now: `read_only` / `super_read_only` (1290), as a Group
 * Replication secondary, a demoted primary or a server in maintenance answers; a primary that
 * lost its group refuses the commit (3100). Another server (the new primary) may take it.
 */
export function isReadOnlyError(err: unknown): boolean {
  const { errno } = shape(err);
  return errno === 1290 || errno === 3100;
}

/**
 * The server refused the statement before running it because it is read-only (1290): nothing
 * changed, so it may run again at once on the primary (3100 is not one: it comes at the
 * commit, whose outcome elsewhere in the group is not known).
 */
export function isRefusedAsReadOnly(err: unknown): boolean {
  return shape(err).errno === 1290;
}

/**
 * The server rolled the transaction back and it may run again at once: a deadlock (1213), or a
 * Group Replication certification conflict (3101).
 */
export function isRolledBack(err: unknown): boolean {
  const { errno } = shape(err);
  return errno === 1213 || errno === 3101;
}

/**
 * A lock wait timed out (1205): a row the statement needs is held by another transaction,
 * perhaps of a process that stopped answering. Only the statement was rolled back; the
 * transaction helper rolls back the rest.
 */
export function isLockWaitTimeout(err: unknown): boolean {
  return shape(err).errno === 1205;
}

/**
 * The database cannot do this now, but may shortly: unreachable, read-only, failing over, a
 * lock held elsewhere, or a transaction rolled back. Retry; never count it against a task.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return isConnectionError(err) || isReadOnlyError(err) || isRolledBack(err) || isLockWaitTimeout(err);
}

/**
 * Wrong credentials or a missing privilege: access denied for the user (1045), to the
 * database (1044), to a table or column (1142, 1143), or for an operation (1227); an
 * authentication method the server refuses (1251, 2059). Retrying cannot help: the setting
 * must change.
 */
const ACCESS_ERRNOS = new Set([1044, 1045, 1142, 1143, 1227, 1251, 1698, 2059]);

export function isAccessDenied(err: unknown): boolean {
  const { errno } = shape(err);
  return errno !== undefined && ACCESS_ERRNOS.has(errno);
}
