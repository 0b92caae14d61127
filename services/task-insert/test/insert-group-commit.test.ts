import type { Express } from 'express';
import type { RowDataPacket } from 'mysql2/promise';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
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

describe('POST /tasks under concurrent load (inserts share transactions)', () => {
  it('answers each request with the id of its own task', async () => {
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        request(app)
          .post('/tasks')
          .send({ message: `concurrent ${i}`, time: i % 5 }),
      ),
    );
    const ids = responses.map((res) => {
      expect(res.status).toBe(201);
      return res.body.id as number;
    });
    expect(new Set(ids).size).toBe(60);
    for (const [i, id] of ids.entries()) {
      expect((await t.store.getTask(id))?.data).toEqual({ message: `concurrent ${i}`, time: i % 5 });
    }
  });

  it('replays a repeated Idempotency-Key sent at the same time as the first', async () => {
    const responses = await Promise.all(
      Array.from({ length: 6 }, () =>
        request(app).post('/tasks').set('Idempotency-Key', 'same-time').send({ message: 'once', time: 1 }),
      ),
    );
    for (const res of responses) expect(res.status).toBe(201);
    const ids = new Set(responses.map((res) => res.body.id as number));
    expect(ids.size).toBe(1);
    expect(responses.filter((res) => res.headers['idempotent-replayed'] === 'true')).toHaveLength(5);
  });

  it('fails only the request with a lone surrogate among 40 honest ones sent with it', async () => {
    const [[before]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
    const honest = Array.from({ length: 40 }, (_, i) =>
      request(app)
        .post('/tasks')
        .send({ message: `honest ${i}`, time: 1 }),
    );
    const broken = request(app)
      .post('/tasks')
      .set('Content-Type', 'application/json')
      .send('{"message":"lone \\ud800 surrogate","time":1}');
    const [bad, ...good] = await Promise.all([broken, ...honest]);
    expect(good.map((res) => res.status)).toEqual(Array(40).fill(201));
    expect(bad!.status).toBe(400);
    expect(bad!.body.details).toEqual([{ field: 'message', message: expect.stringMatching(/well-formed Unicode/) }]);
    const [[after]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
    expect(Number(after!.n) - Number(before!.n)).toBe(40);
  });
});
