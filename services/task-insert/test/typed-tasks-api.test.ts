import type { Express } from 'express';
import type { RowDataPacket } from 'mysql2/promise';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEnv } from '../../../test/support/test-env.js';
import { postTask, problemFields, typedApp } from './support/typed-app.js';

/**
 * POST /tasks with a `type`: the types of the HANDLERS module (here the examples' webhook and
 * primes, and echo, which has no schema), each body checked with its type's schema and stored
 * with the type's defaults; and the original's bodies read exactly as before beside them.
 */

let t: TestEnv;
let app: Express;

beforeAll(async () => {
  ({ t, app } = await typedApp());
});
afterAll(async () => {
  await t.cleanup();
});

const post = (body: unknown, key?: string) => postTask(app, body, key);
const fields = problemFields;

/** The row as stored, read around the store: its type columns and its data as JSON text. */
async function storedRow(id: number) {
  const [[row]] = await t.sql.query<RowDataPacket[]>(
    'SELECT type, timeout_ms, max_attempts, CAST(data AS CHAR) AS data FROM tasks WHERE id = ?',
    [id],
  );
  return {
    type: row!.type,
    timeout_ms: row!.timeout_ms,
    max_attempts: row!.max_attempts,
    data: JSON.parse(String(row!.data)),
  };
}

describe('a body with a type', () => {
  it('answers 400 for an unknown type, naming the known ones', async () => {
    const res = await post({ type: 'sendmail', to: 'x@example.com' }).expect(400);
    expect(res.body.error).toBe('invalid_task');
    expect(fields(res)).toEqual(['type']);
    for (const known of ['echo', 'primes', 'simulated', 'webhook']) expect(res.body.message).toContain(known);
    expect(res.body.message).toContain('"sendmail"');
  });

  it('answers 400 for a type that is not a string', async () => {
    const res = await post({ type: 5, message: 'm', time: 1 }).expect(400);
    expect(fields(res)).toEqual(['type']);
    expect(res.body.message).toMatch(/webhook/);
  });

  it("answers 400 for a body its type's schema refuses, naming each field at fault", async () => {
    const bad = await post({ type: 'webhook', url: 'ftp://example.com/x' }).expect(400);
    expect(fields(bad)).toEqual(['url']);
    expect(bad.body.message).toMatch(/^url /);
    expect(fields(await post({ type: 'primes' }).expect(400))).toEqual(['below']);
    expect(fields(await post({ type: 'primes', below: 2.5 }).expect(400))).toEqual(['below']);
    expect(fields(await post({ type: 'primes', below: 1, timeout_ms: 0 }).expect(400)).sort()).toEqual([
      'below',
      'timeout_ms',
    ]);
  });

  it("stores the type, the body without its control fields as data, and the type's timeout and attempts", async () => {
    const body = { type: 'webhook', url: 'https://example.com/hook', payload: { hello: ['world', 1, null] } };
    const res = await post(body).expect(201);
    expect(res.body).toEqual({ id: expect.any(Number), message: 'Task created successfully', status: 'pending' });
    expect(await storedRow(res.body.id)).toEqual({
      type: 'webhook',
      timeout_ms: 10_000,
      max_attempts: 5,
      data: { url: 'https://example.com/hook', payload: { hello: ['world', 1, null] } },
    });
    const view = await request(app).get(`/tasks/${res.body.id}`).expect(200);
    expect(view.body).toMatchObject({
      status: 'pending',
      type: 'webhook',
      data: { url: 'https://example.com/hook', payload: { hello: ['world', 1, null] } },
      result: null,
      timeout_ms: 10_000,
      max_attempts: 5,
    });
  });

  it("stores the body's own timeout_ms over the type's, and no attempts when the type sets none", async () => {
    const res = await post({ type: 'primes', below: 1_000, timeout_ms: 2_500 }).expect(201);
    expect(await storedRow(res.body.id)).toEqual({
      type: 'primes',
      timeout_ms: 2_500,
      max_attempts: null,
      data: { below: 1_000 },
    });
  });

  it('stores what the schema made of the body, and names the fields it dropped', async () => {
    const res = await post({ type: 'primes', below: 50, colour: 'blue' }).expect(201);
    expect(res.body.ignored_fields).toEqual(['colour']);
    expect((await t.ctx.store.getTask(res.body.id))?.data).toEqual({ below: 50 });
  });

  it('takes any JSON object for a type without a schema, and no timeout when neither body nor type sets one', async () => {
    const body = { type: 'echo', anything: { nested: [1, 2, { deep: true }] }, message: 7 };
    const res = await post(body).expect(201);
    expect(res.body.ignored_fields).toBeUndefined();
    expect(await storedRow(res.body.id)).toEqual({
      type: 'echo',
      timeout_ms: null,
      max_attempts: null,
      data: { anything: { nested: [1, 2, { deep: true }] }, message: 7 },
    });
  });

  it.each([
    [0, 400],
    [1, 201],
    [86_400_000, 201],
    [86_400_001, 400],
    [1.5, 400],
    ['100', 400],
    [true, 400],
    [null, 201],
  ])('timeout_ms %j answers %i', async (timeout, status) => {
    const res = await post({ type: 'echo', timeout_ms: timeout }).expect(status);
    if (status === 400) expect(fields(res)).toEqual(['timeout_ms']);
    else expect((await t.ctx.store.getTask(res.body.id))?.timeoutMs).toBe(timeout);
  });
});

describe("the original's bodies beside the types", () => {
  it('reads "type":"simulated" as the original body: its rules, its fields, no timeout of its own', async () => {
    const bad = await post({ type: 'simulated', message: 'm', time: '3.5' }).expect(400);
    expect(fields(bad)).toEqual(['time']);
    const res = await post({ type: 'simulated', message: 'm', time: '3', timeout_ms: 5 }).expect(201);
    expect(res.body.ignored_fields).toEqual(['timeout_ms']);
    expect(await storedRow(res.body.id)).toEqual({
      type: 'simulated',
      timeout_ms: null,
      max_attempts: null,
      data: { message: 'm', time: 3 },
    });
  });

  it('reads a body without a type (or with a null one) as before, other fields ignored and named', async () => {
    const res = await post({ message: 'spiderman 3', time: 3, timeout_ms: 9, type: null, url: 'x' }).expect(201);
    expect(res.body).toEqual({
      id: expect.any(Number),
      message: 'Task created successfully',
      status: 'pending',
      ignored_fields: ['timeout_ms', 'type', 'url'],
    });
    expect(await storedRow(res.body.id)).toEqual({
      type: 'simulated',
      timeout_ms: null,
      max_attempts: null,
      data: { message: 'spiderman 3', time: 3 },
    });
  });

  it('inserts typed and original bodies arriving together, each as its own', async () => {
    const bodies = Array.from({ length: 60 }, (_, i) =>
      i % 2 === 0
        ? { message: `original ${i}`, time: i % 4 }
        : { type: 'primes', below: 100 + i, timeout_ms: 1_000 + i },
    );
    const answers = await Promise.all(bodies.map((body) => post(body)));
    for (const [i, res] of answers.entries()) {
      expect(res.status).toBe(201);
      const task = await t.ctx.store.getTask(res.body.id);
      if (i % 2 === 0) {
        expect(task).toMatchObject({ type: 'simulated', data: bodies[i], timeoutMs: null, maxAttempts: null });
      } else {
        expect(task).toMatchObject({ type: 'primes', data: { below: 100 + i }, timeoutMs: 1_000 + i });
      }
    }
  });
});

describe('a typed body with an Idempotency-Key', () => {
  it('replays the same body (its keys in any order) as the first task', async () => {
    const first = await post({ type: 'webhook', url: 'https://example.com/a', payload: { a: 1, b: 2 } }, 'typed-1');
    const again = await post({ payload: { b: 2, a: 1 }, url: 'https://example.com/a', type: 'webhook' }, 'typed-1');
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.id).toBe(first.body.id);
  });

  it('answers 422 when the data, the timeout or the type differs from the first', async () => {
    await post({ type: 'webhook', url: 'https://example.com/b' }, 'typed-2').expect(201);
    await post({ type: 'webhook', url: 'https://example.com/c' }, 'typed-2').expect(422);
    await post({ type: 'webhook', url: 'https://example.com/b', timeout_ms: 5 }, 'typed-2').expect(422);
    await post({ type: 'echo', url: 'https://example.com/b' }, 'typed-2').expect(422);
    await post({ message: 'https://example.com/b', time: 0 }, 'typed-2').expect(422);
    await post({ message: 'm', time: 0 }, 'original-2').expect(201);
    await post({ type: 'echo', message: 'm', time: 0 }, 'original-2').expect(422);
    await post({ type: 'simulated', message: 'm', time: '0' }, 'original-2').expect(201);
  });
});
