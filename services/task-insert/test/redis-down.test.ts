import { Writable } from 'node:stream';
import {
  type Context,
  createContext,
  createLogger,
  loadConfig,
  QUEUE_DEPTH_READ_TIMEOUT_MS,
  type Task,
} from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../../test/faults/support/tcp-proxy.js';
import { deadLetteredTask, entryTaskId } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { createApp } from '../src/app.js';
import { WaitRoom } from '../src/wait-room.js';

/**
 * Every route of the API while Redis cannot be used and MySQL answers, as the README states
 * them: inserts and task reads need MySQL alone (the wake-up of the schedulers is best
 * effort: they poll), health, metrics, the document and the dashboard answer, and the routes
 * that read or change the queues answer 503 `unavailable`, changing nothing. Redis is
 * unreachable two ways: it refuses connections, or it stops answering on open ones.
 */

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

const redisUnavailable = { error: 'unavailable', message: expect.stringMatching(/Redis is unavailable/) };

/** Lines an app logs, and a wait for one of them. */
function capturedLogs() {
  const lines: Record<string, unknown>[] = [];
  const waiters: { match: (line: Record<string, unknown>) => boolean; resolve: () => void }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const waiter of waiters.filter((w) => w.match(line))) waiter.resolve();
      }
      done();
    },
  });
  return {
    logger: createLogger({ LOG_LEVEL: 'debug', LOG_PRETTY: false }, 'test-redis-down', stream),
    /** Resolves once a line matching `match` is logged (at once if one was). */
    line(match: (line: Record<string, unknown>) => boolean): Promise<void> {
      if (lines.some(match)) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ match, resolve }));
    },
  };
}

describe('with Redis refusing connections and MySQL up', () => {
  let ctx: Context;
  let app: Express;
  let failed: Task;
  let stored: number;

  beforeAll(async () => {
    failed = await deadLetteredTask(t, { message: 'stays failed' });
    stored = (await request(createApp(t.ctx)).post('/tasks').send({ message: 'stored before', time: 1 })).body.id;
    ctx = createContext(loadConfig({ ...t.env, REDIS_URL: 'redis://127.0.0.1:1' }), 'test-redis-refused', {
      logger: t.logger,
    });
    app = createApp(ctx);
  });
  afterAll(async () => {
    await ctx.close();
  });

  it.concurrent('POST /tasks answers 201 and stores the task: inserts need MySQL alone', async ({ expect }) => {
    const res = await request(app).post('/tasks').send({ message: 'while Redis is down', time: 1 });
    expect(res.status).toBe(201);
    expect(await t.store.getTask(res.body.id)).toMatchObject({
      status: 'pending',
      data: { message: 'while Redis is down', time: 1 },
    });
  });

  // Paths as functions: the ids are known once beforeAll has run.
  const answered: [string, () => string][] = [
    ['GET /tasks/:id', () => `/tasks/${stored}`],
    ['GET /tasks', () => '/tasks'],
    ['GET /stats/throughput', () => '/stats/throughput'],
    ['GET /healthz', () => '/healthz'],
    ['GET /openapi.json', () => '/openapi.json'],
    ['GET / (the dashboard)', () => '/'],
    ['GET /dashboard.js', () => '/dashboard.js'],
  ];
  it.concurrent.for(answered)('%s answers 200', async ([, path], { expect }) => {
    expect((await request(app).get(path())).status).toBe(200);
  });

  it.concurrent.for([
    ['GET /stats', '/stats'],
    ['GET /dead-letters', '/dead-letters'],
  ])('%s answers 503 unavailable', async ([, path], { expect }) => {
    const res = await request(app).get(path as string);
    expect(res.status).toBe(503);
    expect(res.body).toEqual(redisUnavailable);
  });

  const redrives: [string, () => string][] = [
    ['POST /tasks/:id/retry', () => `/tasks/${failed.id}/retry`],
    ['POST /dead-letters/retry', () => '/dead-letters/retry'],
  ];
  it.concurrent.for(redrives)('%s answers 503 unavailable, and the task stays failed', async ([, path], { expect }) => {
    const res = await request(app).post(path());
    expect(res.status).toBe(503);
    expect(res.body).toEqual(redisUnavailable);
    expect(await t.store.getTask(failed.id)).toEqual(failed);
  });

  it.concurrent('POST /tasks/:id/cancel answers 200: the cancel needs MySQL alone', async ({ expect }) => {
    const id = (await request(app).post('/tasks').send({ message: 'cancelled while Redis is down', time: 1 })).body.id;
    const res = await request(app).post(`/tasks/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'cancelled' });
  });

  it.concurrent('GET /tasks/:id?wait= answers from MySQL: at once when final, else at its deadline', async ({
    expect,
  }) => {
    const id = (await request(app).post('/tasks').send({ message: 'waited for while Redis is down', time: 1 })).body.id;
    const started = performance.now();
    const waited = await request(app).get(`/tasks/${id}?wait=1`);
    expect(waited.status).toBe(200);
    expect(waited.body).toMatchObject({ id, status: 'pending' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    const final = await request(app).get(`/tasks/${failed.id}?wait=30`);
    expect(final.status).toBe(200);
    expect(final.body).toMatchObject({ id: failed.id, status: 'failed' });
  });

  it.concurrent('GET /readyz answers 503 naming Redis, MySQL ready', async ({ expect }) => {
    const res = await request(app).get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ ready: false, checks: { mysql: { ok: true }, redis: { ok: false } } });
  });

  it.concurrent('GET /metrics answers 200 without the queue depths, within their read timeout', async ({ expect }) => {
    const started = performance.now();
    const res = await request(app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^tasks_inserted_total\{service="task-insert"\} \d+$/m);
    expect(res.text).not.toMatch(/^queue_depth\{/m);
    expect(performance.now() - started).toBeLessThan(QUEUE_DEPTH_READ_TIMEOUT_MS + 1_000);
  });
});

describe('with Redis not answering on open connections and MySQL up', () => {
  const TIMEOUT_MS = 3_000;
  let proxy: TcpProxy;
  let ctx: Context;
  let app: Express;
  let logs: ReturnType<typeof capturedLogs>;
  let waits: WaitRoom;

  beforeAll(async () => {
    proxy = await TcpProxy.start(Number(new URL(t.config.REDIS_URL).port || 6379));
    const url = new URL(t.config.REDIS_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    logs = capturedLogs();
    ctx = createContext(
      loadConfig({ ...t.env, REDIS_URL: url.toString(), REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) }),
      'test-redis-silent',
      { logger: logs.logger },
    );
    // Its connection to Redis is open: a read of the store's answered.
    await ctx.store.readyDepth();
    waits = new WaitRoom(ctx.store, logs.logger, { pollMs: ctx.config.WAIT_POLL_MS, maxWaiters: 10 });
    app = createApp({ ...ctx, waits });
    proxy.hold();
  });
  afterAll(async () => {
    waits.close();
    proxy.release();
    await ctx.close();
    await proxy.close();
  });

  it('POST /tasks answers 201 at once, and GET /tasks/:id 200', async () => {
    const started = performance.now();
    const res = await request(app).post('/tasks').send({ message: 'while Redis is silent', time: 1 });
    expect(res.status).toBe(201);
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS / 2);
    expect((await request(app).get(`/tasks/${res.body.id}`)).body).toMatchObject({ status: 'pending' });
  });

  it('POST /tasks/:id/cancel answers 200 at once, and a waiting request is answered by the poll', async () => {
    const id = (await request(app).post('/tasks').send({ message: 'cancelled while Redis is silent', time: 1 })).body
      .id;
    const waiting = request(app)
      .get(`/tasks/${id}?wait=30`)
      .then((res) => res);
    await until(async () => waits.size === 1);
    const started = performance.now();
    const res = await request(app).post(`/tasks/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'cancelled' });
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS / 2);
    const answer = await waiting;
    expect(answer.body).toMatchObject({ id, status: 'cancelled' });
    expect(performance.now() - started).toBeLessThan(ctx.config.WAIT_POLL_MS + 1_000);
  });

  it('GET /metrics answers 200 without the queue depths once their read times out', async () => {
    const started = performance.now();
    const res = await request(app).get('/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toMatch(/^tasks_inserted_total\{service="task-insert"\} \d+$/m);
    expect(res.text).not.toMatch(/^queue_depth\{/m);
    expect(performance.now() - started).toBeLessThan(QUEUE_DEPTH_READ_TIMEOUT_MS + 1_000);
  });

  it('GET /readyz answers 503 naming Redis, and GET /stats 503 after REQUEST_TIMEOUT_MS', async () => {
    const [ready, stats] = await Promise.all([request(app).get('/readyz'), request(app).get('/stats')]);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      ready: false,
      checks: { mysql: { ok: true }, redis: { ok: false, error: expect.stringMatching(/did not answer/) } },
    });
    expect(stats.status).toBe(503);
    expect(stats.body).toEqual({
      error: 'unavailable',
      message: `no answer from MySQL or Redis within ${TIMEOUT_MS} ms; try again shortly`,
    });
  });

  it('answers a redrive 503, and changes nothing once Redis answers the late read', async () => {
    const failed = await deadLetteredTask(t, { message: 'redriven late' });
    const answers = await Promise.all([
      request(app).post(`/tasks/${failed.id}/retry`).set('X-Request-Id', 'late-retry-one'),
      request(app).post('/dead-letters/retry').set('X-Request-Id', 'late-retry-all'),
    ]);
    for (const res of answers) {
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'unavailable' });
    }
    proxy.release();
    // Redis answers the reads the two requests sent; each route then ends, after its answer.
    const ended = (reqId: string) =>
      logs.line((l) => l.reqId === reqId && l.msg === 'request failed after its answer was sent');
    await Promise.all([ended('late-retry-one'), ended('late-retry-all')]);
    expect(await t.store.getTask(failed.id)).toEqual(failed);
    const entries = await t.redis.lrange(t.keys.deadLetters, 0, -1);
    expect(entries.some((raw) => entryTaskId(raw) === failed.id)).toBe(true);
  });
});
