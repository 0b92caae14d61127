import { once } from 'node:events';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { RedisServer } from '../../../../test/faults/support/redis-server.js';
import { createLogger } from '../../src/logger.js';
import { createRedis } from '../../src/redis/client.js';

/**
 * The services' Redis client (createRedis) on a plain REDIS_URL whose server is demoted to a
 * replica while the connection stays open (an old primary rejoining after a failover, or a
 * name still pointing at it): a write fails with READONLY, and the client reconnects to look
 * for a primary. Among the fault tests: it runs real Redis servers of its own.
 */

let primary: RedisServer;
let other: RedisServer;
beforeEach(async () => {
  primary = await RedisServer.start();
  other = await RedisServer.start();
});
afterEach(async () => {
  await primary.stop();
  await other.stop();
});

it('a client whose server is demoted to a replica is told READONLY, and reconnects', async () => {
  const logger = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');
  const client = createRedis({ REDIS_URL: primary.url }, logger, 'test-demoted');
  try {
    await client.set('probe', '1');
    const reconnecting = once(client, 'reconnecting', { signal: AbortSignal.timeout(5_000) });

    const admin = primary.client();
    await admin.replicaof('127.0.0.1', String(other.port));
    admin.disconnect();

    await expect(client.lpush('task_queue', 'x')).rejects.toThrow(/^READONLY /);
    await reconnecting;
  } finally {
    client.disconnect();
  }
});
