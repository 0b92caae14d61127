import { isConnectionError, isReadOnlyError, isRedisUnavailable } from '@tasks/common';

/**
 * What is unavailable when `err` says a store cannot be reached or cannot take writes now;
 * null for any other error. For MySQL: a lost connection, no writable primary among a group's
 * members, or a read-only answer (a failover or a switchover under way).
 */
export function unavailableStore(err: unknown): 'database' | 'Redis' | null {
  if (isRedisUnavailable(err)) return 'Redis';
  if (isConnectionError(err) || isReadOnlyError(err)) return 'database';
  return null;
}
