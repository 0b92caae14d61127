import { createContext, HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS, Heartbeat, loadConfig } from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { createApp } from '../src/app.js';

/** GET /services against real Redis: the processes that report themselves alive. */

let t: TestEnv;
let app: Express;

beforeAll(async () => {
  t = await createTestEnv();
  app = createApp(t.ctx);
});
afterAll(async () => {
  await t.cleanup();
});

interface ServiceAnswer {
  id: string;
  service: string;
  host: string;
  pid: number;
  started_at: string;
  last_seen: string;
  last_seen_ago_ms: number;
  alive_until: string;
  detail: Record<string, unknown>;
}

const list = async () => (await request(app).get('/services').expect(200)).body.services as ServiceAnswer[];

describe('GET /services', () => {
  it('answers an empty list when no service reports, with how often they report and when they are dropped', async () => {
    const res = await request(app).get('/services').expect(200);
    expect(res.body).toEqual({
      now: expect.any(String),
      report_interval_ms: HEARTBEAT_INTERVAL_MS,
      forgotten_after_ms: HEARTBEAT_TTL_MS,
      services: [],
    });
    // Redis's clock, not the API host's: within a second of it on this machine.
    expect(Math.abs(new Date(res.body.now).getTime() - Date.now())).toBeLessThan(1_000);
  });

  it('lists each process that reports, with when Redis last heard from it and what it runs', async () => {
    let running = 2;
    const executor = new Heartbeat(
      { store: t.ctx.store, logger: t.ctx.logger },
      { service: 'executor', host: 'worker-1', pid: 31, intervalMs: 50 },
    );
    executor.describe(() => ({ concurrency: 4, running }));
    const scheduler = new Heartbeat(
      { store: t.ctx.store, logger: t.ctx.logger },
      { service: 'scheduler', host: 'worker-2', pid: 32 },
    );
    const stops = [executor.start(), scheduler.start()];
    try {
      await until(async () => (await list()).length === 2);
      const [first, second] = await list();
      expect(first).toEqual({
        id: executor.id,
        service: 'executor',
        host: 'worker-1',
        pid: 31,
        started_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        last_seen: expect.any(String),
        last_seen_ago_ms: expect.any(Number),
        alive_until: expect.any(String),
        detail: { concurrency: 4, running: 2 },
      });
      expect(second).toMatchObject({ id: scheduler.id, service: 'scheduler', host: 'worker-2', pid: 32, detail: {} });
      expect(new Date(first!.alive_until).getTime() - new Date(first!.last_seen).getTime()).toBe(HEARTBEAT_TTL_MS);
      expect(first!.last_seen_ago_ms).toBeLessThan(HEARTBEAT_INTERVAL_MS);

      running = 3;
      await until(async () => (await list())[0]?.detail.running === 3);
    } finally {
      for (const stop of stops) await stop();
    }
    expect(await list()).toEqual([]);
  });

  it('leaves out a process whose last report ran out', async () => {
    const report = {
      id: 'executor:gone-host:7:abcd',
      service: 'executor',
      host: 'gone-host',
      pid: 7,
      startedAt: new Date().toISOString(),
      detail: {},
    };
    const at = await t.ctx.store.reportAlive(report, 150);
    expect((await list()).map((s) => s.id)).toEqual([report.id]);
    await until(async () => {
      const [seconds, micros] = await t.redis.time();
      return Number(seconds) * 1000 + Number(micros) / 1000 > at.getTime() + 150;
    });
    expect(await list()).toEqual([]);
  });

  it('answers while the database is still being prepared: it reads Redis only', async () => {
    const preparing = createApp({ ...t.ctx, databaseReady: () => false });
    await request(preparing).get('/services').expect(200);
    await request(preparing).get('/stats').expect(503);
  });

  it('answers 503 when Redis does not answer', async () => {
    const ctx = createContext(loadConfig({ ...t.env, REDIS_URL: 'redis://127.0.0.1:1' }), 'test-redis-down', {
      logger: t.ctx.logger,
    });
    try {
      const res = await request(createApp(ctx)).get('/services');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'unavailable' });
    } finally {
      await ctx.close();
    }
  });
});
