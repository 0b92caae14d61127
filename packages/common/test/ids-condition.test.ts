import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idsCondition } from '../src/mysql/ids-condition.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { countByStatus } from '../src/tasks/status-counts.js';
import { getStatuses } from '../src/tasks/task-reads.js';
import { claimAndDispatch } from '../src/tasks/transitions/claim-and-dispatch.js';
import { completeRuns } from '../src/tasks/transitions/complete.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

describe('idsCondition', () => {
  it('writes runs of consecutive ids as ranges and the rest as a list', () => {
    expect(idsCondition([7, 5, 6, 9, 1, 2, 12, 5])).toEqual({
      sql: '(id BETWEEN ? AND ? OR id BETWEEN ? AND ? OR id IN (?))',
      params: [1, 2, 5, 7, [9, 12]],
    });
    expect(idsCondition([3])).toEqual({ sql: '(id IN (?))', params: [[3]] });
    expect(idsCondition([])).toEqual({ sql: 'FALSE', params: [] });
  });

  describe('against the database', () => {
    let t: TestEnv;
    beforeAll(async () => {
      t = await createTestEnv();
    });
    afterAll(async () => {
      await t.cleanup();
    });

    it('changes exactly the rows of the ids given', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 20; i++) ids.push(await insertTask(t.ctx.pool, { message: `task ${i}`, time: 0 }));
      await claimAndDispatch(t.ctx, 20);
      // Two runs, a single, and gaps between them.
      const chosen = [...ids.slice(2, 6), ...ids.slice(8, 9), ...ids.slice(11, 17)];
      const { completed } = await completeRuns(
        t.ctx,
        chosen.map((id) => ({ id, run: 1, tries: 0, token: `token-${id}` })),
      );
      expect(completed).toBe(chosen.length);
      const statuses = await getStatuses(t.ctx.pool, ids);
      for (const id of ids) expect(statuses.get(id)).toBe(chosen.includes(id) ? 'completed' : 'processing');
      expect(await countByStatus(t.ctx.pool)).toMatchObject({
        completed: chosen.length,
        processing: 20 - chosen.length,
      });
    });
  });
});
