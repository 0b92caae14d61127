import type { Express } from 'express';
import type { RowDataPacket } from 'mysql2/promise';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

/**
 * A server that refuses writes for now (`read_only`, a Group Replication secondary, a demoted
 * primary) answers them with error 1290. Setting `read_only` on the shared test server would
 * refuse the writes of every other test file, so triggers on this file's own database raise
 * the same error, from the server, for the statements that write `tasks`.
 */

let t: TestEnv;
let app: Express;

beforeAll(async () => {
  t = await createTestEnv();
  app = createApp(t.ctx);
});
afterEach(async () => {
  await t.sql.query('DROP TRIGGER IF EXISTS refuse_inserts');
  await t.sql.query('DROP TRIGGER IF EXISTS refuse_updates');
});
afterAll(async () => {
  await t.cleanup();
});

const READ_ONLY =
  "SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1290, MESSAGE_TEXT = 'The MySQL server is running with the --read-only option so it cannot execute this statement'";

async function refuse(event: 'INSERT' | 'UPDATE'): Promise<void> {
  const name = event === 'INSERT' ? 'refuse_inserts' : 'refuse_updates';
  await t.sql.query(`CREATE TRIGGER ${name} BEFORE ${event} ON tasks FOR EACH ROW ${READ_ONLY}`);
}

async function countRows(): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
  return Number(row!.n);
}

const unavailable = { error: 'unavailable', message: expect.stringMatching(/database is unavailable/) };

describe('while the database refuses writes (error 1290, read-only)', () => {
  it('answers POST /tasks 503 unavailable, and stores nothing', async () => {
    await refuse('INSERT');
    const before = await countRows();
    const res = await request(app).post('/tasks').send({ message: 'refused', time: 1 });
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
    expect(await countRows()).toBe(before);
  });

  it('answers every POST of a batch 503, and stores none of them', async () => {
    await refuse('INSERT');
    const before = await countRows();
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        request(app)
          .post('/tasks')
          .send({ message: `refused ${i}`, time: 1 }),
      ),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(503));
    for (const reply of replies) expect(reply.body).toEqual(unavailable);
    expect(await countRows()).toBe(before);
  });

  it('answers POST /tasks/:id/retry 503, and the task stays failed', async () => {
    const failed = await deadLetteredTask(t, { message: 'stays failed' });
    await refuse('UPDATE');
    const res = await request(app).post(`/tasks/${failed.id}/retry`).set('Content-Type', 'application/json');
    expect(res.status).toBe(503);
    expect(res.body).toEqual(unavailable);
    expect(await t.store.getTask(failed.id)).toEqual(failed);
  });

  it('takes writes again once the server does', async () => {
    const res = await request(app).post('/tasks').send({ message: 'accepted', time: 1 }).expect(201);
    expect((await t.store.getTask(res.body.id))?.status).toBe('pending');
  });
});
