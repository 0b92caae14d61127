import { isDatabaseUnavailable, isRedisUnavailable } from '@tasks/common';

/**
 * What is unavailable when `err` says a store cannot take the work now; null for any other
 * error. The database is unavailable when it cannot be reached, refuses writes for now
 * (read-only, a primary that lost its group), a row lock stayed held past the lock wait, or
 * it rolled the transaction back: a retry shortly may succeed, so the client is told 503.
 */
export function unavailableStore(err: unknown): 'database' | 'Redis' | null {
  if (isRedisUnavailable(err)) return 'Redis';
  if (isDatabaseUnavailable(err)) return 'database';
  return null;
}
