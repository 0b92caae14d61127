import { EVENTS, type ReadinessReport } from '@tasks/common';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FaultEnv } from './support/fault-env.js';
import { type KitUnavailable, RedisKit, warnNotTested } from './support/redis-kit.js';
import type { ServiceProcess } from './support/service-process.js';

let kit: RedisKit | KitUnavailable;
beforeAll(async () => {
  kit = await RedisKit.start('cluster');
});
afterAll(async () => {
  if (kit instanceof RedisKit) await kit.release();
});

let f: FaultEnv | null = null;
afterAll(async () => {
  await f?.cleanup();
});

function apiUrl(api: ServiceProcess): string {
  const port = api.lines.find((l) => l.event === EVENTS.apiListening)?.port;
  return `http://127.0.0.1:${String(port)}`;
}

async function readiness(api: ServiceProcess): Promise<{ status: number; body: ReadinessReport }> {
  const res = await fetch(`${apiUrl(api)}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadinessReport };
}

/** A master of the cluster that does not serve `key`'s slot. */
async function masterNotServing(cluster: Cluster, key: string): Promise<string> {
  const slot = Number(await cluster.cluster('KEYSLOT', key));
  const ranges = await cluster.cluster('SLOTS');
  const address = (range: (typeof ranges)[number]) => `${range[2]?.[0]}:${range[2]?.[1]}`;
  const owner = ranges.find(([from, to]) => from <= slot && slot <= to);
  const other = ranges.find((range) => owner && address(range) !== address(owner));
  if (!other) throw new Error(`no master other than the owner of slot ${slot}`);
  return address(other);
}

it('Redis Cluster: a task POSTed to the API completes (the insert wakes the scheduler), /readyz is ready, and a plain REDIS_URL at a node without the slot is 503 naming MOVED (passes with a NOT TESTED banner where the redis-kit cannot run)', async () => {
  if (!(kit instanceof RedisKit)) return warnNotTested('the Redis Cluster smoke test', kit);
  // A poll interval far longer than the test: the task only runs if the insert's announcement
  // (PUBLISH on the cluster, SUBSCRIBE on another node) wakes the scheduler.
  f = await FaultEnv.onRedis({ REDIS_CLUSTER_NODES: kit.seeds }, { POLL_INTERVAL_MS: '600000' });
  await f.start('scheduler');
  await f.start('executor');
  const api = await f.start('task-insert');

  const ready = await readiness(api);
  expect(ready.status).toBe(200);
  expect(ready.body).toMatchObject({ ready: true, checks: { redis: { ok: true } } });

  const posted = await fetch(`${apiUrl(api)}/tasks/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: 'spiderman 3', time: 0 }),
  });
  expect(posted.status).toBe(201);
  const { id } = (await posted.json()) as { id: number };
  const deadline = Date.now() + 15_000;
  let status = '';
  while (Date.now() < deadline && status !== 'completed') {
    status = ((await (await fetch(`${apiUrl(api)}/tasks/${id}`)).json()) as { status: string }).status;
    if (status !== 'completed') await new Promise((r) => setTimeout(r, 100));
  }
  expect(status).toBe('completed');

  // The same service pointed at one cluster node as if it were a standalone server.
  const cluster = f.t.redis as Cluster;
  const wrongNode = await masterNotServing(cluster, f.keyTag);
  const plain = await f.start('task-insert', { REDIS_URL: `redis://${wrongNode}`, REDIS_CLUSTER_NODES: '' });
  const notReady = await readiness(plain);
  expect(notReady.status).toBe(503);
  expect(notReady.body).toMatchObject({ ready: false, checks: { mysql: { ok: true }, redis: { ok: false } } });
  const check = notReady.body.checks.redis;
  expect(check.ok ? '' : check.error).toMatch(/^MOVED \d+ /);
});
