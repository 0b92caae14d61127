import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { createApp as createExpressApp } from '../src/app.js';
import { WaitRoom } from '../src/wait-room.js';

/**
 * GET /tasks/:id?wait= and POST /tasks?wait=, on a listening API: the answer comes when the
 * task is final, as MySQL holds it, or at the wait's own deadline. The tasks are driven through
 * the store as the scheduler and an executor drive them.
 *
 * The room polls only every 5 s here: an answer sooner than that came from the wake-up over
 * Redis (the poll is tested in wait-many.test.ts).
 */

const POLL_MS = 5_000;

interface Api {
  url: string;
  waits: WaitRoom;
  server: Server;
}

let t: TestEnv;
let api: Api;
const apis: Api[] = [];

/** An API on a loopback port, with its own wait room; `overrides` change its settings. */
async function startApi(overrides: Partial<TestEnv['config']> = {}): Promise<Api> {
  const config = { ...t.config, WAIT_POLL_MS: POLL_MS, ...overrides };
  const waits = new WaitRoom(t.ctx.store, t.ctx.logger, {
    pollMs: config.WAIT_POLL_MS,
    maxWaiters: config.MAX_WAITERS,
  });
  const server = createExpressApp({ ...t.ctx, config, waits }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const started = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, waits, server };
  apis.push(started);
  return started;
}

beforeAll(async () => {
  t = await createTestEnv();
  api = await startApi();
});
afterAll(async () => {
  for (const { waits, server } of apis) {
    waits.close();
    server.closeAllConnections();
    server.close();
  }
  await t.cleanup();
});

async function insert(message = 'waited for'): Promise<number> {
  const [outcome] = await t.ctx.store.insert([{ data: { message, time: 0 }, idempotencyKey: null }]);
  if (!outcome || !('id' in outcome)) throw new Error('not inserted');
  return outcome.id;
}

/** Claims the pending tasks, leases their messages, and completes task `id` (with `result`); the others go back. */
async function complete(id: number, result?: unknown): Promise<void> {
  await t.ctx.store.claim(1_000);
  const { leased } = await t.ctx.store.fetch(1_000, 60_000);
  const mine = leased.filter((l) => l.message?.id === id);
  expect(mine).toHaveLength(1);
  await t.ctx.store.release(leased.filter((l) => l.message?.id !== id).map((l) => l.token));
  const [l] = mine;
  await t.ctx.store.complete([
    {
      id,
      run: l!.message!.run,
      tries: l!.message!.tries,
      token: l!.token,
      ...(result === undefined ? {} : { result: JSON.stringify(result) }),
    },
  ]);
}

interface Timed {
  status: number;
  body: Record<string, unknown> & { task?: Record<string, unknown> | null };
  headers: Headers;
  at: number;
}

async function call(target: Api, method: string, path: string, body?: unknown): Promise<Timed> {
  const res = await fetch(`${target.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const parsed = (await res.json()) as Timed['body'];
  return { status: res.status, body: parsed, headers: res.headers, at: performance.now() };
}

describe('GET /tasks/:id?wait=', () => {
  it('answers as soon as the task completes, with the task as MySQL holds it', async () => {
    const id = await insert();
    const answer = call(api, 'GET', `/tasks/${id}?wait=30`);
    await until(async () => api.waits.size === 1);
    const finished = performance.now();
    await complete(id, { done: true });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id,
      status: 'completed',
      result: { done: true },
      finished_at: expect.any(String),
    });
    // Woken over Redis: well before the room's poll.
    expect(res.at - finished).toBeLessThan(1_000);
    expect(api.waits.size).toBe(0);
  });

  it('answers at its deadline with the task as it is, when it does not finish', async () => {
    // A request timeout far shorter than the wait: the wait is not cut by it.
    const quick = await startApi({ REQUEST_TIMEOUT_MS: 200 });
    const id = await insert();
    const started = performance.now();
    const res = await call(quick, 'GET', `/tasks/${id}?wait=1`);
    const took = res.at - started;
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'pending' });
    expect(took).toBeGreaterThanOrEqual(990);
    expect(took).toBeLessThan(2_500);
    expect(quick.waits.size).toBe(0);
    expect(quick.waits.ended.deadline).toBe(1);
  });

  it('answers at once for a task that is final already', async () => {
    const id = await insert();
    await t.ctx.store.cancel(id);
    const started = performance.now();
    const res = await call(api, 'GET', `/tasks/${id}?wait=30`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id, status: 'cancelled' });
    expect(res.at - started).toBeLessThan(1_000);
    expect(api.waits.size).toBe(0);
  });

  it('answers when the task is cancelled, and 404 at once for an unknown task', async () => {
    const id = await insert();
    const answer = call(api, 'GET', `/tasks/${id}?wait=30`);
    await until(async () => api.waits.size === 1);
    const cancelled = performance.now();
    await call(api, 'POST', `/tasks/${id}/cancel`);
    const res = await answer;
    expect(res.body).toMatchObject({ id, status: 'cancelled' });
    expect(res.at - cancelled).toBeLessThan(1_000);
    const unknown = await call(api, 'GET', '/tasks/999999999?wait=30');
    expect(unknown.status).toBe(404);
    expect(api.waits.size).toBe(0);
  });

  it('answers wait=0 at once, and refuses a wait that is not a whole number up to MAX_WAIT_S', async () => {
    const id = await insert();
    expect((await call(api, 'GET', `/tasks/${id}?wait=0`)).body).toMatchObject({ id, status: 'pending' });
    for (const wait of ['61', 'abc', '1.5', '-1', '']) {
      const res = await call(api, 'GET', `/tasks/${id}?wait=${wait}`);
      expect(res.status, `wait=${wait}`).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_query', details: [{ field: 'wait' }] });
    }
    expect((await call(api, 'GET', `/tasks/${id}?wait=1&wait=2`)).status).toBe(400);
  });

  it('stops waiting when its client goes away', async () => {
    const id = await insert();
    const aborted = api.waits.ended.aborted;
    const client = new AbortController();
    const answer = fetch(`${api.url}/tasks/${id}?wait=30`, { signal: client.signal }).catch(() => null);
    await until(async () => api.waits.size === 1);
    client.abort();
    await answer;
    await until(async () => api.waits.size === 0, 2_000);
    expect(api.waits.ended.aborted).toBe(aborted + 1);
    expect(api.waits.waitedTasks).toBe(0);
  });
});

describe('POST /tasks?wait=', () => {
  it("inserts and answers 201 once the task completes: the original's fields, and the task", async () => {
    const answer = call(api, 'POST', '/tasks/?wait=30', { message: 'post and wait', time: 0, extra: 1 });
    await until(async () => api.waits.size === 1 && (await t.ctx.store.stats()).tasks.pending >= 1);
    const [id] = [...(await t.ctx.store.listTasks({ status: 'pending', limit: 1 }))].map((task) => task.id);
    const finished = performance.now();
    await complete(id!, 'a JSON string result');
    const res = await answer;
    expect(res.at - finished).toBeLessThan(1_000);
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe(`/tasks/${id}`);
    expect(res.body).toEqual({
      id,
      message: 'Task created successfully',
      status: 'completed',
      ignored_fields: ['extra'],
      task: expect.objectContaining({
        id,
        status: 'completed',
        type: 'simulated',
        data: { message: 'post and wait', time: 0 },
        result: 'a JSON string result',
      }),
    });
  });

  it('answers 201 at its deadline with the task pending', async () => {
    const started = performance.now();
    const res = await call(api, 'POST', '/tasks?wait=1', { message: 'nobody runs it', time: 0 });
    expect(res.status).toBe(201);
    expect(res.at - started).toBeGreaterThanOrEqual(990);
    expect(res.body).toMatchObject({ status: 'pending', task: { id: res.body.id, status: 'pending' } });
  });

  it('answers a replayed Idempotency-Key at once when its task is final', async () => {
    const post = () =>
      fetch(`${api.url}/tasks?wait=30`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'wait-replay' },
        body: JSON.stringify({ message: 'keyed', time: 0 }),
      });
    const first = await fetch(`${api.url}/tasks`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Idempotency-Key': 'wait-replay' },
      body: JSON.stringify({ message: 'keyed', time: 0 }),
    });
    const { id } = (await first.json()) as { id: number };
    await t.ctx.store.cancel(id);
    const started = performance.now();
    const again = await post();
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(await again.json()).toMatchObject({ id, status: 'cancelled', task: { id, status: 'cancelled' } });
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('refuses a bad wait with 400 and stores nothing', async () => {
    const before = (await t.ctx.store.stats()).tasks.pending;
    const res = await call(api, 'POST', '/tasks?wait=61', { message: 'never stored', time: 0 });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_query', details: [{ field: 'wait' }] });
    expect((await t.ctx.store.stats()).tasks.pending).toBe(before);
  });
});

describe('MAX_WAITERS', () => {
  it('answers 503 with Retry-After beyond it, before storing anything, and lets in again once a seat is free', async () => {
    const small = await startApi({ MAX_WAITERS: 2 });
    const ids = [await insert(), await insert()];
    const answers = ids.map((id) => call(small, 'GET', `/tasks/${id}?wait=30`));
    await until(async () => small.waits.size === 2);
    const third = await call(small, 'GET', `/tasks/${ids[0]}?wait=30`);
    expect(third.status).toBe(503);
    expect(third.headers.get('retry-after')).toBe('1');
    expect(third.body).toMatchObject({ error: 'unavailable', message: expect.stringContaining('MAX_WAITERS') });
    const before = (await t.ctx.store.stats()).tasks.pending;
    expect((await call(small, 'POST', '/tasks?wait=30', { message: 'not stored', time: 0 })).status).toBe(503);
    expect((await t.ctx.store.stats()).tasks.pending).toBe(before);
    // Without wait, nothing changes.
    expect((await call(small, 'GET', `/tasks/${ids[0]}`)).status).toBe(200);
    await t.ctx.store.cancel(ids[0]!);
    expect((await answers[0]!).body).toMatchObject({ status: 'cancelled' });
    const fourth = call(small, 'GET', `/tasks/${ids[0]}?wait=30`);
    expect((await fourth).status).toBe(200);
    await t.ctx.store.cancel(ids[1]!);
    await answers[1];
    expect(small.waits.size).toBe(0);
  });
});
