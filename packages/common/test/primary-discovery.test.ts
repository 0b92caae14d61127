import {
  createLogger,
  isDatabaseUnavailable,
  isTransientError,
  NoWritablePrimaryError,
  queueKeys,
} from '@tasks/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type GroupUnavailable, MysqlGroup, warnGroupNotTested } from '../../../test/support/mysql-group.js';
import { dropTestDatabase, testDatabaseName } from '../../../test/support/test-env.js';
import { createDatabase, type Database, ensureDatabase, PRIMARY_SEARCH_INTERVAL_MS } from '../src/mysql/database.js';
import { isConnectionError, isReadOnlyError, NO_WRITABLE_PRIMARY } from '../src/mysql/errors.js';
import { migrate } from '../src/mysql/migrate.js';
import { parseMysqlUrl } from '../src/mysql/mysql-url.js';
import type { DatabaseSettings } from '../src/mysql/pinned-pool.js';
import { findPrimary } from '../src/mysql/primary.js';
import { transaction } from '../src/mysql/transaction.js';
import { checkReadiness } from '../src/readiness.js';
import { createRedis } from '../src/redis/client.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { getTask } from '../src/tasks/task-reads.js';

const logger = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');

/** Nothing listens on these ports: a member there refuses the connection. */
const DOWN = ['127.0.0.1:1', '127.0.0.1:2'];

function settings(url: string): DatabaseSettings {
  return { url, size: 2, connectTimeoutMs: 2_000, lockWaitTimeoutS: 5 };
}

/** TEST_MYSQL_URL's user information and `host:port`, to build host lists around its server. */
function testServer(): { auth: string; host: string } {
  const url = new URL(inject('mysqlUrl'));
  const auth = url.username ? `${url.username}${url.password ? `:${url.password}` : ''}@` : '';
  return { auth, host: `${url.hostname}:${url.port || 3306}` };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('a host list around one server (runs on any TEST_MYSQL_URL)', () => {
  const { auth, host } = testServer();
  const database = testDatabaseName('hosts');
  const url = `mysql://${auth}${DOWN[0]},${host},${DOWN[1]}/${database}`;
  let db: Database;
  beforeAll(async () => {
    await ensureDatabase(settings(url));
    await migrate(settings(url), logger);
    db = createDatabase(settings(url), logger);
  });
  afterAll(async () => {
    await db?.end();
    await dropTestDatabase(database);
  });

  it('finds the writable member among members that are down, and opens its pools on first use', async () => {
    expect((await findPrimary(parseMysqlUrl(url), 1_000)).name).toBe(host);
    expect(db.followsPrimary).toBe(true);
    expect(db.primary).toBeNull();
    const id = await insertTask(db, { message: 'through the host list', time: 0 });
    expect(db.primary).toBe(host);
    expect((await getTask(db, id))?.data).toMatchObject({ message: 'through the host list' });
    expect(await checkReadiness(readinessDeps(db))).toMatchObject({ checks: { mysql: { ok: true } } });
  });

  it('keeps a single-host URL on its one server from the start: no search, no probe', () => {
    const single = createDatabase(settings(inject('mysqlUrl')), logger);
    try {
      expect(single.followsPrimary).toBe(false);
      expect(single.primary).toBe(host);
    } finally {
      void single.end();
    }
  });
});

describe('no member takes writes', () => {
  const url = `mysql://tasks:hunter2@${DOWN.join(',')}/tasks`;

  it('fails fast with a transient error naming every member and what it answered', async () => {
    const db = createDatabase(settings(url), logger);
    try {
      const started = performance.now();
      const err = await rejection(db.query('SELECT 1'));
      expect(performance.now() - started).toBeLessThan(1_500);
      expect(err).toBeInstanceOf(NoWritablePrimaryError);
      expect((err as Error).message).toBe(
        'no writable primary among 127.0.0.1:1, 127.0.0.1:2 (127.0.0.1:1 refused the connection; 127.0.0.1:2 refused the connection)',
      );
      expect((err as { code: string }).code).toBe(NO_WRITABLE_PRIMARY);
      expect(isConnectionError(err)).toBe(true);
      expect(isDatabaseUnavailable(err)).toBe(true);
      expect(isTransientError(err)).toBe(true);
      expect((err as Error).message).not.toContain('hunter2');

      // Within PRIMARY_SEARCH_INTERVAL_MS the answer stands: no member is asked again.
      const again = performance.now();
      await expect(db.execute('SELECT 1')).rejects.toBe(err);
      await expect(transaction(db, (trip) => trip([{ sql: 'SELECT 1' }]))).rejects.toBe(err);
      expect(performance.now() - again).toBeLessThan(PRIMARY_SEARCH_INTERVAL_MS);
      // After it, they are asked again.
      await new Promise((r) => setTimeout(r, PRIMARY_SEARCH_INTERVAL_MS));
      const next = await rejection(db.query('SELECT 1'));
      expect(next).toBeInstanceOf(NoWritablePrimaryError);
      expect(next).not.toBe(err);
    } finally {
      await db.end();
    }
  });

  it('makes /readyz not ready, its mysql check saying "no writable primary among …"', async () => {
    const db = createDatabase(settings(url), logger);
    try {
      const report = await checkReadiness(readinessDeps(db), 2_000);
      expect(report.ready).toBe(false);
      expect(report.checks.mysql).toMatchObject({
        ok: false,
        error: expect.stringMatching(/^no writable primary among 127\.0\.0\.1:1, 127\.0\.0\.1:2 \(/),
      });
    } finally {
      await db.end();
    }
  });

  it('says what a member that refuses the credentials answered, without the password', async () => {
    const { host } = testServer();
    const err = await rejection(findPrimary(parseMysqlUrl(`mysql://nosuchuser:hunter2@${DOWN[0]},${host}/x`), 2_000));
    expect((err as Error).message).toMatch(
      new RegExp(
        `^no writable primary among 127\\.0\\.0\\.1:1, ${host.replace(/\./g, '\\.')} \\(.*${host.replace(/\./g, '\\.')}: ER_ACCESS_DENIED_ERROR Access denied for user 'nosuchuser'`,
      ),
    );
    expect((err as Error).message).not.toContain('hunter2');
  });
});

/** checkReadiness's dependencies with a Redis that answers (the tests' own). */
function readinessDeps(db: Database) {
  const redis = createRedis({ REDIS_URL: inject('redisUrl') }, logger, 'test-readiness');
  const keys = queueKeys({ prefix: `test:${inject('runId')}:discovery:`, queue: 'q', deadLetter: 'dl' });
  redisClients.push(redis);
  return { pool: db, redis, queue: { keys } };
}
const redisClients: ReturnType<typeof createRedis>[] = [];
afterAll(() => {
  for (const redis of redisClients) redis.disconnect();
});

describe('a MySQL Group Replication group (group.sh)', () => {
  let group: MysqlGroup | GroupUnavailable;
  const database = testDatabaseName('group');
  let db: Database | null = null;
  beforeAll(async () => {
    group = await MysqlGroup.start();
    if (!(group instanceof MysqlGroup)) return;
    await ensureDatabase(settings(group.url(database)));
    await migrate(settings(group.url(database)), logger);
  });
  afterAll(async () => {
    await db?.end();
    if (!(group instanceof MysqlGroup)) return;
    await dropTestDatabase(database, group.server);
    await group.release();
  });

  it('finds the primary whatever the order of the list', async () => {
    if (!(group instanceof MysqlGroup)) return warnGroupNotTested('finding the primary', group);
    const primary = await group.primary();
    const hosts = group.hosts.split(',');
    for (const order of [hosts, [...hosts].reverse()]) {
      const found = await findPrimary(parseMysqlUrl(`mysql://root@${order.join(',')}/${database}`), 1_000);
      expect(found.name).toBe(`127.0.0.1:${primary}`);
    }
  });

  it('follows a switchover: the write a demoted primary refuses (1290) runs on the new one, and /readyz follows', async () => {
    if (!(group instanceof MysqlGroup)) return warnGroupNotTested('following a switchover', group);
    const live = createDatabase(settings(group.url(database)), logger);
    db = live;
    const before = await group.primary();
    await insertTask(live, { message: 'before the switchover', time: 0 });
    expect(live.primary).toBe(`127.0.0.1:${before}`);

    // A planned switchover: the old primary now answers writes with 1290.
    const next = group.ports.find((p) => p !== before) as number;
    await group.switchover(next);
    const stale = createDatabase(settings(`mysql://root@127.0.0.1:${before}/${database}`), logger);
    try {
      const refused = await rejection(stale.query("INSERT INTO tasks (data) VALUES ('{}')"));
      expect((refused as { errno: number }).errno).toBe(1290);
      expect(isReadOnlyError(refused)).toBe(true);
      expect(isDatabaseUnavailable(refused)).toBe(true);
    } finally {
      await stale.end();
    }

    // The Database still takes the old primary for the primary until it is told otherwise:
    // the refused statement is run again on the new primary, and the caller sees no error.
    expect(live.primary).toBe(`127.0.0.1:${before}`);
    await insertTask(live, { message: 'after the switchover', time: 0 });
    expect(live.primary).toBe(`127.0.0.1:${next}`);

    // A transaction refused as read-only runs again on the new primary too.
    await group.switchover(before);
    await transaction(live, (trip) =>
      trip([{ sql: 'INSERT INTO tasks (data) VALUES (?)', values: ['{"message":"in a transaction","time":0}'] }], {
        commit: true,
      }),
    );
    expect(live.primary).toBe(`127.0.0.1:${before}`);

    // With no write to tell it, /readyz does: the demoted primary is not ready, and the next
    // check is ready on the new primary.
    await group.switchover(next);
    const demoted = await checkReadiness(readinessDeps(live));
    expect(demoted.ready).toBe(false);
    expect(demoted.checks.mysql).toMatchObject({
      ok: false,
      error: expect.stringMatching(new RegExp(`^127\\.0\\.0\\.1:${before} is read-only now \\(.*super_read_only=ON`)),
    });
    expect(await checkReadiness(readinessDeps(live))).toMatchObject({ checks: { mysql: { ok: true } } });
    expect(live.primary).toBe(`127.0.0.1:${next}`);

    const [[{ n }]] = (await live.query('SELECT COUNT(*) AS n FROM tasks')) as unknown as [[{ n: number }]];
    expect(Number(n)).toBe(3);
  });
});
