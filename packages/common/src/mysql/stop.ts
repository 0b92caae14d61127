import type { PoolConnection } from 'mysql2/promise';
import type { Database } from './database.js';
import { isConnectionError } from './errors.js';

/**
 * Stopping a transaction at a deadline, and knowing what became of it. A statement the client
 * gives up on goes on at the server: a client that closes its connection while the statement
 * waits for a lock leaves it waiting, and it commits once the lock is granted. So a
 * transaction is stopped where it runs, on the server (KILL QUERY, from a connection of its
 * own), and its caller is told only what is known: it committed (the trip answered), it did
 * not (the server answered the stopped statement with an error: that statement and the COMMIT
 * after it never ran), or nobody knows (the connection was lost while the COMMIT was on it).
 */

/** How long a trip whose statement was stopped may take to answer before its connection is closed. */
export const STOP_GRACE_MS = 1_000;

/** The transaction was stopped before it committed: nothing of it was written. */
export class TransactionStoppedError extends Error {
  constructor(cause?: unknown) {
    super('the transaction was stopped before it committed: nothing of it was written', { cause });
    this.name = 'TransactionStoppedError';
  }
}

/**
 * The statement was stopped, but no answer came within STOP_GRACE_MS, so its connection was
 * closed: the server may still run it. A lost connection, as isConnectionError sees it.
 */
export class ConnectionAbandonedError extends Error {
  readonly fatal = true;
  readonly code = 'PROTOCOL_CONNECTION_LOST';

  constructor() {
    super(
      `the database did not answer within ${STOP_GRACE_MS} ms of stopping the statement; its connection was closed`,
    );
    this.name = 'ConnectionAbandonedError';
  }
}

const unknownOutcomes = new WeakSet<object>();

/** Records that `err` lost a transaction's connection while its COMMIT was on it. */
export function markOutcomeUnknown(err: unknown): void {
  if (typeof err === 'object' && err !== null) unknownOutcomes.add(err);
}

/**
 * Whether `err` lost a transaction's connection while its COMMIT was on it (sent, with no
 * answer yet): the transaction may or may not have committed, and only reading the database
 * again can tell.
 */
export function isCommitOutcomeUnknown(err: unknown): boolean {
  return typeof err === 'object' && err !== null && unknownOutcomes.has(err);
}

const ABORTED = Symbol('aborted');
const LATE = Symbol('late');

type Settled<T> = { value: T } | { error: unknown };

function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** Resolves once `signal` aborts (at once when it has); `dispose` removes its listener. */
function whenAborted(signal: AbortSignal): { aborted: Promise<typeof ABORTED>; dispose: () => void } {
  let listener: (() => void) | undefined;
  const aborted = new Promise<typeof ABORTED>((resolve) => {
    if (signal.aborted) return resolve(ABORTED);
    listener = () => resolve(ABORTED);
    signal.addEventListener('abort', listener, { once: true });
  });
  return { aborted, dispose: () => listener && signal.removeEventListener('abort', listener) };
}

/** Resolves after `ms`; `dispose` clears its timer. */
function after(ms: number): { late: Promise<typeof LATE>; dispose: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), ms);
  });
  return { late, dispose: () => clearTimeout(timer) };
}

/**
 * `promise`'s value, unless `signal` aborts first: then TransactionStoppedError, for work that
 * sends nothing the server could commit (a read, waiting for a connection). `onLate` gets the
 * value should it come after all.
 */
export async function untilStopped<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  onLate: (value: T) => void = () => undefined,
): Promise<T> {
  if (!signal) return promise;
  const { aborted, dispose } = whenAborted(signal);
  try {
    const first = await Promise.race([settle(promise), aborted]);
    if (first === ABORTED) {
      promise.then(onLate, () => undefined);
      throw new TransactionStoppedError();
    }
    if ('error' in first) throw first.error;
    return first.value;
  } finally {
    dispose();
  }
}

/**
 * Sends `sql` on `connection` and resolves with its results. Should `signal` abort before the
 * answer, the statement is stopped on the server (KILL QUERY from another connection), and the
 * answer awaited for STOP_GRACE_MS: results, when it completed all the same; its error, when
 * it lost its connection; TransactionStoppedError with the server's error as the cause, when
 * the server stopped it (the statements from the stopped one on, the COMMIT last, never ran).
 * Without an answer by then, the connection is closed and ConnectionAbandonedError thrown.
 */
export async function queryUntilStopped(
  db: Database,
  connection: PoolConnection,
  sql: string,
  signal: AbortSignal | undefined,
): Promise<unknown> {
  const answer = settle(connection.query(sql).then(([results]): unknown => results));
  let first: Settled<unknown> | typeof ABORTED;
  if (signal) {
    const { aborted, dispose } = whenAborted(signal);
    first = await Promise.race([answer, aborted]);
    dispose();
  } else {
    first = await answer;
  }
  if (first !== ABORTED) {
    if ('error' in first) throw first.error;
    return first.value;
  }
  // Should the KILL fail (the server is gone, a proxy that does not pass it on), the grace ends it.
  const killed = db.stopStatement(connection.threadId, STOP_GRACE_MS).then(
    () => true,
    () => false,
  );
  const { late, dispose } = after(STOP_GRACE_MS);
  const settled = await Promise.race([answer, late]);
  dispose();
  if (settled === LATE) {
    connection.destroy();
    throw new ConnectionAbandonedError();
  }
  // The statement may have ended before the KILL came: the session must not run another one
  // until the KILL is done, or it would stop that one instead. A KILL not known to be done
  // (it timed out) may still come: the connection is closed rather than used again.
  if (!(await killed)) connection.destroy();
  if (!('error' in settled)) return settled.value;
  const { fatal, errno } = (settled.error ?? {}) as { fatal?: boolean; errno?: number };
  // The server answered the statement with an error: it and what follows it did not run.
  if (fatal !== true && errno !== undefined) throw new TransactionStoppedError(settled.error);
  throw settled.error;
}

/**
 * Whether a trip's error loses its COMMIT's outcome: the connection was lost (or the statement
 * interrupted by someone else's KILL) while the COMMIT was sent and unanswered.
 */
export function losesCommit(err: unknown): boolean {
  return !(err instanceof TransactionStoppedError) && isConnectionError(err);
}
