import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { databaseSettings } from '../src/context.js';
import { createDatabase, type Database } from '../src/mysql/database.js';
import { withNamedLock } from '../src/mysql/named-lock.js';
import { insertTasks } from '../src/tasks/insert-tasks.js';
import { countByStatus } from '../src/tasks/status-counts.js';
import { claimPending } from '../src/tasks/transitions/claim-and-dispatch.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;
let pools: Database[] = [];
beforeEach(async () => {
  t = await createTestEnv();
});
afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  pools = [];
  await t.cleanup();
});

describe('named locks through a failover', () => {
  it("keep the work's result when the lock's connection is lost (the lock went with it)", async () => {
    const result = await withNamedLock(t.ctx.pool, 'failover', async (locked) => {
      expect(locked).toBe(true);
      // As a primary that dies takes its sessions and their locks with it.
      const [[{ holder }]] = (await t.ctx.pool.query(
        "SELECT IS_USED_LOCK(LEFT(CONCAT('failover:', DATABASE()), 64)) AS holder",
      )) as unknown as [[{ holder: number }]];
      await t.ctx.pool.query(`KILL ${Number(holder)}`);
      return 'done';
    });
    expect(result).toBe('done');
    const [[row]] = await t.ctx.pool.query<RowDataPacket[]>(
      "SELECT IS_FREE_LOCK(LEFT(CONCAT('failover:', DATABASE()), 64)) AS free",
    );
    expect(Number(row?.free)).toBe(1);
  });

  it('two claims that both hold the claim lock (one on the old primary, one on the new) never share a task', async () => {
    const total = 1_000;
    for (let done = 0; done < total; done += 500) {
      const tasks = Array.from({ length: 500 }, (_, i) => ({
        data: { message: `overlap ${done + i}`, time: 0 },
        idempotencyKey: null,
      }));
      expect((await insertTasks(t.ctx.pool, tasks)).every((o) => 'id' in o)).toBe(true);
    }

    // Two processes, each believing it holds the lock: both claim optimistically, at once.
    pools = [0, 1].map(() => createDatabase(databaseSettings(t.config), t.ctx.logger));
    const claimed = await Promise.all(
      pools.map(async (pool) => {
        const ids: number[] = [];
        for (;;) {
          const { dispatched } = await claimPending(pool, 25, { optimistic: true });
          if (dispatched.length === 0) return ids;
          ids.push(...dispatched.map((m) => m.id));
        }
      }),
    );

    const all = claimed.flat();
    expect(claimed.every((ids) => ids.length > 0)).toBe(true);
    expect(all).toHaveLength(total);
    expect(new Set(all).size).toBe(total);
    const [[runs]] = await t.ctx.pool.query<RowDataPacket[]>(
      "SELECT COUNT(*) AS n, MIN(run) AS lo, MAX(run) AS hi FROM tasks WHERE status = 'processing'",
    );
    expect(runs).toMatchObject({ lo: 1, hi: 1 });
    expect(Number(runs?.n)).toBe(total);
    expect(await countByStatus(t.ctx.pool)).toMatchObject({ pending: 0, processing: total });
  });
});
