import { DuplicateIdempotencyKeyError, type InsertOutcome, TaskRejectedError } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertTask, insertTasks } from '../src/tasks/insert-tasks.js';
import { getTask } from '../src/tasks/task-reads.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

async function countRows(): Promise<number> {
  const [[row]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
  return Number(row!.n);
}

function idOf(outcome: InsertOutcome | undefined): number {
  if (!outcome || 'error' in outcome) throw new Error(`expected an id, got ${JSON.stringify(outcome)}`);
  return outcome.id;
}

describe('insertTasks', () => {
  it('gives each task of a batch its own id, the one of its own row', async () => {
    const tasks = Array.from({ length: 50 }, (_, i) => ({
      data: { message: `task ${i}`, time: i },
      idempotencyKey: null,
    }));
    const outcomes = await insertTasks(t.ctx.pool, tasks);
    const ids = outcomes.map(idOf);
    expect(new Set(ids).size).toBe(50);
    for (const [i, id] of ids.entries()) {
      expect(await getTask(t.ctx.pool, id)).toMatchObject({
        status: 'pending',
        data: { message: `task ${i}`, time: i },
      });
    }
  });

  it('keeps the ids right when batches from several callers run at once', async () => {
    const batches = Array.from({ length: 8 }, (_, b) =>
      Array.from({ length: 25 }, (_, i) => ({
        data: { message: `batch ${b} task ${i}`, time: 0 },
        idempotencyKey: null,
      })),
    );
    const results = await Promise.all(batches.map((batch) => insertTasks(t.ctx.pool, batch)));
    const all = results.flat().map(idOf);
    expect(new Set(all).size).toBe(200);
    for (const [b, outcomes] of results.entries()) {
      for (const [i, outcome] of outcomes.entries()) {
        expect((await getTask(t.ctx.pool, idOf(outcome)))?.data).toMatchObject({ message: `batch ${b} task ${i}` });
      }
    }
  });

  it('reports a taken Idempotency-Key for that task alone and inserts the rest of the batch', async () => {
    const firstId = await insertTask(t.ctx.pool, { message: 'first', time: 1 }, 'key-taken');
    const outcomes = await insertTasks(t.ctx.pool, [
      { data: { message: 'a', time: 0 }, idempotencyKey: null },
      { data: { message: 'again', time: 1 }, idempotencyKey: 'key-taken' },
      { data: { message: 'b', time: 0 }, idempotencyKey: 'key-new' },
      { data: { message: 'b twice', time: 0 }, idempotencyKey: 'key-new' },
    ]);
    expect(outcomes[1]).toEqual({ error: expect.any(DuplicateIdempotencyKeyError) });
    expect(outcomes[3]).toEqual({ error: expect.any(DuplicateIdempotencyKeyError) });
    expect((await getTask(t.ctx.pool, idOf(outcomes[0])))?.data).toMatchObject({ message: 'a' });
    const b = await getTask(t.ctx.pool, idOf(outcomes[2]));
    expect(b).toMatchObject({ data: { message: 'b', time: 0 }, idempotencyKey: 'key-new' });
    expect((await getTask(t.ctx.pool, firstId))?.data).toMatchObject({ message: 'first' });
  });

  it('inserts one task with a plain INSERT and reports its taken key', async () => {
    const [created] = await insertTasks(t.ctx.pool, [
      { data: { message: 'alone', time: 2 }, idempotencyKey: 'key-alone' },
    ]);
    expect((await getTask(t.ctx.pool, idOf(created)))?.data).toEqual({ message: 'alone', time: 2 });
    const [again] = await insertTasks(t.ctx.pool, [
      { data: { message: 'alone', time: 2 }, idempotencyKey: 'key-alone' },
    ]);
    expect(again).toEqual({ error: expect.any(DuplicateIdempotencyKeyError) });
  });

  it('inserts a batch with one INSERT whatever the auto-increment lock mode, ids in the order sent', async () => {
    const [[server]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT @@innodb_autoinc_lock_mode AS mode');
    const tasks = Array.from({ length: 30 }, (_, i) => ({
      data: { message: `one statement ${i}`, time: i },
      idempotencyKey: null,
    }));
    const outcomes = await insertTasks(t.ctx.pool, tasks);
    const ids = outcomes.map(idOf);
    expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    // One statement: every row of the batch carries the same marker.
    const [rows] = await t.ctx.pool.query<RowDataPacket[]>(
      'SELECT COUNT(DISTINCT insert_batch) AS markers, COUNT(*) AS n FROM tasks WHERE id IN (?)',
      [ids],
    );
    expect({ mode: server!.mode, markers: Number(rows[0]!.markers), n: Number(rows[0]!.n) }).toEqual({
      mode: server!.mode,
      markers: 1,
      n: 30,
    });
  });

  it('keeps the ids right when batches with Idempotency-Keys run at once', async () => {
    const batches = Array.from({ length: 6 }, (_, b) =>
      Array.from({ length: 20 }, (_, i) => ({
        data: { message: `keyed batch ${b} task ${i}`, time: 0 },
        idempotencyKey: i % 3 === 0 ? `keyed-${b}-${i}` : null,
      })),
    );
    const results = await Promise.all(batches.map((batch) => insertTasks(t.ctx.pool, batch)));
    for (const [b, outcomes] of results.entries()) {
      for (const [i, outcome] of outcomes.entries()) {
        const task = await getTask(t.ctx.pool, idOf(outcome));
        expect(task?.data).toMatchObject({ message: `keyed batch ${b} task ${i}` });
        expect(task?.idempotencyKey).toBe(i % 3 === 0 ? `keyed-${b}-${i}` : null);
      }
    }
  });

  it('fails only the task whose values the database refuses, and inserts the rest of its batch', async () => {
    const before = await countRows();
    const outcomes = await insertTasks(t.ctx.pool, [
      ...Array.from({ length: 20 }, (_, i) => ({ data: { message: `honest ${i}`, time: 1 }, idempotencyKey: null })),
      // Not well-formed Unicode: the server refuses it as JSON text.
      { data: { message: 'lone \ud800 surrogate', time: 1 }, idempotencyKey: null },
      // Not ASCII: the key column refuses it.
      { data: { message: 'accented key', time: 1 }, idempotencyKey: 'clé' },
      ...Array.from({ length: 20 }, (_, i) => ({
        data: { message: `honest ${20 + i}`, time: 1 },
        idempotencyKey: null,
      })),
    ]);
    expect(outcomes[20]).toEqual({ error: expect.any(TaskRejectedError) });
    expect((outcomes[20] as { error: TaskRejectedError }).error.column).toBe('data');
    expect(outcomes[21]).toEqual({ error: expect.any(TaskRejectedError) });
    expect((outcomes[21] as { error: TaskRejectedError }).error.column).toBe('idempotency_key');
    const honest = [...outcomes.slice(0, 20), ...outcomes.slice(22)];
    for (const [i, outcome] of honest.entries()) {
      expect((await getTask(t.ctx.pool, idOf(outcome)))?.data).toEqual({ message: `honest ${i}`, time: 1 });
    }
    expect(await countRows()).toBe(before + 40);
  });

  it('reports a refused task inserted alone as refused', async () => {
    const [outcome] = await insertTasks(t.ctx.pool, [
      { data: { message: 'lone \udc00', time: 1 }, idempotencyKey: null },
    ]);
    expect(outcome).toEqual({ error: expect.any(TaskRejectedError) });
  });

  it('inserts a batch larger than the server takes in one packet, in statements that each fit', async () => {
    const [[server]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT @@max_allowed_packet AS packet');
    const packet = Number(server!.packet);
    // Tasks of a MiB each, together a packet and a quarter: one INSERT of them all is too large.
    const message = 'é'.repeat(512 * 1024);
    const count = Math.ceil((1.25 * packet) / (1024 * 1024));
    const before = await countRows();
    const outcomes = await insertTasks(
      t.ctx.pool,
      Array.from({ length: count }, (_, i) => ({ data: { message, time: i }, idempotencyKey: null })),
    );
    const ids = outcomes.map(idOf);
    expect(new Set(ids).size).toBe(count);
    expect(await countRows()).toBe(before + count);
    const [rows] = await t.ctx.pool.query<RowDataPacket[]>(
      'SELECT id, JSON_EXTRACT(data, "$.time") AS time, CHAR_LENGTH(JSON_UNQUOTE(JSON_EXTRACT(data, "$.message"))) AS length FROM tasks WHERE id IN (?)',
      [ids],
    );
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    for (const [i, id] of ids.entries()) {
      expect(Number(byId.get(id)?.time)).toBe(i);
      expect(Number(byId.get(id)?.length)).toBe(message.length);
    }
  });

  it('inserts 200,000 tasks given at once, each told its own id', async () => {
    const count = 200_000;
    const before = await countRows();
    const outcomes = await insertTasks(
      t.ctx.pool,
      Array.from({ length: count }, (_, i) => ({ data: { message: '', time: i }, idempotencyKey: null })),
    );
    expect(outcomes).toHaveLength(count);
    const ids = outcomes.map(idOf);
    expect(new Set(ids).size).toBe(count);
    expect(await countRows()).toBe(before + count);
    for (const i of [0, 99_999, count - 1]) {
      expect((await getTask(t.ctx.pool, ids[i] as number))?.data).toEqual({ message: '', time: i });
    }
  }, 60_000);

  it('refuses a task larger than the server takes in one packet, naming its data, and inserts the rest', async () => {
    const [[server]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT @@max_allowed_packet AS packet');
    const packet = Number(server!.packet);
    const before = await countRows();
    const outcomes = await insertTasks(t.ctx.pool, [
      { data: { message: 'before', time: 0 }, idempotencyKey: null },
      { data: { message: 'x'.repeat(packet), time: 0 }, idempotencyKey: null },
      { data: { message: 'after', time: 0 }, idempotencyKey: null },
    ]);
    expect(outcomes[1]).toEqual({ error: expect.any(TaskRejectedError) });
    const refusal = (outcomes[1] as { error: TaskRejectedError }).error;
    expect(refusal.column).toBe('data');
    expect(refusal.message).toContain('max_allowed_packet');
    expect((await getTask(t.ctx.pool, idOf(outcomes[0])))?.data).toEqual({ message: 'before', time: 0 });
    expect((await getTask(t.ctx.pool, idOf(outcomes[2])))?.data).toEqual({ message: 'after', time: 0 });
    expect(await countRows()).toBe(before + 2);
    const [alone] = await insertTasks(t.ctx.pool, [
      { data: { message: 'y'.repeat(packet), time: 0 }, idempotencyKey: null },
    ]);
    expect(alone).toEqual({ error: expect.any(TaskRejectedError) });
  });

  it('leaves the table in the REDUNDANT row format', async () => {
    const [[table]] = await t.ctx.pool.query<RowDataPacket[]>(
      "SELECT row_format AS format FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tasks'",
    );
    expect(table!.format).toBe('Redundant');
  });
});
