import { createMetrics, type Metrics, sleep } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metricValue } from '../../../test/support/metrics.js';
import { insertTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { Scheduler } from '../src/scheduler.js';
import { Sweeper } from '../src/sweeper.js';

let t: TestEnv;
let metrics: Metrics;

beforeEach(async () => {
  t = await createTestEnv();
  metrics = createMetrics({ service: 'scheduler' });
});
afterEach(async () => {
  await t.cleanup();
});

async function value(name: string): Promise<number> {
  return metricValue(await metrics.render(), name, { service: 'scheduler' });
}

describe('Scheduler metrics', () => {
  it('count claimed tasks', async () => {
    for (let i = 0; i < 5; i++) await insertTask(t, { message: `m${i}`, time: 0 });
    const scheduler = new Scheduler(
      { store: t.store, logger: t.logger, metrics },
      { batchSize: 3, pollIntervalMs: 1_000, maxQueueDepth: 1_000 },
    );
    expect((await scheduler.dispatchBatch()).dispatched.length).toBe(3);
    expect((await scheduler.dispatchBatch()).dispatched.length).toBe(2);
    expect(await value('tasks_claimed_total')).toBe(5);
  });
});

describe('Sweeper metrics', () => {
  it('count expired leases and the tasks they dead-letter', async () => {
    const first = await insertTask(t, { message: 'm0', time: 0 });
    const second = await insertTask(t, { message: 'm1', time: 0 });
    // One on its first try, one on its last (two attempts made already): when their executor
    // dies, one is requeued, one dead-lettered.
    await t.sql.query('UPDATE tasks SET attempts = 2 WHERE id = ?', [second]);
    expect((await t.store.claim(2)).dispatched.map((m) => [m.id, m.tries])).toEqual([
      [first, 0],
      [second, 2],
    ]);
    expect((await t.store.fetch(2, 20)).leased).toHaveLength(2);
    await sleep(30);
    const sweeper = new Sweeper(
      { store: t.store, logger: t.logger, metrics },
      { intervalMs: 60_000, graceMs: 60_000, pageSize: 100 },
    );
    expect(await sweeper.sweep()).toMatchObject({ reaped: 2 });
    expect(await value('leases_expired_total')).toBe(2);
    expect(await value('tasks_dead_lettered_total')).toBe(1);
  });
});
