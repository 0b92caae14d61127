import { isConnectionError } from './mysql/pool.js';
import { isRetryableTransactionError } from './mysql/transaction.js';

/**
 * Errors that mean "Redis cannot be reached or cannot take writes right now" (down, restarting,
 * loading, a replica or a failing-over cluster), as opposed to a bad command or value.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: string }).code;
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE') return true;
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  return /^(Connection is closed|Stream isn't writeable|READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS|OOM)/.test(
    err.message,
  );
}

/**
 * Errors worth retrying as they are: a store unreachable or busy, or a transaction the server
 * rolled back. Anything else is caused by what was written, and retrying would fail again.
 */
export function isTransientError(err: unknown): boolean {
  return isConnectionError(err) || isRetryableTransactionError(err) || isRedisUnavailable(err);
}
