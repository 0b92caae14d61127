import { createMetrics, loadConfig } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOpsServer, startOpsServerFromConfig } from '../src/ops-server.js';
import { checkReadiness, READINESS_PROBE_TTL_MS } from '../src/readiness.js';
import { createRedis } from '../src/redis/client.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

/** The value of one series in Prometheus text, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  it('renders every counter and the run-time histogram with the service label', async () => {
    const metrics = createMetrics({ service: 'executor' });
    metrics.tasksInserted.inc(3);
    metrics.tasksClaimed.inc(2);
    metrics.tasksCompleted.inc();
    metrics.tasksFailed.inc();
    metrics.tasksRetried.inc(4);
    metrics.tasksDeadLettered.inc();
    metrics.tasksRedriven.inc();
    metrics.leasesExpired.inc(5);
    metrics.taskRunSeconds.observe({ outcome: 'completed' }, 0.2);
    metrics.taskRunSeconds.observe({ outcome: 'failed' }, 3);
    const text = await metrics.render();
    expect(sample(text, 'tasks_inserted_total{service="executor"}')).toBe(3);
    expect(sample(text, 'tasks_claimed_total{service="executor"}')).toBe(2);
    expect(sample(text, 'tasks_completed_total{service="executor"}')).toBe(1);
    expect(sample(text, 'tasks_failed_total{service="executor"}')).toBe(1);
    expect(sample(text, 'tasks_retried_total{service="executor"}')).toBe(4);
    expect(sample(text, 'tasks_dead_lettered_total{service="executor"}')).toBe(1);
    expect(sample(text, 'tasks_redriven_total{service="executor"}')).toBe(1);
    expect(sample(text, 'leases_expired_total{service="executor"}')).toBe(5);
    expect(sample(text, 'task_run_seconds_bucket{le="0.25",service="executor",outcome="completed"}')).toBe(1);
    expect(sample(text, 'task_run_seconds_count{service="executor",outcome="failed"}')).toBe(1);
    expect(metrics.contentType).toMatch(/^text\/plain/);
  });

  it('keeps each registry apart', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.tasksInserted.inc();
    expect(sample(await b.render(), 'tasks_inserted_total')).toBe(0);
  });

  it('adds the process metrics when asked', async () => {
    const text = await createMetrics({ defaultMetrics: true }).render();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect(await createMetrics().render()).not.toContain('process_cpu_user_seconds_total');
  });

  it('reads the queue depths from Redis at each scrape', async () => {
    const metrics = createMetrics();
    metrics.observeQueueDepths(() => t.ctx.queue.depths());
    await t.ctx.queue.dispatch([
      { id: 1, message: 'a', time: 0, tries: 0, run: 1 },
      { id: 2, message: 'b', time: 0, tries: 0, run: 1 },
    ]);
    await t.ctx.queue.deadLetter([
      { token: null, letter: { id: 3, message: 'c', time: 0, tries: 3, run: 1, error: 'boom', failed_at: 'now' } },
    ]);
    const text = await metrics.render();
    expect(sample(text, 'queue_depth{queue="ready"}')).toBe(2);
    expect(sample(text, 'queue_depth{queue="delayed"}')).toBe(0);
    expect(sample(text, 'queue_depth{queue="inflight"}')).toBe(0);
    expect(sample(text, 'queue_depth{queue="dead_letters"}')).toBe(1);
    expect(sample(text, 'queue_depth{queue="dead_letter_inbox"}')).toBe(1);
  });

  it('still answers a scrape when the depths cannot be read, without them', async () => {
    const metrics = createMetrics();
    const errors: unknown[] = [];
    metrics.observeQueueDepths(
      () => Promise.reject(new Error('redis down')),
      (err) => errors.push(err),
    );
    const text = await metrics.render();
    expect(text).toContain('tasks_inserted_total');
    expect(sample(text, 'queue_depth{queue="ready"}')).toBeUndefined();
    expect(errors).toHaveLength(1);
  });
});

describe('checkReadiness', () => {
  it('is ready when MySQL answers and Redis takes a write to the queue keys, which expire', async () => {
    const report = await checkReadiness(t.ctx);
    expect(report).toMatchObject({ ready: true, checks: { mysql: { ok: true }, redis: { ok: true } } });
    for (const key of t.ctx.queue.keys.readinessProbes) {
      const ttl = await t.ctx.redis.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(READINESS_PROBE_TTL_MS);
    }
  });

  it('is not ready when Redis does not answer, and says which', async () => {
    // Nothing listens on port 1: the client keeps trying to connect.
    const redis = createRedis({ REDIS_URL: 'redis://127.0.0.1:1' }, t.ctx.logger, 'test-unreachable');
    try {
      const report = await checkReadiness({ pool: t.ctx.pool, redis, queue: t.ctx.queue }, 300);
      expect(report.ready).toBe(false);
      expect(report.checks.mysql.ok).toBe(true);
      expect(report.checks.redis).toMatchObject({ ok: false, error: expect.any(String) });
    } finally {
      redis.disconnect();
    }
  });
});

describe('ops server', () => {
  it('serves /healthz, /readyz and /metrics', async () => {
    const metrics = createMetrics({ service: 'scheduler' });
    metrics.tasksClaimed.inc(7);
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      metrics,
      readiness: () => checkReadiness(t.ctx),
      logger: t.ctx.logger,
    });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ ready: true });
      const scrape = await fetch(`${base}/metrics`);
      expect(scrape.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(sample(await scrape.text(), 'tasks_claimed_total{service="scheduler"}')).toBe(7);
      expect((await fetch(`${base}/nothing`)).status).toBe(404);
      expect((await fetch(`${base}/healthz`, { method: 'POST' })).status).toBe(405);
    } finally {
      await server.close();
    }
  });

  it('answers /readyz with 503 when a dependency is down', async () => {
    const redis = createRedis({ REDIS_URL: 'redis://127.0.0.1:1' }, t.ctx.logger, 'test-unreachable');
    const server = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      metrics: createMetrics(),
      readiness: () => checkReadiness({ pool: t.ctx.pool, redis, queue: t.ctx.queue }, 300),
      logger: t.ctx.logger,
    });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ ready: false, checks: { redis: { ok: false } } });
      // Liveness does not depend on Redis.
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
      redis.disconnect();
    }
  });

  it('is not started when HEALTH_PORT is 0', async () => {
    const ctx = { ...t.ctx, config: loadConfig({ ...t.env, HEALTH_PORT: '0' }) };
    expect(await startOpsServerFromConfig(ctx, createMetrics())).toBeNull();
  });

  it('lets the service run on when HEALTH_PORT is taken by another process', async () => {
    const first = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      metrics: createMetrics(),
      readiness: () => checkReadiness(t.ctx),
      logger: t.ctx.logger,
    });
    try {
      const config = loadConfig({ ...t.env, HOST: '127.0.0.1', HEALTH_PORT: String(first.port) });
      expect(await startOpsServerFromConfig({ ...t.ctx, config }, createMetrics())).toBeNull();
      // The port still belongs to the first one.
      expect((await fetch(`http://127.0.0.1:${first.port}/healthz`)).status).toBe(200);
    } finally {
      await first.close();
    }
  });

  it('listens on HEALTH_PORT and observes the queue depths', async () => {
    const probe = await startOpsServer({
      port: 0,
      host: '127.0.0.1',
      metrics: createMetrics(),
      readiness: () => checkReadiness(t.ctx),
      logger: t.ctx.logger,
    });
    const port = probe.port;
    await probe.close();
    const config = loadConfig({ ...t.env, HOST: '127.0.0.1', HEALTH_PORT: String(port) });
    const server = await startOpsServerFromConfig({ ...t.ctx, config }, createMetrics());
    try {
      expect(server?.port).toBe(port);
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toContain('queue_depth{queue="ready"}');
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    } finally {
      await server?.close();
    }
  });
});
