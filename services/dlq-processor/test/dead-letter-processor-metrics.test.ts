import { claimPending, createMetrics, insertTask } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { DeadLetterProcessor } from '../src/dead-letter-processor.js';

let t: TestEnv;

beforeEach(async () => {
  t = await createTestEnv();
});
afterEach(async () => {
  await t.cleanup();
});

describe('DeadLetterProcessor metrics', () => {
  it('count the tasks it marks failed, once each', async () => {
    const metrics = createMetrics({ service: 'dlq-processor' });
    for (let i = 0; i < 2; i++) await insertTask(t.ctx.pool, { message: `m${i}`, time: 0 });
    const claimed = await claimPending(t.ctx.pool, 2);
    for (const task of claimed) {
      const letter = { id: task.id, message: task.data.message, time: 0, tries: 3, error: 'boom', failed_at: 'now' };
      await t.ctx.queue.deadLetter(null, letter);
    }
    // A duplicate dead letter of the first task: recorded again, counted once.
    await t.ctx.queue.deadLetter(null, { id: claimed[0]!.id, tries: 3, error: 'boom', failed_at: 'later' });
    const processor = new DeadLetterProcessor(
      {
        pool: t.ctx.pool,
        queue: t.ctx.queue,
        logger: t.ctx.logger,
        clock: t.ctx.clock,
        openBlocking: () => t.ctx.openRedis('test-fetch'),
        metrics,
      },
      { batchSize: 10, leaseMs: 5_000, pollIntervalMs: 50 },
    );
    expect(await processor.recordBatch()).toBe(3);
    expect(await metrics.render()).toMatch(/^tasks_failed_total\{service="dlq-processor"\} 2$/m);
  });
});
