import { Heartbeat, type LiveService, type ServiceReport, type TaskStore } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';

/**
 * The services that report themselves alive, in real Redis: what they report, Redis's clock
 * for when, and how they leave the list (a deadline that passes, or a stop).
 */

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

/** Redis's clock, in ms. */
async function redisNow(): Promise<number> {
  const [seconds, micros] = await t.redis.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

let counter = 0;
function report(detail: Record<string, unknown> = {}, service = 'executor'): ServiceReport {
  counter++;
  return {
    id: `${service}:host-${counter}:${1000 + counter}:abcd`,
    service,
    host: `host-${counter}`,
    pid: 1000 + counter,
    startedAt: '2030-01-02T03:04:05.000Z',
    detail,
  };
}

const live = async () => (await t.ctx.store.liveServices()).services;
const find = async (id: string): Promise<LiveService | undefined> => (await live()).find((s) => s.id === id);
const stored = async (id: string) => {
  const keys = t.keys.services;
  return {
    alive: await t.redis.zscore(keys.alive, id),
    report: await t.redis.hget(keys.reports, id),
    seen: await t.redis.hget(keys.seen, id),
  };
};

describe('the live services', () => {
  it('lists a reported service with what it reported, seen and due on Redis clock', async () => {
    const r = report({ concurrency: 4, running: 1 });
    const before = await redisNow();
    const at = await t.ctx.store.reportAlive(r, 60_000);
    const after = await redisNow();
    expect(at.getTime()).toBeGreaterThanOrEqual(before);
    expect(at.getTime()).toBeLessThanOrEqual(after);

    const listed = await find(r.id);
    expect(listed).toMatchObject({
      id: r.id,
      service: 'executor',
      host: r.host,
      pid: r.pid,
      startedAt: r.startedAt,
      detail: { concurrency: 4, running: 1 },
    });
    expect(listed?.lastSeen.getTime()).toBe(at.getTime());
    expect(listed?.deadline.getTime()).toBe(at.getTime() + 60_000);
    expect(listed?.lastSeenAgoMs).toBeGreaterThanOrEqual(0);
    expect(listed?.lastSeenAgoMs).toBeLessThan(5_000);
  });

  it('replaces the report of a service that reports again, and moves its last seen on', async () => {
    const r = report({ running: 1 });
    const first = await t.ctx.store.reportAlive(r, 60_000);
    await until(async () => (await redisNow()) > first.getTime());
    const second = await t.ctx.store.reportAlive({ ...r, detail: { running: 3 } }, 60_000);
    expect(second.getTime()).toBeGreaterThan(first.getTime());
    const listed = (await live()).filter((s) => s.id === r.id);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ detail: { running: 3 }, lastSeen: second });
  });

  it('drops a service whose report ran out, and forgets it in Redis', async () => {
    const r = report();
    const at = await t.ctx.store.reportAlive(r, 200);
    expect(await find(r.id)).toBeDefined();
    await until(async () => (await redisNow()) > at.getTime() + 200);
    expect(await find(r.id)).toBeUndefined();
    expect(await stored(r.id)).toEqual({ alive: null, report: null, seen: null });
  });

  it('forgets a service whose report ran out when another reports, without anyone listing', async () => {
    const gone = report();
    const at = await t.ctx.store.reportAlive(gone, 100);
    await until(async () => (await redisNow()) > at.getTime() + 100);
    await t.ctx.store.reportAlive(report(), 60_000);
    expect(await stored(gone.id)).toEqual({ alive: null, report: null, seen: null });
  });

  it('forgets a service that reports it stopped at once', async () => {
    const r = report();
    await t.ctx.store.reportAlive(r, 60_000);
    await t.ctx.store.reportStopped(r.id);
    expect(await find(r.id)).toBeUndefined();
    expect(await stored(r.id)).toEqual({ alive: null, report: null, seen: null });
  });

  it('lists services by name, then host, then pid', async () => {
    const at = (service: string, host: string, pid: number): ServiceReport => ({
      ...report({}, service),
      id: `${service}:${host}:${pid}:order`,
      host,
      pid,
    });
    for (const r of [at('scheduler', 'order-b', 2), at('scheduler', 'order-a', 9), at('dlq-processor', 'order-z', 1)]) {
      await t.ctx.store.reportAlive(r, 60_000);
    }
    const order = (await live()).filter((s) => s.id.endsWith(':order')).map((s) => s.id);
    expect(order).toEqual(['dlq-processor:order-z:1:order', 'scheduler:order-a:9:order', 'scheduler:order-b:2:order']);
  });
});

describe('Heartbeat', () => {
  it('reports at once and then every interval, with what describe says at each report', async () => {
    let running = 0;
    const heartbeat = new Heartbeat(
      { store: t.ctx.store, logger: t.ctx.logger },
      { service: 'executor', intervalMs: 50, host: 'heartbeat-host', pid: 4242 },
    );
    heartbeat.describe(() => ({ concurrency: 8, running }));
    const stop = heartbeat.start();
    try {
      await until(async () => (await find(heartbeat.id)) !== undefined);
      expect(await find(heartbeat.id)).toMatchObject({
        service: 'executor',
        host: 'heartbeat-host',
        pid: 4242,
        detail: { concurrency: 8, running: 0 },
      });
      expect(heartbeat.id).toMatch(/^executor:heartbeat-host:4242:/);
      running = 5;
      await until(async () => (await find(heartbeat.id))?.detail.running === 5);
    } finally {
      await stop();
    }
    expect(await find(heartbeat.id)).toBeUndefined();
  });

  it('reports without detail when describing fails, rather than not at all', async () => {
    const heartbeat = new Heartbeat({ store: t.ctx.store, logger: t.ctx.logger }, { service: 'scheduler' });
    heartbeat.describe(() => {
      throw new Error('not ready');
    });
    const stop = heartbeat.start();
    try {
      await until(async () => (await find(heartbeat.id)) !== undefined);
      expect((await find(heartbeat.id))?.detail).toEqual({});
    } finally {
      await stop();
    }
  });

  it('stops within a bound when Redis does not answer the last report', async () => {
    const reported: string[] = [];
    const silent: Pick<TaskStore, 'reportAlive' | 'reportStopped'> = {
      reportAlive: async (r) => {
        reported.push(r.id);
        return new Date();
      },
      reportStopped: () => new Promise(() => undefined),
    };
    const heartbeat = new Heartbeat({ store: silent, logger: t.ctx.logger }, { service: 'executor' });
    const stop = heartbeat.start();
    await until(async () => reported.length > 0);
    const started = Date.now();
    await stop();
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});
