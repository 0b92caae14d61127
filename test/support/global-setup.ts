import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import type { TestProject } from 'vitest/node';

/**
 * Tests run against real servers: the ones named by TEST_MYSQL_URL and TEST_REDIS_URL
 * (CI sets them to the machine's MariaDB and Redis), or else containers started here.
 *
 * Every database and Redis key a test creates carries this run's id (see test-env.ts), so
 * the teardown removes what this run left behind (a test that failed before its cleanup, a
 * file that crashed) and nothing of another run's against the same servers. The database
 * TEST_MYSQL_URL names is created when missing, and dropped again at the end if it was.
 */
declare module 'vitest' {
  export interface ProvidedContext {
    mysqlUrl: string;
    redisUrl: string;
    /** Part of every database name and key prefix this run creates. */
    runId: string;
  }
}

/** What to do when there is neither a server to use nor Docker to start one, on one line. */
export const NO_SERVERS =
  'the tests need MySQL (or MariaDB) and Redis: set TEST_MYSQL_URL=mysql://root@127.0.0.1:3306/test and ' +
  'TEST_REDIS_URL=redis://127.0.0.1:6379 to use running servers, or start Docker so that testcontainers can run mysql:8.4 and redis:7';

/** Stops the run with `message` alone: a stack trace and "No test files found" would hide it. */
function abortRun(message: string): never {
  process.stderr.write(`\n${message}\n\n`);
  process.exit(1);
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] || err.name : String(err);
}

/** `name=url` with the password hidden. */
function shown(name: string, url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return `${name}=${parsed.toString()}`;
  } catch {
    return name;
  }
}

/** Creates the URL's database when missing; true when it did. */
async function createDatabase(url: string): Promise<boolean> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) return false;
  parsed.pathname = '/';
  const connection = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: 5_000 });
  try {
    const [rows] = (await connection.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [
      database,
    ])) as unknown as [unknown[]];
    if (rows.length > 0) return false;
    await connection.query(`CREATE DATABASE IF NOT EXISTS ${mysql.escapeId(database)}`);
    return true;
  } finally {
    await connection.end();
  }
}

/** Drops this run's databases (and the base database if this run created it). */
async function dropDatabases(url: string, runId: string, createdBase: boolean): Promise<void> {
  const parsed = new URL(url);
  const base = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  parsed.pathname = '/';
  const connection = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: 5_000 });
  try {
    const [rows] = (await connection.query(
      'SELECT schema_name AS name FROM information_schema.schemata WHERE schema_name LIKE ?',
      [`test\\_${runId}\\_%`],
    )) as unknown as [{ name: string }[]];
    const names = rows.map((r) => r.name);
    if (createdBase) names.push(base);
    for (const name of names) await connection.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(name)}`);
  } finally {
    await connection.end();
  }
}

/** Deletes this run's Redis keys. */
async function deleteKeys(url: string, runId: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    const stream = redis.scanStream({ match: `test:${runId}:*`, count: 1_000 });
    for await (const keys of stream as AsyncIterable<string[]>) {
      if (keys.length > 0) await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
}

export default async function setup(project: TestProject) {
  const runId = randomBytes(3).toString('hex');
  const stops: (() => Promise<unknown>)[] = [];
  let mysqlUrl = process.env.TEST_MYSQL_URL;
  let redisUrl = process.env.TEST_REDIS_URL;
  try {
    if (!mysqlUrl) {
      const { MySqlContainer } = await import('@testcontainers/mysql');
      const container = await new MySqlContainer('mysql:8.4').withRootPassword('test').start();
      stops.push(() => container.stop());
      mysqlUrl = `mysql://root:test@${container.getHost()}:${container.getPort()}/test`;
    }
    if (!redisUrl) {
      const { RedisContainer } = await import('@testcontainers/redis');
      const container = await new RedisContainer('redis:7').start();
      stops.push(() => container.stop());
      redisUrl = container.getConnectionUrl();
    }
  } catch (err) {
    for (const stop of stops) await stop().catch(() => undefined);
    abortRun(`${NO_SERVERS} (Docker: ${reason(err)})`);
  }

  let createdBase = false;
  try {
    createdBase = await createDatabase(mysqlUrl);
  } catch (err) {
    abortRun(
      `${shown('TEST_MYSQL_URL', mysqlUrl)}: MySQL does not answer (${reason(err)}); start it, or name one that runs`,
    );
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null });
  let redisError: unknown = null;
  redis.on('error', (err: unknown) => {
    redisError = err;
  });
  try {
    await redis.connect();
  } catch (err) {
    abortRun(
      `${shown('TEST_REDIS_URL', redisUrl)}: Redis does not answer (${reason(redisError ?? err)}); start it, or name one that runs`,
    );
  } finally {
    redis.disconnect();
  }

  project.provide('mysqlUrl', mysqlUrl);
  project.provide('redisUrl', redisUrl);
  project.provide('runId', runId);
  const servers = { mysqlUrl, redisUrl };
  return async () => {
    try {
      await dropDatabases(servers.mysqlUrl, runId, createdBase);
      await deleteKeys(servers.redisUrl, runId);
    } finally {
      for (const stop of stops) await stop();
    }
  };
}
