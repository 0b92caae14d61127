import { createContext, loadConfig } from '@tasks/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPlainRedis } from '../support/redis.js';
import { drainThroughFailover } from './support/failover-drain.js';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';
import { type KitUnavailable, RedisKit, warnNotTested } from './support/redis-kit.js';

const TASKS = 20_000;

let kit: RedisKit | KitUnavailable;
let f: FaultEnv | null = null;
beforeAll(async () => {
  kit = await RedisKit.start('sentinel');
});
afterAll(async () => {
  await f?.cleanup();
  if (kit instanceof RedisKit) await kit.release();
});

it('Redis Sentinel: SIGKILL of the primary mid-drain of 20,000 tasks: every task final, none stranded, no final status changed, no service restarted; the old primary back as a replica answers READONLY and is not ready (passes with a NOT TESTED banner where the redis-kit cannot run)', async () => {
  if (!(kit instanceof RedisKit)) return warnNotTested('the Redis Sentinel failover drain', kit);
  const sentinel = kit;
  const { sentinels, name } = sentinel.sentinels;
  f = await FaultEnv.onRedis({ REDIS_SENTINELS: sentinels, REDIS_SENTINEL_NAME: name });
  const env = f;
  const run = await drainThroughFailover(env, TASKS, TASKS / 10, () => sentinel.kill());
  console.log(`[faults] sentinel failover: ${JSON.stringify({ ...run, readiness: run.readiness.status })}`);

  // The failover hit the drain while work was still on its way.
  expect(run.completedAfterFailover).toBeLessThan(TASKS);
  expect(run.settled).toBe(true);
  const counts = await env.counts('Redis Sentinel failover mid-drain');
  expect(counts).toMatchObject({ tasks: TASKS, ...NOTHING_LOST });
  expect(counts.completed + counts.failed).toBe(TASKS);
  for (const service of env.services) expect(service.running, `${service.name} is still running`).toBe(true);
  expect(run.readiness).toMatchObject({ status: 200, body: { ready: true } });

  // The killed primary comes back as a replica of the new one. A store pointed at it by a
  // plain REDIS_URL is told READONLY: not ready. (That the services' client then reconnects to
  // look for a primary is the store's own test: packages/common/test/faults/redis-readonly.test.ts.)
  await sentinel.restore();
  const { REDIS_SENTINELS: _sentinels, REDIS_SENTINEL_NAME: _name, ...plainEnv } = env.t.env;
  const staleUrl = `redis://${run.failover.old}`;
  const stale = createContext(loadConfig({ ...plainEnv, REDIS_URL: staleUrl }), 'test-stale', { logger: env.t.logger });
  const staleClient = openPlainRedis({ REDIS_URL: staleUrl });
  try {
    const report = await stale.store.readiness();
    expect(report.ready).toBe(false);
    expect(report.checks.redis.ok ? '' : report.checks.redis.error).toMatch(/^READONLY /);
    await expect(staleClient.lpush(env.t.keys.tasks.ready, 'x')).rejects.toThrow(/^READONLY /);
  } finally {
    staleClient.disconnect();
    await stale.close();
  }
  // Through the sentinels, the services write to the new primary.
  const res = await fetch(`http://127.0.0.1:${run.healthPort}/readyz`);
  expect(res.status).toBe(200);
});
