import type { InsertOutcome, NewTask } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';

/**
 * Typed tasks and the original's go through the same batched insert: a typed task's row holds
 * its type, its own deadline and attempts; the original's keeps the columns' defaults, so its
 * row, and the message a claim makes of it, are what they always were.
 */

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

const original = (i: number): NewTask => ({ data: { message: `original ${i}`, time: i % 3 }, idempotencyKey: null });
const typed = (i: number): NewTask => ({
  type: 'webhook',
  data: { url: `https://example.com/${i}`, payload: { n: i, list: [1, 'two', null] } },
  idempotencyKey: `typed-${i}`,
  timeoutMs: 1_000 + i,
  maxAttempts: i % 2 === 0 ? 5 : null,
});

describe('inserting typed tasks', () => {
  it('stores typed and original tasks of one batch each with its own columns, in order', async () => {
    const tasks = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? typed(i) : original(i)));
    const outcomes = await t.ctx.store.insert(tasks);
    const ids = outcomes.map(idOf);
    expect(new Set(ids).size).toBe(tasks.length);
    for (const [i, id] of ids.entries()) {
      const task = await t.ctx.store.getTask(id);
      if (i % 3 === 0) {
        expect(task).toMatchObject({
          status: 'pending',
          type: 'webhook',
          data: { url: `https://example.com/${i}`, payload: { n: i, list: [1, 'two', null] } },
          result: null,
          timeoutMs: 1_000 + i,
          maxAttempts: i % 2 === 0 ? 5 : null,
          idempotencyKey: `typed-${i}`,
        });
      } else {
        expect(task).toMatchObject({
          status: 'pending',
          type: 'simulated',
          data: { message: `original ${i}`, time: i % 3 },
          result: null,
          timeoutMs: null,
          maxAttempts: null,
          idempotencyKey: null,
        });
      }
    }
  });

  it("leaves the original's task with the columns' defaults, so its message is the original's, byte for byte", async () => {
    const [first, second] = (await t.ctx.store.insert([original(7), { ...original(8), type: 'simulated' }])).map(idOf);
    const { dispatched } = await t.ctx.store.claim(1_000);
    const { leased } = await t.ctx.store.fetch(1_000, 60_000);
    const raws = new Map(leased.map((l) => [l.message?.id, l.raw]));
    expect(dispatched.map((m) => m.id)).toEqual(expect.arrayContaining([first, second]));
    expect(raws.get(first)).toBe(`{"id":${first},"message":"original 7","time":1,"tries":0,"run":1}`);
    expect(raws.get(second)).toBe(`{"id":${second},"message":"original 8","time":2,"tries":0,"run":1}`);
    await t.ctx.store.dismiss(leased.map((l) => ({ token: l.token, id: l.message?.id ?? 0 })));
  });

  it('refuses a task whose data is no JSON value, alone', async () => {
    const outcomes = await t.ctx.store.insert([original(1), { ...typed(2), data: undefined }, original(3)]);
    expect('id' in outcomes[0]!).toBe(true);
    expect(outcomes[1]).toEqual({ error: expect.any(Error) });
    expect('id' in outcomes[2]!).toBe(true);
  });
});
