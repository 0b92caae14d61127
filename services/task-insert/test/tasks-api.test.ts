import { gzipSync } from 'node:zlib';
import type { Context } from '@tasks/common';
import type { Express } from 'express';
import type { RowDataPacket } from 'mysql2/promise';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, databaseDown, listenForInserts, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

let t: TestEnv;
let app: Express;

beforeAll(async () => {
  t = await createTestEnv();
  app = createApp(t.ctx);
});
afterAll(async () => {
  await t.cleanup();
});

async function countRows(): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
  return Number(row!.n);
}

interface ErrorBody {
  error: string;
  message: string;
  details?: { field: string; message: string }[];
}

/** The fields an error answer names, in its details or its message. */
function namesField(body: ErrorBody, field: string): boolean {
  return (body.details ?? []).some((d) => d.field === field) || body.message.includes(field);
}

const ORIGINAL_BODY = { message: 'spiderman 3', time: 3 };

describe('POST /tasks', () => {
  it.each(['/tasks', '/tasks/'])('creates a task from the original body at %s', async (path) => {
    const res = await request(app).post(path).send(ORIGINAL_BODY).expect(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toEqual({ id: expect.any(Number), message: 'Task created successfully', status: 'pending' });
    expect(res.headers.location).toBe(`/tasks/${res.body.id}`);
    const task = await t.store.getTask(res.body.id);
    expect(task).toMatchObject({ status: 'pending', data: ORIGINAL_BODY, attempts: 0, lastError: null });
  });

  it('announces the insert to schedulers', async () => {
    const inserts = await listenForInserts(t);
    try {
      await request(app).post('/tasks').send(ORIGINAL_BODY).expect(201);
      expect(await inserts.announced).toBe(t.keys.insertedChannel);
    } finally {
      inserts.close();
    }
  });

  describe('accepts every body the original (pydantic 2, lax mode) accepted, with the same meaning', () => {
    const raw = (body: string) => request(app).post('/tasks').set('Content-Type', 'application/json').send(body);
    it.each([
      ['{"message":"m","time":"3"}', { message: 'm', time: 3 }],
      ['{"message":"m","time":" 3 "}', { message: 'm', time: 3 }],
      ['{"message":"m","time":"3.0"}', { message: 'm', time: 3 }],
      ['{"message":"m","time":"+3"}', { message: 'm', time: 3 }],
      ['{"message":"m","time":"1_0"}', { message: 'm', time: 10 }],
      ['{"message":"m","time":3.0}', { message: 'm', time: 3 }],
      ['{"message":"m","time":1e2}', { message: 'm', time: 100 }],
      ['{"message":"m","time":true}', { message: 'm', time: 1 }],
      ['{"message":"m","time":false}', { message: 'm', time: 0 }],
      ['{"message":"","time":3}', { message: '', time: 3 }],
    ])('%s is stored as %j', async (body, stored) => {
      const res = await raw(body).expect(201);
      expect(res.body).toEqual({ id: expect.any(Number), message: 'Task created successfully', status: 'pending' });
      expect((await t.store.getTask(res.body.id))?.data).toEqual(stored);
      const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT CAST(data AS CHAR) AS text FROM tasks WHERE id = ?', [
        res.body.id,
      ]);
      expect(JSON.parse(String(row!.text))).toEqual(stored);
    });

    it('ignores other fields, stores only message and time, and names the ignored fields in the answer', async () => {
      const res = await raw('{"message":"m","time":3,"retries":5,"tme":4}').expect(201);
      expect(res.body).toEqual({
        id: expect.any(Number),
        message: 'Task created successfully',
        status: 'pending',
        ignored_fields: ['retries', 'tme'],
      });
      expect((await t.store.getTask(res.body.id))?.data).toEqual({ message: 'm', time: 3 });
    });

    it('reads a body declared application/*+json', async () => {
      await request(app)
        .post('/tasks')
        .set('Content-Type', 'application/vnd.api+json')
        .send(JSON.stringify(ORIGINAL_BODY))
        .expect(201);
    });
  });

  describe('with an Idempotency-Key', () => {
    it("answers a replay with the task's current status", async () => {
      const first = await request(app).post('/tasks').set('Idempotency-Key', 'key-status').send(ORIGINAL_BODY);
      expect(first.body.status).toBe('pending');
      await t.sql.query("UPDATE tasks SET status = 'completed' WHERE id = ?", [first.body.id]);
      const again = await request(app).post('/tasks').set('Idempotency-Key', 'key-status').send(ORIGINAL_BODY);
      expect(again.status).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toEqual({ id: first.body.id, message: 'Task created successfully', status: 'completed' });
    });

    it('replays a body whose time is written another way for the same task', async () => {
      const first = await request(app).post('/tasks').set('Idempotency-Key', 'key-lax').send(ORIGINAL_BODY);
      const again = await request(app)
        .post('/tasks')
        .set('Idempotency-Key', 'key-lax')
        .send({ message: ORIGINAL_BODY.message, time: '3' });
      expect(again.status).toBe(201);
      expect(again.body.id).toBe(first.body.id);
    });

    it('returns the first task when a request is retried, and stores it once', async () => {
      const before = await countRows();
      const first = await request(app).post('/tasks').set('Idempotency-Key', 'key-retry').send(ORIGINAL_BODY);
      const again = await request(app).post('/tasks').set('Idempotency-Key', 'key-retry').send(ORIGINAL_BODY);
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.body).toEqual(first.body);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(await countRows()).toBe(before + 1);
    });

    it('stores one task when the same request arrives several times at once', async () => {
      const before = await countRows();
      const replies = await Promise.all(
        Array.from({ length: 5 }, () =>
          request(app).post('/tasks').set('Idempotency-Key', 'key-concurrent').send(ORIGINAL_BODY),
        ),
      );
      expect(replies.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
      expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
      expect(await countRows()).toBe(before + 1);
    });

    it('rejects the same key with a different body with 422', async () => {
      await request(app).post('/tasks').set('Idempotency-Key', 'key-reused').send(ORIGINAL_BODY).expect(201);
      const before = await countRows();
      const res = await request(app)
        .post('/tasks')
        .set('Idempotency-Key', 'key-reused')
        .send({ message: 'spiderman 4', time: 3 });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        error: 'idempotency_key_reused',
        message: expect.stringMatching(/Idempotency-Key/),
      });
      expect(await countRows()).toBe(before);
    });

    it('rejects a key longer than 255 characters with 400 naming the header', async () => {
      const before = await countRows();
      const res = await request(app).post('/tasks').set('Idempotency-Key', 'k'.repeat(256)).send(ORIGINAL_BODY);
      expect(res.status).toBe(400);
      expect(namesField(res.body, 'Idempotency-Key')).toBe(true);
      expect(await countRows()).toBe(before);
    });

    it('rejects a key that is not printable ASCII with 400 naming the header', async () => {
      const before = await countRows();
      const res = await request(app).post('/tasks').set('Idempotency-Key', 'clé').send(ORIGINAL_BODY);
      expect(res.status).toBe(400);
      expect(namesField(res.body, 'Idempotency-Key')).toBe(true);
      expect(res.body.message).toMatch(/printable ASCII/);
      expect(await countRows()).toBe(before);
    });

    it('compares keys exactly, case included', async () => {
      const lower = await request(app).post('/tasks').set('Idempotency-Key', 'key-case').send(ORIGINAL_BODY);
      const upper = await request(app).post('/tasks').set('Idempotency-Key', 'KEY-CASE').send(ORIGINAL_BODY);
      expect(lower.status).toBe(201);
      expect(upper.status).toBe(201);
      expect(upper.body.id).not.toBe(lower.body.id);
    });
  });

  describe('rejects bad input without writing a row', () => {
    interface BadCase {
      name: string;
      status: number;
      /** The field the answer must name; null when there is no field to blame. */
      field: string | null;
      send: (req: request.Test) => request.Test;
      /** What the message must say when there is no field to name. */
      says?: RegExp;
    }
    const json = (body: unknown) => (req: request.Test) => req.send(body as object);
    const raw = (body: string) => (req: request.Test) => req.set('Content-Type', 'application/json').send(body);
    const cases: BadCase[] = [
      { name: 'malformed JSON', status: 400, field: null, send: raw('{"message": "x", "time": '), says: /JSON/ },
      {
        name: 'Content-Type text/plain',
        status: 415,
        field: null,
        send: (req) => req.set('Content-Type', 'text/plain').send(JSON.stringify(ORIGINAL_BODY)),
        says: /Content-Type must be application\/json/,
      },
      {
        name: 'no Content-Type',
        status: 415,
        field: null,
        // A Buffer body goes out without a Content-Type header.
        send: (req) => req.send(Buffer.from(JSON.stringify(ORIGINAL_BODY))),
        says: /Content-Type must be application\/json \(got none\)/,
      },
      { name: 'missing message', status: 400, field: 'message', send: json({ time: 3 }) },
      { name: 'missing time', status: 400, field: 'time', send: json({ message: 'x' }) },
      { name: 'message not a string', status: 400, field: 'message', send: json({ message: 42, time: 3 }) },
      { name: 'negative time', status: 400, field: 'time', send: json({ message: 'x', time: -1 }) },
      { name: 'time not a whole number', status: 400, field: 'time', send: json({ message: 'x', time: 1.5 }) },
      { name: 'time above MAX_TASK_TIME_S', status: 400, field: 'time', send: json({ message: 'x', time: 3601 }) },
      { name: 'time 1e400 (Infinity)', status: 400, field: 'time', send: raw('{"message":"x","time":1e400}') },
      {
        name: 'message longer than MAX_MESSAGE_LENGTH',
        status: 400,
        field: 'message',
        send: json({ message: 'x'.repeat(10_001), time: 3 }),
      },
      { name: 'time a string with a fraction', status: 400, field: 'time', send: json({ message: 'x', time: '1.5' }) },
      {
        name: 'time a string that is no number',
        status: 400,
        field: 'time',
        send: json({ message: 'x', time: 'soon' }),
      },
      { name: 'time null', status: 400, field: 'time', send: json({ message: 'x', time: null }) },
      { name: 'time a list', status: 400, field: 'time', send: json({ message: 'x', time: [3] }) },
      { name: 'time negative, as a string', status: 400, field: 'time', send: json({ message: 'x', time: '-1' }) },
      {
        name: 'time above MAX_TASK_TIME_S, as a string',
        status: 400,
        field: 'time',
        send: json({ message: 'x', time: '3601' }),
      },
      { name: 'message a boolean', status: 400, field: 'message', send: json({ message: true, time: 3 }) },
      { name: 'message null', status: 400, field: 'message', send: json({ message: null, time: 3 }) },
      {
        name: 'message with a lone surrogate',
        status: 400,
        field: 'message',
        send: raw('{"message":"broken \\ud800 text","time":3}'),
      },
      { name: 'a JSON array', status: 400, field: 'body', send: raw('[{"message":"x","time":3}]') },
      { name: 'a bare number', status: 400, field: 'body', send: raw('3') },
      {
        name: 'a body over BODY_LIMIT_BYTES',
        status: 413,
        field: null,
        send: json({ message: 'x'.repeat(70_000), time: 3 }),
        says: /larger than the limit of 65536 bytes/,
      },
    ];

    it.each(cases)('$name → $status', async ({ status, field, send, says }) => {
      const before = await countRows();
      const res = await send(request(app).post('/tasks'));
      expect(res.status).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({ error: expect.any(String), message: expect.any(String) });
      if (field !== null) {
        expect(res.body.error).toBe('invalid_task');
        expect(namesField(res.body, field)).toBe(true);
      }
      if (says) expect(res.body.message).toMatch(says);
      expect(await countRows()).toBe(before);
    });

    it('answers 400 naming the body for a body sent as gzip that is not gzip', async () => {
      const before = await countRows();
      const res = await request(app)
        .post('/tasks')
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        .send(JSON.stringify(ORIGINAL_BODY));
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: 'invalid_body', details: [{ field: 'body' }] });
      expect(res.body.message).toMatch(/Content-Encoding/);
      expect(await countRows()).toBe(before);
    });

    it('reads a body that is gzip as its Content-Encoding says', async () => {
      const res = await request(app)
        .post('/tasks')
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', 'gzip')
        // Sent as the bytes they are, not serialized as JSON.
        .serialize((bytes) => bytes)
        .send(gzipSync(JSON.stringify(ORIGINAL_BODY)));
      expect(res.status).toBe(201);
      expect((await t.store.getTask(res.body.id))?.data).toEqual(ORIGINAL_BODY);
    });

    it('names every bad field at once', async () => {
      const res = await request(app).post('/tasks').send({ message: 7, time: -1, extra: true }).expect(400);
      expect(res.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['message', 'time']);
    });
  });
});

describe('GET /tasks/:id', () => {
  it('returns the task with its status, type, data, result, attempts, last error and timestamps', async () => {
    const { body } = await request(app).post('/tasks').send(ORIGINAL_BODY).expect(201);
    const res = await request(app).get(`/tasks/${body.id}`).expect(200);
    expect(res.body).toEqual({
      id: body.id,
      status: 'pending',
      type: 'simulated',
      data: ORIGINAL_BODY,
      result: null,
      attempts: 0,
      max_attempts: null,
      timeout_ms: null,
      last_error: null,
      run_at: null,
      priority: 0,
      group: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
      dispatched_at: null,
      finished_at: null,
    });
    const created = Date.parse(res.body.created_at);
    expect(Math.abs(created - Date.now())).toBeLessThan(60_000);
  });

  it('answers 404 for an unknown id', async () => {
    const res = await request(app).get('/tasks/999999999').expect(404);
    expect(res.body).toMatchObject({ error: 'not_found', message: expect.stringMatching(/999999999/) });
  });

  it('answers 400 for an id that is not percent-encoded properly, naming the path', async () => {
    const res = await request(app).get('/tasks/%ZZ').expect(400);
    expect(res.body).toMatchObject({ error: 'invalid_path', details: [{ field: 'path' }] });
    expect(res.body.message).toMatch(/%ZZ/);
  });

  it.each(['abc', '1.5', '-1', '0'])('answers 400 for the id %s', async (id) => {
    const res = await request(app).get(`/tasks/${id}`).expect(400);
    expect(res.body.error).toBe('invalid_id');
    expect(namesField(res.body, 'id')).toBe(true);
  });
});

describe('unknown routes', () => {
  it('answer 404 in JSON', async () => {
    const res = await request(app).get('/nothing-here').expect(404);
    expect(res.body).toMatchObject({ error: 'not_found' });
  });
});

describe('when the database is unreachable', () => {
  let down: Context;
  let downApp: Express;

  beforeAll(() => {
    down = databaseDown(t);
    downApp = createApp(down);
  });
  afterAll(async () => {
    await down.close();
  });

  it('answers POST with 503 in JSON, quickly', async () => {
    const started = Date.now();
    const res = await request(downApp).post('/tasks').send(ORIGINAL_BODY);
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/database is unavailable/) });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('answers GET with 503 in JSON, quickly', async () => {
    const started = Date.now();
    const res = await request(downApp).get('/tasks/1');
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/database is unavailable/) });
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
