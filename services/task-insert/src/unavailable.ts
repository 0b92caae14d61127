import { isConnectionError } from '@tasks/common';

/** ioredis's own errors for a Redis it cannot reach: retries used up, or no node, sentinel or connection. */
const REDIS_UNREACHABLE_NAMES = new Set(['MaxRetriesPerRequestError', 'ClusterAllFailedError']);
const REDIS_UNREACHABLE_MESSAGES = [
  /^Connection is closed\.?$/,
  /^Stream isn't writeable/,
  /^None of startup nodes is available/,
  /^All sentinels are unreachable/,
  // Replies of a server that is up but cannot serve yet: loading its data, or without a primary.
  /^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/,
];

/** Whether `err` means Redis cannot be reached or cannot serve right now, as opposed to a bad command. */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return REDIS_UNREACHABLE_NAMES.has(err.name) || REDIS_UNREACHABLE_MESSAGES.some((m) => m.test(err.message));
}

/** What is unavailable when `err` says a store cannot be reached; null for any other error. */
export function unavailableStore(err: unknown): 'database' | 'Redis' | null {
  if (isRedisUnavailable(err)) return 'Redis';
  if (isConnectionError(err)) return 'database';
  return null;
}
