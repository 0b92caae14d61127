import { randomBytes } from 'node:crypto';
import {
  type Config,
  type Context,
  createContext,
  createLogger,
  createRedis,
  databaseSettings,
  ensureDatabase,
  loadConfig,
  migrate,
  openConnection,
} from '@tasks/common';
import mysql from 'mysql2/promise';
import { inject } from 'vitest';

export interface TestEnv {
  config: Config;
  /** The environment variables that give a child process this same database and key prefix. */
  env: Record<string, string>;
  ctx: Context;
  /** Drops the database and deletes the keys. */
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
  const connection = serverUrl
    ? await openConnection({ url: `${serverUrl}/`, size: 1, connectTimeoutMs: 5_000, lockWaitTimeoutS: 5 })
    : await mysql.createConnection({ uri: withDatabase(inject('mysqlUrl'), '') });
  try {
    await connection.query(`DROP DATABASE IF EXISTS ${mysql.escapeId(database)}`);
  } finally {
    await connection.end();
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
    ...overrides,
  };
  const config = loadConfig(env);
  const logger = createLogger(config, 'test');
  await ensureDatabase(databaseSettings(config));
  await migrate(databaseSettings(config), logger);
  const ctx = createContext(config, 'test', { logger });
  return {
    config,
    env,
    ctx,
    async cleanup() {
      await ctx.close();
      await dropTestDatabase(database, mysqlServer);
      const redis = createRedis(config, logger, 'test-cleanup');
      const keys = await redis.keys(`${config.KEY_PREFIX}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
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
    { logger: t.ctx.logger },
  );
}
