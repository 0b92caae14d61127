import { insertTask, inTransaction } from '@tasks/common';
import type { PoolConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';

let t: TestEnv;
beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

describe('inTransaction', () => {
  it('runs again a transaction the server rolled back for a deadlock, so both sides commit', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const b = await insertTask(t.ctx.pool, { message: 'b', time: 0 });
    let bothLockedFirst: () => void = () => undefined;
    const firstLocks = new Promise<void>((resolve) => {
      let n = 0;
      bothLockedFirst = () => {
        if (++n === 2) resolve();
      };
    });
    const runs = { ab: 0, ba: 0 };
    // Each locks one row, waits until the other has locked its own, then wants the other's.
    const crossing = (first: number, second: number, key: 'ab' | 'ba') =>
      inTransaction(t.ctx.pool, async (connection: PoolConnection) => {
        runs[key]++;
        await connection.query('UPDATE tasks SET attempts = attempts + 1 WHERE id = ?', [first]);
        if (runs[key] === 1) {
          bothLockedFirst();
          await firstLocks;
        }
        await connection.query('UPDATE tasks SET attempts = attempts + 1 WHERE id = ?', [second]);
      });
    await Promise.all([crossing(a, b, 'ab'), crossing(b, a, 'ba')]);
    // One of them was chosen as the deadlock's victim and ran twice; both committed once.
    expect(runs.ab + runs.ba).toBe(3);
    const [rows] = (await t.ctx.pool.query('SELECT attempts FROM tasks WHERE id IN (?) ORDER BY id', [
      [a, b],
    ])) as unknown as [{ attempts: number }[]];
    expect(rows.map((r) => r.attempts)).toEqual([2, 2]);
  });
});
