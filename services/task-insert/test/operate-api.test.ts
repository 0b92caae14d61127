import { type Context, createContext, createMetrics, loadConfig, type Metrics } from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask, unrecordedDeadLetter } from '../../../test/support/runs.js';
import {
  closedRedis,
  createTestEnv,
  databaseDown,
  listenForInserts,
  type TestEnv,
} from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

let t: TestEnv;
let app: Express;
let metrics: Metrics;

beforeAll(async () => {
  t = await createTestEnv();
  metrics = createMetrics({ service: 'task-insert' });
  app = createApp({ ...t.ctx, metrics });
});
afterAll(async () => {
  await t.cleanup();
});

/** POST /tasks/:id/retry as the dashboard sends it: declared JSON, with no body. */
function retry(path: string) {
  return request(app).post(path).set('Content-Type', 'application/json');
}

async function insert(count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(
      (
        await request(app)
          .post('/tasks')
          .send({ message: `listed ${i}`, time: 1 })
          .expect(201)
      ).body.id,
    );
  }
  return ids;
}

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /tasks', () => {
  it('lists tasks newest first and pages through them with next_after', async () => {
    const ids = await insert(5);
    const seen: number[] = [];
    let after: number | null = null;
    for (;;) {
      const res: request.Response = await request(app)
        .get('/tasks')
        .query({ limit: 2, ...(after ? { after } : {}) })
        .expect(200);
      seen.push(...res.body.tasks.map((task: { id: number }) => task.id));
      after = res.body.next_after;
      if (after === null) break;
    }
    expect(seen.slice(0, 5)).toEqual([...ids].reverse());
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
    const first = (await request(app).get('/tasks').query({ limit: 1 })).body;
    expect(first.tasks[0]).toMatchObject({
      id: ids[4],
      status: 'pending',
      data: { message: 'listed 4', time: 1 },
      attempts: 0,
      last_error: null,
    });
  });

  it('filters by status', async () => {
    const failed = await deadLetteredTask(t, { message: 'broken', error: 'it broke' });
    const res = await request(app).get('/tasks?status=failed').expect(200);
    expect(res.body.tasks.map((task: { id: number }) => task.id)).toContain(failed.id);
    expect(res.body.tasks.every((task: { status: string }) => task.status === 'failed')).toBe(true);
    expect(res.body.tasks[0]).toMatchObject({ last_error: 'it broke' });
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['limit=ten', 'limit'],
    ['after=0', 'after'],
    ['after=-3', 'after'],
    ['status=lost', 'status'],
    ['status=failed&status=pending', 'status'],
    ['page=2', 'page'],
  ])('rejects %s with 400 naming %s', async (query, field) => {
    const res = await request(app).get(`/tasks?${query}`).expect(400);
    expect(res.body.error).toBe('invalid_query');
    expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it('accepts the largest limit', async () => {
    await request(app).get('/tasks?limit=500').expect(200);
  });
});

describe('GET /stats', () => {
  it('counts tasks per status and reports the queue depths', async () => {
    await insert(1);
    await unrecordedDeadLetter(t);
    // A message of a task MySQL does not have, pushed by hand.
    await t.redis.lpush(t.keys.tasks.ready, JSON.stringify({ id: 999, message: 'x', time: 0, tries: 0, run: 1 }));
    const res = await request(app).get('/stats').expect(200);
    const [[row]] = (await t.sql.query('SELECT COUNT(*) AS n FROM tasks WHERE status = "pending"')) as [
      { n: number }[],
      unknown,
    ];
    expect(res.body.tasks).toEqual({
      pending: Number(row!.n),
      processing: expect.any(Number),
      completed: expect.any(Number),
      failed: expect.any(Number),
      cancelled: expect.any(Number),
      delayed: 0,
    });
    expect(res.body.tasks.processing).toBeGreaterThanOrEqual(1);
    expect(res.body.queue).toEqual({
      ready: 1,
      delayed: 0,
      inflight: 0,
      dead_letters: expect.any(Number),
      dead_letter_inbox: 1,
    });
    await t.redis.del(t.keys.tasks.ready);
  });
});

// Every route's answer while Redis refuses connections or stops answering: redis-down.test.ts.
describe('when Redis is unavailable', () => {
  it('answers a retry 503 with MySQL unchanged: the task stays failed, to be retried once Redis is back', async () => {
    const failed = await deadLetteredTask(t, { message: 'retried while Redis is down' });
    const ctx = createContext(loadConfig({ ...t.env, REDIS_URL: 'redis://127.0.0.1:1' }), 'test-redis-down', {
      logger: t.logger,
    });
    try {
      const res = await request(createApp(ctx))
        .post(`/tasks/${failed.id}/retry`)
        .set('Content-Type', 'application/json');
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ error: 'unavailable' });
    } finally {
      await ctx.close();
    }
    expect(await t.store.getTask(failed.id)).toEqual(failed);
    await retry(`/tasks/${failed.id}/retry`).expect(200);
  });

  it('answers 503 when the connection to Redis is closed', async () => {
    const ctx = createContext(t.config, 'test-redis-closed', { logger: t.logger, redis: await closedRedis(t) });
    try {
      const res = await request(createApp(ctx)).get('/stats');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/Redis is unavailable/) });
    } finally {
      await ctx.close();
    }
  });
});

describe('GET /stats/throughput', () => {
  it('returns completed and failed per minute, the current minute last', async () => {
    await deadLetteredTask(t);
    const res = await request(app).get('/stats/throughput?minutes=3').expect(200);
    expect(res.body.minutes).toHaveLength(3);
    const last = res.body.minutes.at(-1);
    expect(new Date(last.minute).getTime()).toBe(Math.floor(Date.now() / 60_000) * 60_000);
    expect(res.body.minutes.reduce((s: number, m: { failed: number }) => s + m.failed, 0)).toBeGreaterThanOrEqual(1);
  });

  it('defaults to 30 minutes and bounds the window', async () => {
    expect((await request(app).get('/stats/throughput').expect(200)).body.minutes).toHaveLength(30);
    await request(app).get('/stats/throughput?minutes=1441').expect(400);
    await request(app).get('/stats/throughput?minutes=0').expect(400);
  });
});

describe('POST /tasks/:id/retry', () => {
  it('puts a failed task back to pending, removes its dead letters and wakes the scheduler', async () => {
    const task = await deadLetteredTask(t, { message: 'retry me' });
    const inserts = await listenForInserts(t);
    try {
      const res = await retry(`/tasks/${task.id}/retry`).expect(200);
      expect(res.body).toMatchObject({
        task: { id: task.id, status: 'pending', attempts: 0 },
        removed_dead_letters: 1,
      });
      await inserts.announced;
    } finally {
      inserts.close();
    }
    expect(await t.store.getTask(task.id)).toMatchObject({ status: 'pending', attempts: 0 });
    const entries = await t.redis.lrange(t.keys.deadLetters, 0, -1);
    expect(entries.some((e) => JSON.parse(e).id === task.id)).toBe(false);
    const text = await (await request(app).get('/metrics')).text;
    expect(sample(text, 'tasks_redriven_total{service="task-insert"}')).toBeGreaterThanOrEqual(1);
  });

  it('answers 409 for a task that is not failed, and changes nothing', async () => {
    const [id] = await insert(1);
    const res = await retry(`/tasks/${id}/retry`).expect(409);
    expect(res.body).toMatchObject({ error: 'not_failed', message: expect.stringMatching(/is pending, not failed/) });
    const inInbox = await unrecordedDeadLetter(t);
    const again = await retry(`/tasks/${inInbox}/retry`).expect(409);
    expect(again.body.message).toMatch(/DLQ processor has not recorded yet/);
    expect((await t.store.getTask(inInbox))?.status).toBe('processing');
  });

  it('answers 404 for an unknown task and 400 for a bad id', async () => {
    await retry('/tasks/987654/retry').expect(404);
    const res = await retry('/tasks/abc/retry').expect(400);
    expect(res.body.error).toBe('invalid_id');
  });

  it('answers 400 for an id that is not percent-encoded properly, naming the path', async () => {
    const res = await retry('/tasks/%ZZ/retry').expect(400);
    expect(res.body).toMatchObject({ error: 'invalid_path', details: [{ field: 'path' }] });
  });
});

describe('health', () => {
  it('GET /healthz answers 200', async () => {
    expect((await request(app).get('/healthz').expect(200)).body).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 when MySQL and Redis answer', async () => {
    const res = await request(app).get('/readyz').expect(200);
    expect(res.body).toMatchObject({ ready: true, checks: { mysql: { ok: true }, redis: { ok: true } } });
  });

  describe('when MySQL is unreachable', () => {
    let down: Context;
    beforeAll(() => {
      down = databaseDown(t);
    });
    afterAll(async () => {
      await down.close();
    });

    it('GET /readyz answers 503 naming MySQL, and /healthz still 200', async () => {
      const downApp = createApp(down);
      const res = await request(downApp).get('/readyz').expect(503);
      expect(res.body).toMatchObject({ ready: false, checks: { mysql: { ok: false }, redis: { ok: true } } });
      await request(downApp).get('/healthz').expect(200);
    });
  });
});

describe('GET /metrics', () => {
  it('counts inserts and reports the queue depths', async () => {
    const before = sample((await request(app).get('/metrics')).text, 'tasks_inserted_total{service="task-insert"}');
    await insert(2);
    const res = await request(app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(sample(res.text, 'tasks_inserted_total{service="task-insert"}')).toBe((before ?? 0) + 2);
    expect(res.text).toMatch(/^queue_depth\{queue="ready",service="task-insert"\} \d+$/m);
    expect(res.text).toMatch(/^queue_depth\{queue="dead_letters",service="task-insert"\} \d+$/m);
  });

  it('a replayed idempotent insert is not counted again', async () => {
    const series = 'tasks_inserted_total{service="task-insert"}';
    await request(app).post('/tasks').set('Idempotency-Key', 'metrics-once').send({ message: 'm', time: 0 });
    const before = sample((await request(app).get('/metrics')).text, series);
    await request(app).post('/tasks').set('Idempotency-Key', 'metrics-once').send({ message: 'm', time: 0 });
    expect(sample((await request(app).get('/metrics')).text, series)).toBe(before);
  });
});
