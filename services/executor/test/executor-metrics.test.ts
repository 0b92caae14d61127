import { createMetrics, type Metrics } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { metricValue } from '../../../test/support/metrics.js';
import { insertTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { Executor, type ExecutorOptions } from '../src/executor.js';
import type { Work } from '../src/simulated-work.js';

const options: ExecutorOptions = {
  concurrency: 4,
  fetchBatchSize: 4,
  leaseMs: 5_000,
  pollIntervalMs: 50,
  shutdownTimeoutMs: 1_000,
};

let t: TestEnv;
let metrics: Metrics;
let executor: Executor | null = null;

beforeEach(async () => {
  t = await createTestEnv({ RETRY_BACKOFF_MS: '0' });
  metrics = createMetrics({ service: 'executor' });
});
afterEach(async () => {
  await executor?.stop();
  executor = null;
  await t.cleanup();
});

function start(work: Work) {
  executor = new Executor({ store: t.store, logger: t.logger, clock: t.ctx.clock, work, metrics }, options);
  executor.start();
}

async function dispatch(messages: string[]): Promise<number[]> {
  for (const message of messages) await insertTask(t, { message, time: 0 });
  const { dispatched } = await t.store.claim(messages.length);
  return dispatched.map((m) => m.id);
}

async function value(name: string, labels: Record<string, string> = {}): Promise<number> {
  return metricValue(await metrics.render(), name, { ...labels, service: 'executor' });
}

describe('Executor metrics', () => {
  it('count completions, retries, dead letters and run times', async () => {
    // "ok" completes at once, "flaky" fails once then completes, "doomed" fails every time.
    const runs = new Map<string, number>();
    const [ok, flaky] = await dispatch(['ok', 'flaky', 'doomed']);
    start(async (message) => {
      const n = (runs.get(message.message) ?? 0) + 1;
      runs.set(message.message, n);
      if (message.message === 'doomed' || (message.message === 'flaky' && n === 1)) throw new Error('boom');
    });
    await until(async () => (await t.store.depths()).deadLetters === 1);
    await until(async () => (await t.store.getTask(flaky!))?.status === 'completed');
    await until(async () => (await t.store.getTask(ok!))?.status === 'completed');

    expect(await value('tasks_completed_total')).toBe(2);
    // flaky once, doomed twice; doomed's third failure dead-letters it.
    expect(await value('tasks_retried_total')).toBe(3);
    expect(await value('tasks_dead_lettered_total')).toBe(1);
    expect(await value('task_run_seconds_count', { outcome: 'completed' })).toBe(2);
    expect(await value('task_run_seconds_count', { outcome: 'failed' })).toBe(4);
  });

  it('count an invalid message as dead-lettered', async () => {
    await t.redis.lpush(t.keys.tasks.ready, 'not json');
    start(async () => undefined);
    await until(async () => (await t.store.depths()).deadLetters === 1);
    await until(async () => (await value('tasks_dead_lettered_total')) === 1);
  });
});
