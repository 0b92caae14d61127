import { randomBytes } from 'node:crypto';
import { Redis as PlainRedis } from 'ioredis';
import { afterEach, expect, inject, it } from 'vitest';
import { until } from '../../../test/support/wait.js';
import { createLogger } from '../src/logger.js';
import { closeRedis, createRedis, type Redis } from '../src/redis/client.js';
import { FakeSentinel } from './support/fake-sentinel.js';

/**
 * A client of the primary the sentinels name follows every failover the sentinels announce.
 * When an announcement arrives while the client is reconnecting and still asking the sentinels
 * where the primary is, that connection attempt is dropped; the client must then try again,
 * not give up for good and answer "Connection is closed" to every later command.
 */

const logger = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');
const redisUrl = new URL(inject('redisUrl'));
const primary = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379) };

let sentinel: FakeSentinel | null = null;
let client: Redis | null = null;
afterEach(async () => {
  if (client) await closeRedis(client);
  await sentinel?.close();
  client = null;
  sentinel = null;
});

it('a failover announced while the client asks the sentinels where the primary is: the client reconnects, and answers again', async () => {
  sentinel = await FakeSentinel.start(primary);
  const fake = sentinel;
  const name = `test-sentinel-${randomBytes(4).toString('hex')}`;
  client = createRedis(
    {
      REDIS_URL: `redis://${redisUrl.username ? `${redisUrl.username}:${redisUrl.password}@` : ''}localhost`,
      REDIS_SENTINELS: [{ host: '127.0.0.1', port: fake.port }],
      REDIS_SENTINEL_NAME: 'primary',
      REDIS_CLUSTER_NODES: undefined,
      REDIS_SENTINEL_PASSWORD: undefined,
    },
    logger,
    name,
  );
  const sentinelClient = client;
  const statuses: string[] = [];
  sentinelClient.on('end', () => statuses.push('end'));
  expect(await sentinelClient.ping()).toBe('PONG');
  await until(async () => fake.subscribed > 0, 5_000, 10);

  // The connection to the primary drops; the client reconnects and asks the sentinel, which
  // holds its answer until a failover has been announced.
  fake.hold();
  const asked = fake.nextQuestion();
  const admin = new PlainRedis(redisUrl.toString());
  try {
    const list = await admin.client('LIST');
    const id = String(list)
      .split('\n')
      .find((line) => line.includes(` name=${name} `))
      ?.match(/^id=(\d+) /)?.[1];
    expect(id, `${name} in CLIENT LIST`).toBeDefined();
    await admin.client('KILL', 'ID', id as string);
  } finally {
    admin.disconnect();
  }
  await asked;
  fake.announceFailover();
  await until(async () => fake.subscribed === 0, 5_000, 10);
  fake.release();

  // The dropped attempt ended the client (the race happened)…
  await until(async () => statuses.includes('end'), 5_000, 10);
  // …and the client connects again by itself.
  await until(async () => (await sentinelClient.ping().catch(() => null)) === 'PONG', 10_000, 50);
  expect(sentinelClient.status).toBe('ready');
});
