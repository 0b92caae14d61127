import { once } from 'node:events';
import { checkReadiness, createRedis } from '@tasks/common';
import { afterAll, beforeAll, expect, it } from 'vitest';
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

  // The killed primary comes back as a replica of the new one. A client pointed at it by a
  // plain REDIS_URL is told READONLY: not ready, and it reconnects to look for a primary.
  await sentinel.restore();
  const stale = createRedis({ REDIS_URL: `redis://${run.failover.old}` }, env.t.ctx.logger, 'test-stale');
  try {
    const reconnecting = once(stale, 'reconnecting', { signal: AbortSignal.timeout(5_000) });
    const report = await checkReadiness({ pool: env.pool, redis: stale, queue: env.t.ctx.queue });
    expect(report.ready).toBe(false);
    expect(report.checks.redis.ok ? '' : report.checks.redis.error).toMatch(/^READONLY /);
    await expect(stale.lpush(env.t.ctx.queue.keys.tasks.ready, 'x')).rejects.toThrow(/^READONLY /);
    await reconnecting;
  } finally {
    stale.disconnect();
  }
  // Through the sentinels, the services write to the new primary.
  const res = await fetch(`http://127.0.0.1:${run.healthPort}/readyz`);
  expect(res.status).toBe(200);
});
