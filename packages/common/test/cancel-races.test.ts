import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dispatchedTasks, leaseAll } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';

/**
 * A cancel and a completion of the same task, at the same moment, a thousand times: every task
 * ends in exactly one final status, reached once and never left, whichever came first; and the
 * counts are the table's.
 */

let t: TestEnv;
beforeAll(async () => {
  t = await createTestEnv();
  // Every status change: a final status must be reached once and never left.
  await t.sql.query(`CREATE TABLE status_history (
    task_id BIGINT UNSIGNED NOT NULL,
    old_status VARCHAR(16) NOT NULL,
    new_status VARCHAR(16) NOT NULL
  )`);
  await t.sql.query(`CREATE TRIGGER tasks_history AFTER UPDATE ON tasks FOR EACH ROW
    INSERT INTO status_history (task_id, old_status, new_status)
    SELECT NEW.id, OLD.status, NEW.status FROM DUAL WHERE OLD.status <> NEW.status`);
});
afterAll(async () => {
  await t.cleanup();
});

describe('cancel against completion', () => {
  it('1,000 races: each task ends completed or cancelled, once, and stays so', async () => {
    const total = 1_000;
    await dispatchedTasks(t.ctx, total);
    const leased = await leaseAll(t.ctx);
    expect(leased).toHaveLength(total);

    // Each task's cancel and its completion sent together, the completions in batches as an
    // executor sends them; the cancels first for one batch, the completion first for the next.
    const cancels: Promise<unknown>[] = [];
    const completions: Promise<unknown>[] = [];
    for (let i = 0; i < total; i += 50) {
      const batch = leased.slice(i, i + 50);
      const cancel = () => cancels.push(...batch.map(({ message }) => t.ctx.store.cancel(message.id)));
      const complete = () =>
        completions.push(
          t.ctx.store.complete(
            batch.map(({ token, message }) => ({ id: message.id, run: message.run, tries: message.tries, token })),
          ),
        );
      if ((i / 50) % 2 === 0) {
        cancel();
        complete();
      } else {
        complete();
        cancel();
      }
    }
    const outcomes = await Promise.all(cancels);
    await Promise.all(completions);

    const [rows] = await t.sql.query<RowDataPacket[]>('SELECT id, status FROM tasks ORDER BY id');
    const statuses = new Map(rows.map((r) => [Number(r.id), String(r.status)]));
    const [history] = await t.sql.query<RowDataPacket[]>('SELECT task_id, old_status, new_status FROM status_history');
    const finals = new Map<number, string[]>();
    for (const h of history) {
      const id = Number(h.task_id);
      if (['completed', 'failed', 'cancelled'].includes(String(h.old_status))) {
        throw new Error(`task ${id} left its final status ${h.old_status} for ${h.new_status}`);
      }
      if (['completed', 'failed', 'cancelled'].includes(String(h.new_status))) {
        finals.set(id, [...(finals.get(id) ?? []), String(h.new_status)]);
      }
    }
    for (const [i, { message }] of leased.entries()) {
      const status = statuses.get(message.id);
      expect(['completed', 'cancelled']).toContain(status);
      // One final status each, the one the task has.
      expect(finals.get(message.id)).toEqual([status]);
      // The cancel says what happened: cancelled when it won, the task's final status when it lost.
      const outcome = outcomes[i];
      if (status === 'cancelled') expect(outcome).toMatchObject({ cancelled: true, was: 'processing' });
      else expect(outcome).toMatchObject({ cancelled: false, reason: 'finished', status: 'completed' });
    }
    const cancelled = [...statuses.values()].filter((s) => s === 'cancelled').length;
    const counts = (await t.ctx.store.stats()).tasks;
    expect(counts).toEqual({
      pending: 0,
      processing: 0,
      completed: total - cancelled,
      failed: 0,
      cancelled,
      delayed: 0,
    });
    // Both kinds happened: the races were races.
    expect(cancelled).toBeGreaterThan(0);
    expect(cancelled).toBeLessThan(total);
  });
});
