import { createMetrics, type Metrics, type NewTask } from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

/** POST /tasks/:id/cancel against MySQL and Redis, tasks driven through the store as the services drive them. */

const TOKEN = 'cancel-test-token-0123456';

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

async function insert(task: Partial<NewTask> = {}): Promise<number> {
  const [outcome] = await t.ctx.store.insert([
    { data: { message: 'to cancel', time: 0 }, idempotencyKey: null, ...task },
  ]);
  if (!outcome || !('id' in outcome)) throw new Error('not inserted');
  return outcome.id;
}

/** Claims, leases and completes every pending task (the scheduler's and an executor's path). */
async function completeAll(): Promise<void> {
  await t.ctx.store.claim(1_000);
  const { leased } = await t.ctx.store.fetch(1_000, 60_000);
  await t.ctx.store.complete(
    leased.flatMap((l) =>
      l.message ? [{ id: l.message.id, run: l.message.run, tries: l.message.tries, token: l.token }] : [],
    ),
  );
}

const cancel = (id: number | string, target: Express = app) => request(target).post(`/tasks/${id}/cancel`);

async function cancelledCount(): Promise<number> {
  const text = await metrics.render();
  const line = text.split('\n').find((l) => /^tasks_cancelled_total[ {]/.test(l));
  return Number(line?.split(' ').at(-1) ?? 0);
}

describe('POST /tasks/:id/cancel', () => {
  it('cancels a pending task at once: 200 with the task, counted in /stats, the throughput and the metrics', async () => {
    const id = await insert();
    const before = (await request(app).get('/stats').expect(200)).body.tasks;
    const counted = await cancelledCount();
    const res = await cancel(id).expect(200);
    expect(res.body).toMatchObject({ id, status: 'cancelled', type: 'simulated', finished_at: expect.any(String) });
    expect((await t.ctx.store.getTask(id))?.status).toBe('cancelled');
    const after = (await request(app).get('/stats').expect(200)).body.tasks;
    expect(after.pending).toBe(before.pending - 1);
    expect(after.cancelled).toBe(before.cancelled + 1);
    const minutes = (await request(app).get('/stats/throughput?minutes=2').expect(200)).body.minutes;
    expect(minutes.at(-1).cancelled).toBeGreaterThanOrEqual(1);
    expect(await cancelledCount()).toBe(counted + 1);
  });

  it('cancels a processing task and tells the executors over Redis', async () => {
    const id = await insert({ type: 'echo', data: { n: 1 } });
    await t.ctx.store.claim(1_000);
    const told: number[] = [];
    const stop = await t.ctx.store.onCancelled((cancelled) => told.push(cancelled));
    try {
      const res = await cancel(id).expect(200);
      expect(res.body).toMatchObject({ id, status: 'cancelled', type: 'echo' });
      const deadline = Date.now() + 5_000;
      while (!told.includes(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(told).toContain(id);
    } finally {
      stop();
    }
  });

  it('is harmless twice: 200 with the task, counted once', async () => {
    const id = await insert();
    await cancel(id).expect(200);
    const counted = await cancelledCount();
    const stats = (await request(app).get('/stats').expect(200)).body.tasks;
    const again = await cancel(id).expect(200);
    expect(again.body).toMatchObject({ id, status: 'cancelled' });
    expect(await cancelledCount()).toBe(counted);
    expect((await request(app).get('/stats').expect(200)).body.tasks).toEqual(stats);
  });

  it('answers 409 with its status for a completed or failed task, and changes nothing', async () => {
    const done = await insert();
    await completeAll();
    const failed = (await deadLetteredTask(t)).id;
    for (const [id, status] of [
      [done, 'completed'],
      [failed, 'failed'],
    ] as const) {
      const res = await cancel(id).expect(409);
      expect(res.body).toMatchObject({ error: 'finished', status, message: expect.stringContaining(status) });
      expect((await t.ctx.store.getTask(id))?.status).toBe(status);
    }
  });

  it('answers 404 for an unknown task and 400 for an id that is not one', async () => {
    expect((await cancel(999_999_999).expect(404)).body.error).toBe('not_found');
    expect((await cancel('abc').expect(400)).body.error).toBe('invalid_id');
  });

  it('follows the rules of the other writes: the token when API_TOKEN is set, JSON or nothing, same origin', async () => {
    const guarded = createApp({ ...t.ctx, config: { ...t.config, API_TOKEN: TOKEN } });
    const id = await insert();
    await cancel(id, guarded).expect(401);
    await cancel(id, guarded).set('Authorization', 'Bearer wrong-token-wrong-token').expect(401);
    await cancel(id, app).set('Content-Type', 'text/plain').send('please').expect(415);
    await cancel(id, app).set('Origin', 'https://elsewhere.example').expect(403);
    expect((await t.ctx.store.getTask(id))?.status).toBe('pending');
    await cancel(id, guarded).set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect((await t.ctx.store.getTask(id))?.status).toBe('cancelled');
  });
});
