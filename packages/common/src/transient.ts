import { isDatabaseUnavailable } from './mysql/errors.js';

/**
 * Errors that mean "Redis cannot be reached or cannot take writes right now" (down, restarting,
 * loading, a replica or a failing-over cluster), as opposed to a bad command or value.
 */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  // (A refused or reset socket is isConnectionError's: a command on a lost Redis connection
  // fails with one of these instead.)
  // ioredis's own: retries used up, no node of a cluster, no sentinel.
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  if (
    /^(Connection is closed|Stream isn't writeable|None of startup nodes is available|All sentinels are unreachable)/.test(
      err.message,
    )
  ) {
    return true;
  }
  // A server that is up but cannot serve the write now: loading, a replica, failing over, busy, full.
  return /^(READONLY|LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|BUSY|NOREPLICAS|OOM)\b/.test(err.message);
}

/**
 * Errors worth retrying as they are: a store unreachable, read-only or failing over, a lock
 * held elsewhere, or a transaction the server rolled back. Anything else is caused by what was
 * written, and retrying would fail again.
 */
export function isTransientError(err: unknown): boolean {
  return isDatabaseUnavailable(err) || isRedisUnavailable(err);
}
