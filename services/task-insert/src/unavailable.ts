import { isDatabaseUnavailable, isRedisUnavailable } from '@tasks/common';

/** What is unavailable when `err` says a store cannot be reached; null for any other error. */
export function unavailableStore(err: unknown): 'database' | 'Redis' | null {
  if (isRedisUnavailable(err)) return 'Redis';
  if (isDatabaseUnavailable(err)) return 'database';
  return null;
}
