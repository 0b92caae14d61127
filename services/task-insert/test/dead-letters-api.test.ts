import { createContext, createMetrics, loadConfig, type Metrics } from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { metricValue } from '../../../test/support/metrics.js';
import {
  completeLeased,
  deadLetteredTask,
  entryTaskId,
  failUntilDeadLettered,
  insertTask,
  leaseAll,
  recordInbox,
  unrecordedDeadLetter,
} from '../../../test/support/runs.js';
import { closedRedis, createTestEnv, listenForInserts, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';
import { DEAD_LETTER_PAGE } from '../src/routes/dead-letters.js';

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
beforeEach(async () => {
  // Each test starts from an empty dead-letter list; tasks of earlier tests stay in MySQL.
  await t.store.purgeDeadLetters();
});

interface Entry {
  id: number | null;
  message: string | null;
  tries: number | null;
  error: string | null;
  failed_at: string | null;
  status: string | null;
  raw: string | null;
}
interface Page {
  entries: Entry[];
  total: number;
  offset: number;
  limit: number;
  next_offset: number | null;
}

/** POST /dead-letters/retry as the dashboard sends it: declared JSON. */
function retryAll(target: Express = app) {
  return request(target).post('/dead-letters/retry').set('Content-Type', 'application/json').send('{}');
}

async function page(query: Record<string, string | number> = {}): Promise<Page> {
  return (await request(app).get('/dead-letters').query(query).expect(200)).body;
}

/** A redriven (pending) task run again through its claim and failed on every try, then recorded. */
async function failAgain(id: number): Promise<void> {
  const { dispatched } = await t.store.claim(100);
  expect(dispatched.map((m) => m.id)).toEqual([id]);
  await failUntilDeadLettered(t, id, { error: 'failed again' });
  await recordInbox(t, id);
}

/** An entry pushed by hand for a task whatever its status (a stale copy of an old run's dead letter). */
async function staleEntry(id: number, error = 'stale copy'): Promise<void> {
  const letter = { id, message: 'stale', time: 0, tries: 3, run: 1, error, failed_at: '2026-01-02T03:04:05.000Z' };
  await t.redis.lpush(t.keys.deadLetters, JSON.stringify(letter));
}

/** The entry of a message that was not one, pushed by hand as the executor pushes it. */
async function invalidEntry(raw: string): Promise<void> {
  const entry = { error: 'invalid message: not JSON', raw, failed_at: new Date().toISOString() };
  await t.redis.lpush(t.keys.deadLetters, JSON.stringify(entry));
}

describe('GET /dead-letters', () => {
  it('answers an empty page and a total of 0 for an empty list', async () => {
    expect(await page()).toEqual({
      entries: [],
      total: 0,
      offset: 0,
      limit: DEAD_LETTER_PAGE.default,
      next_offset: null,
    });
  });

  it('lists entries in the order the tasks failed, not by id: a task redriven and failed again comes first', async () => {
    const older = await deadLetteredTask(t, { message: 'first to fail', error: 'first error' });
    const newer = await deadLetteredTask(t, { message: 'second to fail', error: 'second error' });
    await request(app).post(`/tasks/${older.id}/retry`).set('Content-Type', 'application/json').expect(200);
    await failAgain(older.id);

    const { entries, total } = await page();
    expect(total).toBe(2);
    expect(entries).toEqual([
      {
        id: older.id,
        message: 'first to fail',
        tries: 3,
        error: 'failed again',
        failed_at: expect.any(String),
        status: 'failed',
        raw: null,
      },
      {
        id: newer.id,
        message: 'second to fail',
        tries: 3,
        error: 'second error',
        failed_at: expect.any(String),
        status: 'failed',
        raw: null,
      },
    ]);
    expect(Date.parse(entries[0]!.failed_at!)).toBeGreaterThanOrEqual(Date.parse(entries[1]!.failed_at!));
    // The listing by id has them the other way round.
    const byId = (await request(app).get('/tasks?status=failed&limit=2').expect(200)).body.tasks;
    expect(byId.map((task: { id: number }) => task.id)).toEqual([newer.id, older.id]);
  });

  it('pages through the whole list with next_offset, each page counting the total', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 23; i++) ids.push((await deadLetteredTask(t, { message: `paged ${i}` })).id);
    const seen: (number | null)[] = [];
    const offsets: number[] = [];
    let offset: number | null = 0;
    while (offset !== null) {
      const p: Page = await page({ offset, limit: 10 });
      expect(p.total).toBe(23);
      expect(p.offset).toBe(offset);
      expect(p.limit).toBe(10);
      offsets.push(offset);
      seen.push(...p.entries.map((e) => e.id));
      offset = p.next_offset;
    }
    expect(offsets).toEqual([0, 10, 20]);
    expect(seen).toEqual([...ids].reverse());
    expect((await page()).entries).toHaveLength(20);
    expect(await page({ offset: 23 })).toMatchObject({ entries: [], total: 23, next_offset: null });
    expect(await page({ offset: 22, limit: 1 })).toMatchObject({ entries: [{ id: ids[0] }], next_offset: null });
  });

  it("answers each entry's task status now, and the text of entries that name no task", async () => {
    const failed = await deadLetteredTask(t, { message: 'recorded' });
    const processing = await unrecordedDeadLetter(t, { message: 'in the inbox' });
    const completed = await insertTask(t, { message: 'done', time: 0 });
    await t.store.claim(100);
    await completeLeased(
      t.ctx,
      (await leaseAll(t)).filter((l) => l.message.id === completed),
    );
    const pending = await insertTask(t, { message: 'waiting', time: 0 });
    await staleEntry(pending);
    await staleEntry(completed);
    await staleEntry(987_654_321, 'its task is gone');
    await invalidEntry('<img src=x onerror=alert(1)> {not json');
    await t.redis.lpush(t.keys.deadLetters, 'pushed by hand');

    const { entries, total } = await page();
    expect(total).toBe(7);
    expect(entries.map((e) => [e.id, e.status])).toEqual([
      [null, null],
      [null, null],
      [987_654_321, null],
      [completed, 'completed'],
      [pending, 'pending'],
      [processing, 'processing'],
      [failed.id, 'failed'],
    ]);
    expect(entries[0]).toEqual({
      id: null,
      message: null,
      tries: null,
      error: null,
      failed_at: null,
      status: null,
      raw: 'pushed by hand',
    });
    expect(entries[1]).toMatchObject({
      id: null,
      error: 'invalid message: not JSON',
      raw: '<img src=x onerror=alert(1)> {not json',
      failed_at: expect.any(String),
    });
    expect(entries[2]).toMatchObject({ error: 'its task is gone', failed_at: '2026-01-02T03:04:05.000Z', raw: null });
  });

  it('accepts the largest page', async () => {
    await page({ limit: DEAD_LETTER_PAGE.max });
  });

  it.each([
    ['limit=0', 'limit'],
    [`limit=${DEAD_LETTER_PAGE.max + 1}`, 'limit'],
    ['limit=ten', 'limit'],
    ['limit=1.5', 'limit'],
    ['limit=1&limit=2', 'limit'],
    ['offset=-1', 'offset'],
    ['offset=abc', 'offset'],
    ['offset=9007199254740992', 'offset'],
    ['after=3', 'after'],
  ])('rejects %s with 400 naming %s', async (query, field) => {
    const res = await request(app).get(`/dead-letters?${query}`).expect(400);
    expect(res.body.error).toBe('invalid_query');
    expect(res.body.details.map((d: { field: string }) => d.field)).toEqual([field]);
    expect(res.body.message).toMatch(new RegExp(`^${field} `));
  });
});

describe('POST /dead-letters/retry', () => {
  it('redrives every failed task the list names, removes their entries and keeps the others', async () => {
    const failed = [
      await deadLetteredTask(t, { message: 'all 1' }),
      await deadLetteredTask(t, { message: 'all 2' }),
      await deadLetteredTask(t, { message: 'all 3' }),
    ];
    await staleEntry(failed[0]!.id, 'a second entry of the same task');
    const processing = await unrecordedDeadLetter(t);
    await staleEntry(987_654_321);
    await invalidEntry('{oops');
    const notListed = await deadLetteredTask(t, { message: 'failed, its entry gone' });
    for (const raw of await t.redis.lrange(t.keys.deadLetters, 0, -1)) {
      if (entryTaskId(raw) === notListed.id) await t.redis.lrem(t.keys.deadLetters, 0, raw);
    }
    const before = metricValue(await (await request(app).get('/metrics')).text, 'tasks_redriven_total');

    const inserts = await listenForInserts(t);
    try {
      const res = await retryAll().expect(200);
      expect(res.body).toEqual({ redriven: 3, removed_dead_letters: 4, kept_entries: 3 });
      await inserts.announced;
    } finally {
      inserts.close();
    }

    for (const task of failed) {
      expect(await t.store.getTask(task.id)).toMatchObject({ status: 'pending', attempts: 0 });
    }
    expect((await t.store.getTask(processing))?.status).toBe('processing');
    expect((await t.store.getTask(notListed.id))?.status).toBe('failed');
    const { entries, total } = await page();
    expect(total).toBe(3);
    expect(entries.map((e) => e.id)).toEqual([null, 987_654_321, processing]);
    const after = metricValue(await (await request(app).get('/metrics')).text, 'tasks_redriven_total');
    expect(after - before).toBe(3);

    expect((await retryAll().expect(200)).body).toEqual({ redriven: 0, removed_dead_letters: 0, kept_entries: 3 });
  });

  it('answers counts of 0 for an empty list', async () => {
    expect((await retryAll().expect(200)).body).toEqual({ redriven: 0, removed_dead_letters: 0, kept_entries: 0 });
  });

  it('answers 415 to a write with a body not declared JSON, and changes nothing', async () => {
    const task = await deadLetteredTask(t);
    // A Buffer body goes out as it is, with no Content-Type of its own.
    const bare = await request(app).post('/dead-letters/retry').send(Buffer.from('{}')).expect(415);
    expect(bare.body.error).toBe('unsupported_media_type');
    await request(app).post('/dead-letters/retry').set('Content-Type', 'text/plain').send('{}').expect(415);
    await request(app)
      .post('/dead-letters/retry')
      .set('Content-Type', 'application/x-www-form-urlencoded')
      .send('a=1')
      .expect(415);
    expect((await t.store.getTask(task.id))?.status).toBe('failed');
    expect(await t.redis.llen(t.keys.deadLetters)).toBe(1);
  });

  it('needs the bearer token when API_TOKEN is set, and takes it without a JSON content type', async () => {
    const token = 'dead-letters-token-123';
    const guarded = createApp({ ...t.ctx, metrics, config: { ...t.config, API_TOKEN: token } });
    const task = await deadLetteredTask(t);
    const refused = await retryAll(guarded).expect(401);
    expect(refused.body.error).toBe('unauthorized');
    expect((await t.store.getTask(task.id))?.status).toBe('failed');
    const res = await request(guarded).post('/dead-letters/retry').set('Authorization', `Bearer ${token}`).expect(200);
    expect(res.body).toEqual({ redriven: 1, removed_dead_letters: 1, kept_entries: 0 });
    expect((await t.store.getTask(task.id))?.status).toBe('pending');
    // Reads stay open.
    await request(guarded).get('/dead-letters').expect(200);
  });
});

describe('when Redis is unavailable', () => {
  it.each([
    ['does not answer (its retries used up)', { REDIS_URL: 'redis://127.0.0.1:1' }, false],
    ['closed the connection', {}, true],
  ])('answers 503 when Redis %s, and the retry changes nothing', async (_what, env, quit) => {
    const task = await deadLetteredTask(t, { message: 'stays failed' });
    const ctx = createContext(loadConfig({ ...t.env, ...env }), 'test-redis-down', {
      logger: t.logger,
      ...(quit ? { redis: await closedRedis(t) } : {}),
    });
    try {
      const down = createApp(ctx);
      const listed = await request(down).get('/dead-letters');
      expect(listed.status).toBe(503);
      expect(listed.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/Redis is unavailable/) });
      const retried = await retryAll(down);
      expect(retried.status).toBe(503);
      expect(retried.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/Redis is unavailable/) });
    } finally {
      await ctx.close();
    }
    expect(await t.store.getTask(task.id)).toMatchObject({ status: 'failed', attempts: 3 });
    const { entries } = await page();
    expect(entries.map((e) => e.id)).toEqual([task.id]);
  });
});
