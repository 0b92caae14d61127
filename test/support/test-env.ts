import { randomBytes } from 'node:crypto';
import {
  type Config,
  type Context,
  createContext,
  createLogger,
  type Logger,
  loadConfig,
  prepareDatabase,
  type QueueKeys,
  queueKeys,
  type TaskStore,
} from '@tasks/common';
import mysql from 'mysql2/promise';
import { inject } from 'vitest';
import { openPlainRedis, type PlainRedis } from './redis.js';
import { openSql, type Sql } from './sql.js';

/**
 * A test's world: the store, as the services have it (the one door: its verbs), and beside it
 * plain clients on the same database and Redis keys, for what a test checks or breaks by hand.
 */
export interface TestEnv {
  config: Config;
  /** The environment variables that give a child process this same database and key prefix. */
  env: Record<string, string>;
  /** The context a service would build from `config`: `ctx.store` is `store`. */
  ctx: Context;
  store: TaskStore;
  logger: Logger;
  /** A plain mysql2 pool on the test's database: the truth, and rows written by hand. */
  sql: Sql;
  /** A plain ioredis client on the test's Redis: the truth by key name, and faults made by hand. */
  redis: PlainRedis;
  /** The names of the test's Redis keys (as operators read them with redis-cli). */
  keys: QueueKeys;
  /** Closes the clients, drops the database and deletes the keys. */
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * A name for a database of this test run's own, `test_<run id>_<label><random>`: the run's
 * global teardown drops every such database its tests leave behind.
 */
export function testDatabaseName(label = ''): string {
  return `test_${inject('runId')}_${label}${randomBytes(4).toString('hex')}`;
}

/** TEST_MYSQL_URL with `database` instead of its own. */
export function testDatabaseUrl(database: string): string {
  return withDatabase(inject('mysqlUrl'), database);
}

/**
 * Drops `database` (a no-op when it is gone) on TEST_MYSQL_URL's server, or on the servers
 * `serverUrl` names (a URL whose path is the database's place, its hosts perhaps a
 * Group Replication group's list: the primary is found).
 */
export async function dropTestDatabase(database: string, serverUrl?: string): Promise<void> {
  const server = openSql(serverUrl ? `${serverUrl}/` : withDatabase(inject('mysqlUrl'), ''));
  try {
    await server.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
  } finally {
    await server.end();
  }
}

export interface TestEnvOptions {
  /**
   * The MySQL servers to use instead of TEST_MYSQL_URL's, as a URL without its path
   * (`mysql://root@h1:3311,h2:3312,h3:3313`): the test's database is created there.
   */
  mysqlServer?: string;
}

/**
 * A database and a Redis key prefix of the test file's own, migrated and empty, so test
 * files can run in parallel against the same servers. Both carry the run's id (the run's
 * teardown removes what a failed test did not).
 */
export async function createTestEnv(
  overrides: Record<string, string> = {},
  { mysqlServer }: TestEnvOptions = {},
): Promise<TestEnv> {
  const database = testDatabaseName();
  const env: Record<string, string> = {
    MYSQL_URL: mysqlServer ? `${mysqlServer}/${database}` : testDatabaseUrl(database),
    REDIS_URL: inject('redisUrl'),
    KEY_PREFIX: `test:${inject('runId')}:${database.slice(-8)}:`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // A failed try is retried at once: the helpers of runs.ts fail a task's tries one after
    // another, as an executor would with no backoff. A test of the backoff sets its own.
    RETRY_BACKOFF_MS: '0',
    ...overrides,
  };
  const config = loadConfig(env);
  const logger = createLogger(config, 'test');
  await prepareDatabase(config, logger);
  const ctx = createContext(config, 'test', { logger });
  const sql = openSql(config.MYSQL_URL);
  const redis = openPlainRedis(config);
  return {
    config,
    env,
    ctx,
    store: ctx.store,
    logger,
    sql,
    redis,
    keys: queueKeys({ prefix: config.KEY_PREFIX, queue: config.QUEUE_KEY, deadLetter: config.DEAD_LETTER_KEY }),
    async cleanup() {
      await ctx.close();
      await sql.end();
      await dropTestDatabase(database, mysqlServer);
      try {
        const keys = await redis.keys(`${config.KEY_PREFIX}*`);
        if (keys.length > 0) await redis.del(...keys);
      } finally {
        redis.disconnect();
      }
    },
  };
}

/**
 * Clients like the test file's, on the same Redis and key prefix, whose MySQL cannot be
 * reached (a port nobody listens on): a process during a database outage. The caller closes it.
 */
export function databaseDown(t: TestEnv): Context {
  return createContext(
    loadConfig({ ...t.env, MYSQL_URL: 'mysql://root@127.0.0.1:1/x', DB_POOL_SIZE: '1', DB_CONNECT_TIMEOUT_MS: '500' }),
    'test-database-down',
    { logger: t.logger },
  );
}

/**
 * Listens, as a scheduler does, on the channel inserts are announced on (by its name): `announced`
 * resolves with the channel at the first announcement. The caller closes it.
 */
export async function listenForInserts(t: TestEnv): Promise<{ announced: Promise<string>; close(): void }> {
  const subscriber = t.redis.duplicate();
  subscriber.on('error', () => undefined);
  const announced = new Promise<string>((resolve) => subscriber.once('message', (channel: string) => resolve(channel)));
  await subscriber.subscribe(t.keys.insertedChannel);
  return { announced, close: () => subscriber.disconnect() };
}

/**
 * A Redis client on the test's Redis that has closed its connection (QUIT): every command on it
 * fails at once. For a context whose Redis is gone (`createContext(…, { redis })`).
 */
export async function closedRedis(t: TestEnv): Promise<PlainRedis> {
  const client = openPlainRedis(t.config);
  await client.quit();
  return client;
}

/** What the DLQ processor's inbox holds, read by its key names: ready, waiting out a delay, leased. */
export async function inboxDepths(t: TestEnv): Promise<{ ready: number; delayed: number; inflight: number }> {
  const inbox = t.keys.deadLetterInbox;
  const [ready, delayed, inflight] = await Promise.all([
    t.redis.llen(inbox.ready),
    t.redis.zcard(inbox.delayed),
    t.redis.hlen(inbox.inflight),
  ]);
  return { ready, delayed, inflight };
}
