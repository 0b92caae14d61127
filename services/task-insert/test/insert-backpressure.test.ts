import { type Context, createContext, createMetrics, loadConfig, type Metrics } from '@tasks/common';
import type { Express } from 'express';
import mysql, { type Connection, type RowDataPacket } from 'mysql2/promise';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TcpProxy } from '../../../test/faults/support/tcp-proxy.js';
import { metricValue } from '../../../test/support/metrics.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { createApp } from '../src/app.js';

/**
 * POST /tasks while the database does not answer: the `tasks` table locked by another session
 * (LOCK TABLES … WRITE, as a long schema change or a backup does), so every INSERT waits on
 * the server. An insert answered 503 is never stored afterwards.
 */

const TIMEOUT_MS = 1_000;

let t: TestEnv;
let locker: Connection | null = null;

beforeAll(async () => {
  t = await createTestEnv({ REQUEST_TIMEOUT_MS: String(TIMEOUT_MS) });
});
afterEach(async () => {
  await unlock();
});
afterAll(async () => {
  await Promise.all(opened.map((ctx) => ctx.close()));
  await t.cleanup();
});

/** Clients opened for an app with settings of its own, closed after the file. */
const opened: Context[] = [];

/** The API with the test file's settings and `env`; its own clients when `env` names another MySQL. */
function appWith(env: Record<string, string> = {}): { app: Express; metrics: Metrics } {
  const metrics = createMetrics({ service: 'task-insert' });
  const config = loadConfig({ ...t.env, ...env });
  let store = t.store;
  if (env.MYSQL_URL) {
    const ctx = createContext(config, 'test-api', { logger: t.logger });
    opened.push(ctx);
    store = ctx.store;
  }
  return { app: createApp({ config, logger: t.logger, store, metrics }), metrics };
}

/** Locks `tasks` from a session of its own, as an operator's LOCK TABLES would. */
async function lock(): Promise<void> {
  locker = await mysql.createConnection({ uri: t.config.MYSQL_URL });
  await locker.query('LOCK TABLES tasks WRITE');
}

async function unlock(): Promise<void> {
  if (!locker) return;
  await locker.query('UNLOCK TABLES');
  await locker.end();
  locker = null;
}

/** The INSERTs into this file's `tasks` that are on the server now. */
async function insertsOnServer(): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST
      WHERE DB = DATABASE() AND INFO LIKE 'INSERT INTO tasks%'`,
  );
  return Number(row!.n);
}

async function storedWithPrefix(prefix: string): Promise<number> {
  const [[row]] = await t.sql.query<RowDataPacket[]>(
    "SELECT COUNT(*) AS n FROM tasks WHERE JSON_UNQUOTE(JSON_EXTRACT(data, '$.message')) LIKE ?",
    [`${prefix}%`],
  );
  return Number(row!.n);
}

async function insertQueueDepth(app: Express): Promise<number> {
  return metricValue((await request(app).get('/metrics')).text, 'insert_queue_depth');
}

interface Timed {
  res: request.Response;
  ms: number;
}

async function timedPost(app: Express, body: object, key?: string): Promise<Timed> {
  const started = performance.now();
  const req = request(app).post('/tasks');
  if (key) req.set('Idempotency-Key', key);
  const res = await req.send(body);
  return { res, ms: performance.now() - started };
}

describe('POST /tasks while the tasks table is locked', () => {
  it('answers 503 within about REQUEST_TIMEOUT_MS, and stores none of those tasks after the unlock', async () => {
    const { app } = appWith();
    await lock();
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        timedPost(app, { message: `locked ${i}`, time: 1 }, i % 2 === 0 ? `locked-${i}` : undefined),
      ),
    );
    for (const { res, ms } of answers) {
      expect(res.status).toBe(503);
      expect(res.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/not stored/) });
      expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(ms).toBeLessThan(2 * TIMEOUT_MS);
    }
    // Nothing of them is left on the server that could commit once the lock is gone.
    expect(await insertsOnServer()).toBe(0);
    await unlock();
    // Inserts are answered in order: once a later one is stored, any earlier one would be too.
    const after = await request(app).post('/tasks').send({ message: 'after the unlock', time: 1 });
    expect(after.status).toBe(201);
    expect(await storedWithPrefix('locked ')).toBe(0);
    expect((await t.store.getTask(after.body.id))?.data).toEqual({ message: 'after the unlock', time: 1 });
  });

  it('refuses at once, with Retry-After, while the database has answered no insert for half of REQUEST_TIMEOUT_MS', async () => {
    const { app } = appWith();
    await lock();
    const sentAt = performance.now();
    const first = timedPost(app, { message: 'slow first', time: 1 });
    await until(async () => (await insertsOnServer()) === 1);
    await until(async () => performance.now() - sentAt > TIMEOUT_MS / 2 + 50, TIMEOUT_MS);
    const refused = await timedPost(app, { message: 'slow refused', time: 1 });
    expect(refused.res.status).toBe(503);
    expect(refused.res.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/answered no insert/) });
    expect(Number(refused.res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(refused.ms).toBeLessThan(TIMEOUT_MS / 4);
    expect((await first).res.status).toBe(503);
    await unlock();
    await request(app).post('/tasks').send({ message: 'after the unlock', time: 1 }).expect(201);
    expect(await storedWithPrefix('slow ')).toBe(0);
  });
});

describe('POST /tasks when INSERT_QUEUE_LIMIT inserts wait already', () => {
  it('answers 503 at once with Retry-After, stores nothing of it, and serves those that wait', async () => {
    const { app } = appWith({ INSERT_QUEUE_LIMIT: '3', REQUEST_TIMEOUT_MS: '5000' });
    await lock();
    const waiting = Array.from({ length: 3 }, (_, i) => timedPost(app, { message: `waiting ${i}`, time: 1 }));
    await until(async () => (await insertQueueDepth(app)) === 3);
    const full = await timedPost(app, { message: 'full refused', time: 1 });
    expect(full.res.status).toBe(503);
    expect(full.res.body).toEqual({ error: 'unavailable', message: expect.stringMatching(/INSERT_QUEUE_LIMIT/) });
    expect(full.res.headers['retry-after']).toBe('1');
    expect(full.ms).toBeLessThan(500);
    await unlock();
    for (const { res } of await Promise.all(waiting)) expect(res.status).toBe(201);
    expect(await storedWithPrefix('waiting ')).toBe(3);
    expect(await storedWithPrefix('full ')).toBe(0);
    expect(await insertQueueDepth(app)).toBe(0);
  });
});

describe('POST /tasks while the database answers', () => {
  it('answers every insert of a burst 201 with its own task, through the same bounded queue', async () => {
    const { app } = appWith({ INSERT_QUEUE_LIMIT: '1000' });
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        request(app)
          .post('/tasks')
          .send({ message: `burst ${i}`, time: 1 }),
      ),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(200).fill(201));
    const ids = answers.map((r) => r.body.id as number);
    expect(new Set(ids).size).toBe(200);
    for (const [i, id] of ids.entries()) {
      expect((await t.store.getTask(id))?.data).toEqual({ message: `burst ${i}`, time: 1 });
    }
    expect(await insertQueueDepth(app)).toBe(0);
  });
});

describe('POST /tasks whose connection is lost during the commit', () => {
  let proxy: TcpProxy;
  let proxiedUrl: string;

  beforeAll(async () => {
    const url = new URL(t.config.MYSQL_URL);
    proxy = await TcpProxy.start(Number(url.port || 3306));
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    proxiedUrl = url.toString();
  });
  afterAll(async () => {
    await proxy.close();
  });

  it('answers 503 saying the outcome is unknown, and a retry with the same Idempotency-Key stores it once', async () => {
    const { app } = appWith({ REQUEST_TIMEOUT_MS: '10000', MYSQL_URL: proxiedUrl, DB_CONNECT_TIMEOUT_MS: '1000' });
    await lock();
    const lost = timedPost(app, { message: 'lost commit', time: 1 }, 'lost-commit');
    await until(async () => (await insertsOnServer()) === 1);
    await proxy.cut();
    const { res } = await lost;
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: 'unavailable',
      message: expect.stringMatching(/whether it was stored is unknown; retry with the same Idempotency-Key/),
    });
    await proxy.restore();
    await unlock();
    const retried = await request(appWith().app).post('/tasks').set('Idempotency-Key', 'lost-commit').send({
      message: 'lost commit',
      time: 1,
    });
    expect(retried.status).toBe(201);
    expect(await storedWithPrefix('lost commit')).toBe(1);
  });
});
