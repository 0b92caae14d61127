import { claimPending, createMetrics, type DeadLetter, insertTask } from '@tasks/common';
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
    const { dispatched } = await claimPending(t.ctx.pool, 2);
    const letters: DeadLetter[] = dispatched.map((m) => ({ ...m, tries: 3, error: 'boom', failed_at: 'now' }));
    // A duplicate dead letter of the first task: recorded again, counted once.
    letters.push({ ...letters[0]!, failed_at: 'later' });
    await t.ctx.queue.deadLetter(letters.map((letter) => ({ token: null, letter })));
    const processor = new DeadLetterProcessor(
      { store: t.ctx.store, logger: t.ctx.logger, metrics },
      { batchSize: 10, leaseMs: 5_000, pollIntervalMs: 50 },
    );
    expect(await processor.recordBatch()).toBe(3);
    expect(await metrics.render()).toMatch(/^tasks_failed_total\{service="dlq-processor"\} 2$/m);
  });
});
