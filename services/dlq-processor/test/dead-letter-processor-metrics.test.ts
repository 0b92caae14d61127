import { createMetrics } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dispatchedTasks, failUntilDeadLettered } from '../../../test/support/runs.js';
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
    for (const m of await dispatchedTasks(t, 2, 0, 'm')) await failUntilDeadLettered(t, m.id);
    // A duplicate dead letter of the first task, pushed by hand: recorded again, counted once.
    const first = await t.redis.lindex(t.keys.deadLetterInbox.ready, -1);
    await t.redis.lpush(t.keys.deadLetterInbox.ready, first!);
    const processor = new DeadLetterProcessor(
      { store: t.store, logger: t.logger, metrics },
      { batchSize: 10, leaseMs: 5_000, pollIntervalMs: 50 },
    );
    expect(await processor.recordBatch()).toBe(3);
    expect(await metrics.render()).toMatch(/^tasks_failed_total\{service="dlq-processor"\} 2$/m);
  });
});
