import { EVENTS, type ReadinessReport } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openPlainRedis } from '../support/redis.js';
import { FaultEnv } from './support/fault-env.js';
import { RedisServer } from './support/redis-server.js';

let f: FaultEnv;
let other: RedisServer;
beforeEach(async () => {
  f = await FaultEnv.create();
  other = await RedisServer.start();
});
afterEach(async () => {
  await f.cleanup();
  await other.stop();
});

// That the services' Redis client then reconnects to look for a primary is the store's own
// test: packages/common/test/faults/redis-readonly.test.ts.
it('a plain REDIS_URL whose server is demoted to a replica: /readyz turns 503 naming READONLY, and writes are refused READONLY', async () => {
  const api = await f.start('task-insert');
  const port = api.lines.find((l) => l.event === EVENTS.apiListening)?.port;
  const readyz = async () => {
    const res = await fetch(`http://127.0.0.1:${String(port)}/readyz`);
    return { status: res.status, body: (await res.json()) as ReadinessReport };
  };
  expect((await readyz()).status).toBe(200);

  const client = openPlainRedis({ REDIS_URL: f.redis.url });
  try {
    await client.set(`${f.t.config.KEY_PREFIX}probe`, '1');

    // The server becomes a replica while every connection to it stays open, as an old
    // primary does when it rejoins after a failover.
    const admin = f.redis.client();
    await admin.replicaof('127.0.0.1', String(other.port));
    admin.disconnect();

    const notReady = await readyz();
    expect(notReady.status).toBe(503);
    const check = notReady.body.checks.redis;
    expect(check.ok ? '' : check.error).toMatch(/^READONLY /);
    await expect(client.lpush(f.t.keys.tasks.ready, 'x')).rejects.toThrow(/^READONLY /);
  } finally {
    client.disconnect();
    const admin = f.redis.client();
    await admin.replicaof('NO', 'ONE');
    admin.disconnect();
  }
});
