import type { QueueMessage } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dispatchedTasks } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { Executor, type ExecutorOptions } from '../src/executor.js';
import { simulatedWork, type Work } from '../src/simulated-work.js';

const options: ExecutorOptions = {
  concurrency: 8,
  fetchBatchSize: 8,
  leaseMs: 5_000,
  pollIntervalMs: 50,
  shutdownTimeoutMs: 2_000,
};

let t: TestEnv;
let executor: Executor | null = null;

beforeEach(async () => {
  t = await createTestEnv({ RETRY_BACKOFF_MS: '0' });
});
afterEach(async () => {
  await executor?.stop();
  executor = null;
  await t.cleanup();
});

function startExecutor(work: Work, overrides: Partial<ExecutorOptions> = {}) {
  executor = new Executor({ store: t.store, logger: t.logger, clock: t.ctx.clock, work }, { ...options, ...overrides });
  executor.start();
  return executor;
}

/** Inserts tasks and dispatches them the way the scheduler does. */
async function dispatch(count: number, time = 0): Promise<number[]> {
  return (await dispatchedTasks(t, count, time)).map((m) => m.id);
}

async function statuses(ids: number[]) {
  return Promise.all(ids.map(async (id) => (await t.store.getTask(id))!));
}

describe('Executor', () => {
  it('completes tasks when nothing fails, with one attempt each', async () => {
    const ids = await dispatch(20);
    startExecutor(simulatedWork(0));
    await until(async () => (await statuses(ids)).every((task) => task.status === 'completed'));
    const tasks = await statuses(ids);
    expect(tasks.map((task) => task.attempts)).toEqual(ids.map(() => 1));
    expect(await t.store.depths()).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetters: 0 });
  });

  it('runs as many tries at once as its concurrency without a listener-leak warning', async () => {
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const ids = await dispatch(64, 1);
      startExecutor(simulatedWork(0), { concurrency: 64, fetchBatchSize: 64 });
      await until(async () => (await statuses(ids)).every((task) => task.status === 'completed'));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual([]);
  });

  it('retries a failing task and completes it on a later attempt', async () => {
    const [id] = await dispatch(1);
    let runs = 0;
    startExecutor(async () => {
      runs++;
      if (runs < 3) throw new Error(`boom ${runs}`);
    });
    await until(async () => (await t.store.getTask(id!))?.status === 'completed');
    const task = await t.store.getTask(id!);
    expect(runs).toBe(3);
    expect(task).toMatchObject({ attempts: 3, lastError: 'boom 2' });
  });

  it('dead-letters a task after MAX_ATTEMPTS failures, with its error', async () => {
    const [id] = await dispatch(1);
    startExecutor(simulatedWork(1));
    await until(async () => (await t.store.depths()).deadLetters === 1);
    const [entry] = await t.redis.lrange(t.keys.deadLetters, 0, -1);
    expect(JSON.parse(entry!)).toMatchObject({
      id,
      message: 'task 0',
      time: 0,
      tries: 3,
      run: 1,
      error: 'simulated failure (FAILURE_RATE=1)',
    });
    expect(await t.store.depths()).toMatchObject({ ready: 0, inflight: 0, delayed: 0, deadLetterInbox: 1 });
    // Still processing: recording the failure is the DLQ processor's job.
    expect((await t.store.getTask(id!))?.status).toBe('processing');
  });

  it('waits out the retry backoff before running a task again', async () => {
    await t.cleanup();
    t = await createTestEnv({ RETRY_BACKOFF_MS: '300', RETRY_BACKOFF_MAX_MS: '300' });
    const [id] = await dispatch(1);
    const runs: number[] = [];
    startExecutor(async () => {
      runs.push(Date.now());
      if (runs.length === 1) throw new Error('first run fails');
    });
    await until(async () => (await t.store.getTask(id!))?.status === 'completed');
    expect(runs).toHaveLength(2);
    // Jitter keeps the delay between half and all of the backoff.
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(150);
  });

  it('never changes a finished task when a duplicate message arrives, nor dead-letters it', async () => {
    const [id] = await dispatch(1);
    startExecutor(simulatedWork(0));
    await until(async () => (await t.store.getTask(id!))?.status === 'completed');
    const before = await t.store.getTask(id!);
    await executor!.stop();
    // The same message again, pushed by hand, failing now: its failed run is dropped, since the
    // task is no longer processing; the task stays completed, and no retry or dead letter follows.
    const duplicate: QueueMessage = { id: id!, message: 'task 0', time: 0, tries: 0, run: 1 };
    await t.redis.lpush(t.keys.tasks.ready, JSON.stringify(duplicate));
    let runs = 0;
    startExecutor(async () => {
      runs++;
      throw new Error('the duplicate fails');
    });
    await until(async () => {
      const d = await t.store.depths();
      return runs >= 1 && d.ready + d.inflight + d.delayed === 0;
    });
    expect(runs).toBe(1);
    expect(await t.store.getTask(id!)).toEqual(before);
    expect((await t.store.depths()).deadLetters).toBe(0);
  });

  it('dead-letters a message that is not JSON or not a task message, and keeps running', async () => {
    await t.redis.lpush(t.keys.tasks.ready, 'not json', '{"id":"x"}');
    const ids = await dispatch(3);
    startExecutor(simulatedWork(0));
    await until(async () => (await statuses(ids)).every((task) => task.status === 'completed'));
    const letters = (await t.redis.lrange(t.keys.deadLetters, 0, -1)).map((e) => JSON.parse(e));
    expect(letters).toHaveLength(2);
    expect(letters.map((l) => l.raw).sort()).toEqual(['not json', '{"id":"x"}']);
    expect(letters.find((l) => l.raw === 'not json').error).toBe('invalid message: not JSON');
    expect(letters.find((l) => l.raw === '{"id":"x"}').error).toBe('invalid message: id must be a positive integer');
  });

  it('on stop, hands back tasks that did not finish within the shutdown timeout', async () => {
    const ids = await dispatch(2, 60);
    const ex = startExecutor(simulatedWork(0), { shutdownTimeoutMs: 200 });
    await until(async () => ex.active === 2);
    await ex.stop();
    executor = null;
    const depths = await t.store.depths();
    expect(depths).toMatchObject({ ready: 2, inflight: 0 });
    const ready = (await t.redis.lrange(t.keys.tasks.ready, 0, -1)).map((m) => JSON.parse(m));
    expect(ready.map((m) => m.id).sort()).toEqual(ids.sort());
    expect(ready.every((m) => m.tries === 0)).toBe(true);
  });

  it('dead-letters a poison message (tries out of bounds) alone, and its batch-mates complete', async () => {
    const ids = await dispatch(47);
    // A second, hand-made message for one of the tasks, whose tries would overflow `attempts`.
    const poison = JSON.stringify({ id: ids[10], message: 'task 10', time: 0, tries: 4_294_967_295 });
    await t.redis.lpush(t.keys.tasks.ready, poison);
    startExecutor(simulatedWork(0), { concurrency: 100, fetchBatchSize: 100 });
    await until(async () => (await statuses(ids)).every((task) => task.status === 'completed'));
    expect((await statuses(ids)).map((task) => task.attempts)).toEqual(ids.map(() => 1));
    await until(async () => (await t.store.depths()).deadLetters === 1);
    const [letter] = await t.redis.lrange(t.keys.deadLetters, 0, -1);
    expect(JSON.parse(letter!)).toEqual({
      error: 'invalid message: tries must be a whole number from 0 to 1000',
      raw: poison,
      failed_at: expect.any(String),
    });
    expect(await t.store.depths()).toMatchObject({ ready: 0, inflight: 0, deadLetterInbox: 0 });
  });
});
