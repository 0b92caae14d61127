import { DuplicateIdempotencyKeyError, getTask, type InsertOutcome, insertTask, insertTasks } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

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
        expect((await getTask(t.ctx.pool, idOf(outcome)))?.data.message).toBe(`batch ${b} task ${i}`);
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
    expect((await getTask(t.ctx.pool, idOf(outcomes[0])))?.data.message).toBe('a');
    const b = await getTask(t.ctx.pool, idOf(outcomes[2]));
    expect(b).toMatchObject({ data: { message: 'b', time: 0 }, idempotencyKey: 'key-new' });
    expect((await getTask(t.ctx.pool, firstId))?.data.message).toBe('first');
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
});
