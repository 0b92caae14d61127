import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { sleep } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DeadLetterProcessor } from '../../services/dlq-processor/src/dead-letter-processor.js';
import { Executor } from '../../services/executor/src/executor.js';
import { simulatedWork } from '../../services/executor/src/simulated-work.js';
import { Scheduler } from '../../services/scheduler/src/scheduler.js';
import { Sweeper } from '../../services/scheduler/src/sweeper.js';
import { createApp } from '../../services/task-insert/src/app.js';
import { createTestEnv, inboxDepths, type TestEnv } from '../support/test-env.js';

/**
 * The whole pipeline in one process: the API over HTTP, a scheduler and its sweeper, two
 * executors and the DLQ processor, all on the same database and Redis keys.
 */

interface Pipeline {
  baseUrl: string;
  stop(): Promise<void>;
}

interface TaskRow {
  id: number;
  status: string;
  attempts: number;
  last_error: string | null;
}

let t: TestEnv;
let pipeline: Pipeline | null = null;

beforeEach(async () => {
  t = await createTestEnv({ RETRY_BACKOFF_MS: '10', RETRY_BACKOFF_MAX_MS: '100' });
});
afterEach(async () => {
  await pipeline?.stop();
  pipeline = null;
  await t.cleanup();
});

async function startPipeline(failureRate: number): Promise<Pipeline> {
  const { ctx } = t;
  const server = createApp({ config: ctx.config, logger: ctx.logger, store: ctx.store }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const scheduler = new Scheduler(
    { store: ctx.store, logger: ctx.logger },
    { batchSize: 100, pollIntervalMs: 200, maxQueueDepth: 10_000 },
  );
  const sweeper = new Sweeper(
    { store: ctx.store, logger: ctx.logger },
    { intervalMs: 500, graceMs: 5_000, pageSize: 100 },
  );
  const executors = [0, 1].map(
    () =>
      new Executor(
        { store: ctx.store, logger: ctx.logger, clock: ctx.clock, work: simulatedWork(failureRate) },
        { concurrency: 16, fetchBatchSize: 16, leaseMs: 5_000, pollIntervalMs: 100, shutdownTimeoutMs: 2_000 },
      ),
  );
  const processor = new DeadLetterProcessor(
    { store: ctx.store, logger: ctx.logger },
    { batchSize: 64, leaseMs: 5_000, pollIntervalMs: 100 },
  );

  await scheduler.start();
  sweeper.start();
  for (const executor of executors) executor.start();
  processor.start();

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    async stop() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await Promise.all([scheduler.stop(), sweeper.stop(), ...executors.map((e) => e.stop())]);
      await processor.stop();
    },
  };
}

async function postTasks(baseUrl: string, count: number): Promise<number[]> {
  const ids: number[] = [];
  for (let start = 0; start < count; start += 20) {
    const batch = Array.from({ length: Math.min(20, count - start) }, async (_, i) => {
      const res = await fetch(`${baseUrl}/tasks/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ message: `task ${start + i}`, time: 0 }),
      });
      expect(res.status).toBe(201);
      const body = (await res.json()) as { id: number; message: string; status: string };
      expect(body).toMatchObject({ message: 'Task created successfully', status: 'pending' });
      return body.id;
    });
    ids.push(...(await Promise.all(batch)));
  }
  return ids;
}

async function unfinished(): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM tasks WHERE status IN ('pending', 'processing')",
  );
  return Number(row!.n);
}

async function untilAllFinished(timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await unfinished()) > 0) {
    if (Date.now() > deadline) throw new Error(`${await unfinished()} tasks still unfinished after ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function allTasks(): Promise<TaskRow[]> {
  const [rows] = await t.sql.query<RowDataPacket[]>('SELECT id, status, attempts, last_error FROM tasks');
  return rows.map((r) => ({ id: Number(r.id), status: r.status, attempts: r.attempts, last_error: r.last_error }));
}

async function deadLetters(): Promise<{ id: number; tries: number; error: string; failed_at: string }[]> {
  return (await t.redis.lrange(t.keys.deadLetters, 0, -1)).map((e) => JSON.parse(e));
}

describe('the pipeline', () => {
  it('finishes every task posted over HTTP: completed, or failed and dead-lettered after 3 attempts', async () => {
    pipeline = await startPipeline(0.2);
    const ids = await postTasks(pipeline.baseUrl, 200);
    expect(new Set(ids).size).toBe(200);

    await untilAllFinished(30_000);
    const tasks = await allTasks();
    expect(tasks.map((task) => task.id).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    expect(tasks.every((task) => task.status === 'completed' || task.status === 'failed')).toBe(true);

    const failed = tasks.filter((task) => task.status === 'failed');
    for (const task of failed) {
      expect(task).toMatchObject({ attempts: 3, last_error: 'simulated failure (FAILURE_RATE=0.2)' });
    }
    const completed = tasks.filter((task) => task.status === 'completed');
    for (const task of completed) {
      expect(task.attempts).toBeGreaterThanOrEqual(1);
      expect(task.attempts).toBeLessThanOrEqual(3);
      // A task that needed more than one run keeps the error of its last failure.
      expect(task.last_error === null).toBe(task.attempts === 1);
    }

    const letters = await deadLetters();
    expect(letters.map((l) => l.id).sort((a, b) => a - b)).toEqual(failed.map((f) => f.id).sort((a, b) => a - b));

    // The API reports the final state.
    const res = await fetch(`${pipeline.baseUrl}/tasks/${ids[0]}`);
    expect(res.status).toBe(200);
    const view = (await res.json()) as { status: string; finished_at: string | null };
    expect(['completed', 'failed']).toContain(view.status);
    expect(view.finished_at).not.toBeNull();

    await pipeline.stop();
    pipeline = null;
    // Nothing left behind in Redis but the dead letters kept for inspection.
    expect(await t.store.depths()).toEqual({
      ready: 0,
      delayed: 0,
      inflight: 0,
      deadLetters: failed.length,
      deadLetterInbox: 0,
    });
    expect(await inboxDepths(t)).toEqual({ ready: 0, delayed: 0, inflight: 0 });
  });

  it('with FAILURE_RATE=1, fails every task after 3 attempts and dead-letters each with its error', async () => {
    pipeline = await startPipeline(1);
    const ids = await postTasks(pipeline.baseUrl, 20);

    await untilAllFinished(30_000);
    const tasks = await allTasks();
    expect(tasks).toHaveLength(20);
    for (const task of tasks) {
      expect(task).toMatchObject({ status: 'failed', attempts: 3, last_error: 'simulated failure (FAILURE_RATE=1)' });
    }

    const letters = await deadLetters();
    expect(letters.map((l) => l.id).sort((a, b) => a - b)).toEqual([...ids].sort((a, b) => a - b));
    for (const letter of letters) {
      expect(letter).toMatchObject({
        tries: 3,
        error: 'simulated failure (FAILURE_RATE=1)',
        failed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
    }
  });
});
