import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '../logger.js';

export type { Redis } from 'ioredis';

/**
 * A Redis client that reconnects by itself after an outage (with capped backoff) and logs
 * its connection errors instead of crashing the process.
 */
export function createRedis(url: string, logger: Logger, name: string, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: name,
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
    ...options,
  });
  let lastLogged = 0;
  redis.on('error', (err: Error) => {
    // An outage produces an error per reconnect attempt: log at most one a second.
    const now = Date.now();
    if (now - lastLogged < 1_000) return;
    lastLogged = now;
    logger.warn({ err, client: name }, 'redis connection error');
  });
  return redis;
}
