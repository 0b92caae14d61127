import type { Express } from 'express';
import type { RowDataPacket } from 'mysql2/promise';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestEnv } from '../../../test/support/test-env.js';
import { postTask, problemFields, typedApp } from './support/typed-app.js';

/**
 * POST /tasks with run_at, delay_ms, priority and group, against MySQL and Redis: what is
 * stored and shown, what is refused (naming the field), and that the original's task and
 * message stay what they were.
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

describe('POST /tasks: when, in what order, in which group', () => {
  it('delay_ms: stored delayed, due that long after by MySQL’s clock, shown with run_at and counted', async () => {
    const before = (await t.store.stats()).tasks.delayed;
    const res = await post({ message: 'later', time: 0, delay_ms: 60_000 }).expect(201);
    expect(res.body).toMatchObject({ status: 'delayed', message: 'Task created successfully' });
    expect(res.body.ignored_fields).toBeUndefined();
    const [[row]] = await t.sql.query<RowDataPacket[]>(
      'SELECT status, TIMESTAMPDIFF(MICROSECOND, created_at, run_at) DIV 1000 AS ms FROM tasks WHERE id = ?',
      [res.body.id],
    );
    expect(row).toEqual({ status: 'delayed', ms: 60_000 });
    const view = (await request(app).get(`/tasks/${res.body.id}`).expect(200)).body;
    expect(view).toMatchObject({ status: 'delayed', priority: 0, group: null, data: { message: 'later', time: 0 } });
    expect(Date.parse(view.run_at) - Date.parse(view.created_at)).toBe(60_000);
    expect((await t.store.stats()).tasks.delayed).toBe(before + 1);
  });

  it('run_at: an instant with its offset, stored as that instant', async () => {
    const at = '2027-01-02T03:04:05.678+02:00';
    const res = await post({ message: 'at', time: 0, run_at: at }).expect(201);
    const view = (await request(app).get(`/tasks/${res.body.id}`).expect(200)).body;
    expect(view.run_at).toBe('2027-01-02T01:04:05.678Z');
  });

  it('priority and group: stored and shown; the message of the original’s task is unchanged', async () => {
    const res = await post({ message: 'urgent', time: 1, priority: 900, group: 'tenant-a:eu' }).expect(201);
    expect(res.body).toMatchObject({ status: 'pending' });
    expect(res.body.ignored_fields).toBeUndefined();
    expect((await request(app).get(`/tasks/${res.body.id}`)).body).toMatchObject({
      priority: 900,
      group: 'tenant-a:eu',
      data: { message: 'urgent', time: 1 },
    });
    const { dispatched } = await t.store.claim(1_000);
    expect(dispatched.map((m) => m.id)).toContain(res.body.id);
    const raw = await t.redis.lrange(t.keys.tasks.ready, 0, -1);
    expect(raw).toContain(`{"id":${res.body.id},"message":"urgent","time":1,"tries":0,"run":1}`);
  });

  it('a typed task: the scheduling fields steer it and are not its data', async () => {
    const res = await post({ type: 'echo', text: 'hi', priority: -3, group: 'g', delay_ms: 1_000 }).expect(201);
    expect(res.body.status).toBe('delayed');
    expect((await request(app).get(`/tasks/${res.body.id}`)).body).toMatchObject({
      type: 'echo',
      data: { text: 'hi' },
      priority: -3,
      group: 'g',
    });
  });

  it.each([
    [{ run_at: '2026-12-03T14:00:00' }, ['run_at']],
    [{ run_at: 'tomorrow' }, ['run_at']],
    [{ run_at: 1_764_770_400_000 }, ['run_at']],
    [{ run_at: '2099-01-01T00:00:00Z' }, ['run_at']],
    [{ delay_ms: -1 }, ['delay_ms']],
    [{ delay_ms: 1.5 }, ['delay_ms']],
    [{ delay_ms: '1000' }, ['delay_ms']],
    [{ delay_ms: 365 * 86_400_000 + 1 }, ['delay_ms']],
    [{ run_at: '2027-01-01T00:00:00Z', delay_ms: 5 }, ['delay_ms']],
    [{ priority: 1_001 }, ['priority']],
    [{ priority: -1_001 }, ['priority']],
    [{ priority: '5' }, ['priority']],
    [{ priority: 2.5 }, ['priority']],
    [{ group: '' }, ['group']],
    [{ group: 'a b' }, ['group']],
    [{ group: 'x'.repeat(65) }, ['group']],
    [{ group: 7 }, ['group']],
    [{ time: 'soon', priority: 'high' }, ['time', 'priority']],
  ])('%j is refused with 400 naming %j, and nothing is stored', async (fieldsGiven, named) => {
    const [[before]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
    const res = await post({ message: 'm', time: 0, ...fieldsGiven });
    expect(res.status).toBe(400);
    expect(fields(res)).toEqual(named);
    const [[after]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
    expect(after?.n).toBe(before?.n);
  });

  it('null is as if left out', async () => {
    const res = await post({ message: 'n', time: 0, run_at: null, delay_ms: null, priority: null, group: null });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('pending');
  });

  it('an Idempotency-Key replayed with another priority or group is refused; with the same, the first task', async () => {
    const first = await post({ message: 'once', time: 0, priority: 5, group: 'g1' }, 'sched-key-1').expect(201);
    const again = await post({ message: 'once', time: 0, priority: 5, group: 'g1' }, 'sched-key-1').expect(201);
    expect(again.body.id).toBe(first.body.id);
    await post({ message: 'once', time: 0, priority: 6, group: 'g1' }, 'sched-key-1').expect(422);
    await post({ message: 'once', time: 0, priority: 5, group: 'g2' }, 'sched-key-1').expect(422);
  });

  it('a delayed task can be cancelled: it never becomes pending', async () => {
    const { id } = (await post({ message: 'never', time: 0, delay_ms: 200 }).expect(201)).body;
    const res = await request(app).post(`/tasks/${id}/cancel`).expect(200);
    expect(res.body).toMatchObject({ id, status: 'cancelled' });
    await new Promise((r) => setTimeout(r, 300));
    await t.store.promoteDue(1_000);
    expect((await t.store.getTask(id))?.status).toBe('cancelled');
  });
});
