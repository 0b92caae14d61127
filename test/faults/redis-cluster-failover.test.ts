import { afterAll, beforeAll, expect, it } from 'vitest';
import { drainThroughFailover } from './support/failover-drain.js';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';
import { type KitUnavailable, RedisKit, warnNotTested } from './support/redis-kit.js';

const TASKS = 20_000;

let kit: RedisKit | KitUnavailable;
let f: FaultEnv | null = null;
beforeAll(async () => {
  kit = await RedisKit.start('cluster');
});
afterAll(async () => {
  await f?.cleanup();
  if (kit instanceof RedisKit) await kit.release();
});

it('Redis Cluster: SIGKILL of the master of the queue slot mid-drain of 20,000 tasks: every task final, none stranded, no final status changed, no service restarted (passes with a NOT TESTED banner where the redis-kit cannot run)', async () => {
  if (!(kit instanceof RedisKit)) return warnNotTested('the Redis Cluster failover drain', kit);
  const cluster = kit;
  f = await FaultEnv.onRedis({ REDIS_CLUSTER_NODES: cluster.seeds });
  const env = f;
  const run = await drainThroughFailover(env, TASKS, TASKS / 10, () => cluster.kill(env.keyTag));
  console.log(`[faults] cluster failover: ${JSON.stringify({ ...run, readiness: run.readiness.status })}`);

  // The failover hit the drain while work was still on its way.
  expect(run.completedAfterFailover).toBeLessThan(TASKS);
  expect(run.settled).toBe(true);
  const counts = await env.counts('Redis Cluster failover mid-drain');
  expect(counts).toMatchObject({ tasks: TASKS, ...NOTHING_LOST });
  expect(counts.completed + counts.failed).toBe(TASKS);
  for (const service of env.services) expect(service.running, `${service.name} is still running`).toBe(true);
  expect(run.readiness).toMatchObject({ status: 200, body: { ready: true } });
});
