import { isDatabaseUnavailable, isRedisUnavailable } from '@tasks/common';

/**
 * What is unavailable when `err` says a store cannot be reached or cannot take writes now;
 * null for any other error. For MySQL: a lost connection, no writable primary among a group's
 * members, a read-only answer (a failover or a switchover under way), a lock held elsewhere, or
 * a transaction the server rolled back.
 */
export function unavailableStore(err: unknown): 'database' | 'Redis' | null {
  if (isRedisUnavailable(err)) return 'Redis';
  if (isDatabaseUnavailable(err)) return 'database';
  return null;
}
