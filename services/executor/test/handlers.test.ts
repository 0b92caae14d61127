import { fileURLToPath } from 'node:url';
import { type HandlerRegistry, loadHandlers, type Task } from '@tasks/common';
import mysql, { type Pool, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { Executor, type ExecutorOptions } from '../src/executor.js';
import { simulatedWork } from '../src/simulated-work.js';

/**
 * Tasks of the types a handlers module names (test/support/fixtures/handlers.mjs), run by an
 * executor with their handlers: results stored, errors retried then dead-lettered, deadlines
 * that stop the work (even a handler that never looks at its signal, or never yields, under
 * thread isolation), and cancels that reach a running handler.
 */

const FIXTURE = fileURLToPath(new URL('../../../test/support/fixtures/handlers.mjs', import.meta.url));

const options: ExecutorOptions = {
  concurrency: 4,
  fetchBatchSize: 4,
  leaseMs: 30_000,
  pollIntervalMs: 50,
  shutdownTimeoutMs: 1_000,
  maxResultBytes: 1_000,
  cancelCheckMs: 200,
};

let t: TestEnv;
let sql: Pool;
let handlers: HandlerRegistry;
let executor: Executor | null = null;

beforeAll(async () => {
  handlers = await loadHandlers(FIXTURE);
});
beforeEach(async () => {
  t = await createTestEnv({ RETRY_BACKOFF_MS: '0' });
  sql = mysql.createPool({ uri: t.config.MYSQL_URL, connectionLimit: 2 });
});
afterEach(async () => {
  await executor?.stop();
  executor = null;
  await sql.end();
  await t.cleanup();
});
afterAll(() => undefined);

function start(overrides: Partial<ExecutorOptions> = {}): Executor {
  executor = new Executor(
    { store: t.ctx.store, logger: t.ctx.logger, clock: t.ctx.clock, work: simulatedWork(0), handlers },
    { ...options, ...overrides },
  );
  executor.start();
  return executor;
}

interface TypedTask {
  type: string;
  data: unknown;
  timeoutMs?: number;
  maxAttempts?: number;
}

/** Inserts tasks of these types (as the API stores them) and claims them: their messages are ready. */
async function dispatch(...tasks: TypedTask[]): Promise<number[]> {
  const ids: number[] = [];
  for (const task of tasks) {
    const [inserted] = await sql.query<ResultSetHeader>(
      'INSERT INTO tasks (type, data, timeout_ms, max_attempts) VALUES (?, ?, ?, ?)',
      [task.type, JSON.stringify(task.data), task.timeoutMs ?? null, task.maxAttempts ?? null],
    );
    ids.push(inserted.insertId);
  }
  await t.ctx.store.recount();
  const { dispatched } = await t.ctx.store.claim(tasks.length);
  expect(dispatched.map((m) => m.id).sort((a, b) => a - b)).toEqual(ids);
  return ids;
}

interface Row {
  status: string;
  attempts: number;
  last_error: string | null;
  result: unknown;
}

async function row(id: number): Promise<Row> {
  const [[found]] = await sql.query<RowDataPacket[]>(
    'SELECT status, attempts, last_error, result FROM tasks WHERE id = ?',
    [id],
  );
  const result = typeof found?.result === 'string' ? JSON.parse(found.result) : (found?.result ?? null);
  return { ...(found as Row), result };
}

const final = async (id: number) => ['completed', 'failed', 'cancelled'].includes((await row(id)).status);

describe('a task of a registered type', () => {
  it("stores its handler's result with its completion", async () => {
    const [id] = (await dispatch({ type: 'echo', data: { result: { answer: 42, list: [1, 'two'] } } })) as [number];
    start();
    await until(() => final(id));
    expect(await row(id)).toMatchObject({ status: 'completed', attempts: 1, result: { answer: 42, list: [1, 'two'] } });
    const task = (await t.ctx.store.getTask(id)) as Task;
    expect(task.status).toBe('completed');
  });

  it('is retried when its handler throws, then dead-lettered after its own attempts', async () => {
    const [id] = (await dispatch({
      type: 'fail',
      data: { message: 'the payment service said no' },
      maxAttempts: 2,
    })) as [number];
    start();
    await until(async () => (await t.ctx.store.deadLetterPage(0, 10)).total === 1);
    const { entries } = await t.ctx.store.deadLetterPage(0, 10);
    expect(entries[0]?.entry).toMatchObject({ id, tries: 2, error: 'the payment service said no' });
    expect(await row(id)).toMatchObject({
      status: 'processing',
      attempts: 2,
      last_error: 'the payment service said no',
    });
  });

  it('fails its try when the result is larger than MAX_RESULT_BYTES', async () => {
    const [id] = (await dispatch({ type: 'large', data: {}, maxAttempts: 1 })) as [number];
    start();
    await until(async () => (await row(id)).attempts === 1);
    expect((await row(id)).last_error).toMatch(
      /^the result is 10002 bytes of JSON, more than MAX_RESULT_BYTES \(1000\)$/,
    );
  });

  it('fails its try, naming the types this executor knows, when there is no handler for it', async () => {
    const [id] = (await dispatch({ type: 'unheard-of', data: {}, maxAttempts: 1 })) as [number];
    start();
    await until(async () => (await row(id)).attempts === 1);
    expect((await row(id)).last_error).toBe(
      `no handler for type unheard-of in this executor (it knows ${handlers.types.join(', ')})`,
    );
  });
});

describe('a deadline', () => {
  it("aborts a handler that honours its signal, and fails the try with 'timed out after N ms'", async () => {
    const [id] = (await dispatch({ type: 'echo', data: { ms: 60_000 }, timeoutMs: 300, maxAttempts: 1 })) as [number];
    const started = Date.now();
    start();
    await until(async () => (await row(id)).attempts === 1);
    expect(Date.now() - started).toBeLessThan(300 + 1_000 + 500);
    expect((await row(id)).last_error).toBe('timed out after 300 ms');
  });

  it('fails the try within the deadline plus a second even when the handler ignores its signal', async () => {
    const [id] = (await dispatch({ type: 'deaf', data: { ms: 5_000 }, timeoutMs: 200, maxAttempts: 2 })) as [number];
    const started = Date.now();
    start();
    await until(async () => (await row(id)).attempts >= 1);
    expect(Date.now() - started).toBeLessThan(200 + 1_000 + 500);
    expect((await row(id)).last_error).toBe('timed out after 200 ms');
    // Its second try times out the same; the abandoned first try changes nothing when it ends.
    await until(async () => (await t.ctx.store.deadLetterPage(0, 1)).total === 1, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 5_500 - (Date.now() - started)));
    expect(await row(id)).toMatchObject({ status: 'processing', attempts: 2, result: null });
  });

  it('terminates a handler stuck in a CPU loop under thread isolation, and its slot runs the next task', async () => {
    const [spin, quick] = (await dispatch(
      { type: 'spin', data: {}, timeoutMs: 300, maxAttempts: 1 },
      { type: 'quick', data: { n: 21 } },
    )) as [number, number];
    start({ concurrency: 1, fetchBatchSize: 1 });
    await until(async () => (await row(spin)).attempts === 1, 10_000);
    expect((await row(spin)).last_error).toBe('timed out after 300 ms');
    await until(() => final(quick), 10_000);
    expect(await row(quick)).toMatchObject({ status: 'completed', result: { doubled: 42 } });
  });
});

describe('a cancel', () => {
  it("aborts the running handler's signal within a second, and the task ends cancelled", async () => {
    const [id] = (await dispatch({ type: 'echo', data: { ms: 60_000 } })) as [number];
    start();
    await until(async () => executor?.active === 1);
    const cancelledAt = Date.now();
    expect(await t.ctx.store.cancel(id)).toEqual({ cancelled: true, id, was: 'processing' });
    await until(async () => executor?.active === 0, 2_000);
    expect(Date.now() - cancelledAt).toBeLessThan(1_000);
    expect(await row(id)).toMatchObject({ status: 'cancelled', attempts: 0, result: null });
    expect((await t.ctx.store.stats()).queue).toMatchObject({ ready: 0, inflight: 0 });
  });

  it('reaches a handler whose executor was not told, through its look at MySQL', async () => {
    const [id] = (await dispatch({ type: 'echo', data: { ms: 60_000 } })) as [number];
    start();
    await until(async () => executor?.active === 1);
    // A cancel whose announcement was lost.
    await sql.query("UPDATE tasks SET status = 'cancelled', finished_at = NOW(3) WHERE id = ?", [id]);
    const cancelledAt = Date.now();
    await until(async () => executor?.active === 0, 3_000);
    expect(Date.now() - cancelledAt).toBeLessThan(options.cancelCheckMs! + 1_000);
  });

  it('of a task whose message waits in the queue: its handler never runs', async () => {
    const [id] = (await dispatch({ type: 'echo', data: { result: 'should not run' } })) as [number];
    await t.ctx.store.cancel(id);
    start();
    await until(async () => {
      const { queue } = await t.ctx.store.stats();
      return queue.ready === 0 && queue.inflight === 0;
    });
    expect(await row(id)).toMatchObject({ status: 'cancelled', result: null, attempts: 0 });
    expect((await t.ctx.store.stats()).queue).toMatchObject({ ready: 0, inflight: 0 });
  });
});
