import { createLogger } from '@tasks/common';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../../../test/support/wait.js';
import { closeRedis, createRedis, dropConnection, type Redis } from '../src/redis/client.js';

/**
 * A stop must not wait on a Redis that does not answer. A client that lost its server waits to
 * reconnect, with commands queued for when it does; dropping or closing it fails them at once.
 */

const logger = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');
/** Nothing listens on port 1. */
const UNREACHABLE = 'redis://127.0.0.1:1';

let client: Redis | null = null;
afterEach(() => {
  client?.disconnect();
  client = null;
});

/** A client like a blocking one (its commands wait through any number of reconnections), waiting to reconnect. */
async function waitingToReconnect(): Promise<Redis> {
  client = createRedis({ REDIS_URL: UNREACHABLE }, logger, 'test-unreachable', { maxRetriesPerRequest: null });
  const waiting = client;
  await until(async () => waiting.status === 'reconnecting', 5_000, 5);
  return waiting;
}

/** How `command` settles within `ms`: its error's message, 'resolved', or 'pending'. */
async function outcome(command: Promise<unknown>, ms: number): Promise<string> {
  const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('pending'), ms));
  const settled = command.then(
    () => 'resolved',
    (err: Error) => err.message,
  );
  return Promise.race([settled, timeout]);
}

describe('a Redis client waiting to reconnect', () => {
  it('fails its queued commands at once when dropped', async () => {
    const redis = await waitingToReconnect();
    const queued = redis.get('key');
    dropConnection(redis);
    expect(await outcome(queued, 1_000)).toBe('Connection is closed.');
    expect(redis.status).toBe('end');
  });

  it('is closed at once, without waiting for a reconnection to say goodbye', async () => {
    const redis = await waitingToReconnect();
    const queued = redis.get('key');
    const started = performance.now();
    await closeRedis(redis);
    expect(performance.now() - started).toBeLessThan(100);
    expect(await outcome(queued, 1_000)).toBe('Connection is closed.');
  });
});
