import { randomBytes } from 'node:crypto';
import {
  type Config,
  type Context,
  createContext,
  createLogger,
  createRedis,
  ensureDatabase,
  loadConfig,
  migrate,
  poolSettings,
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
 * A database and a Redis key prefix of the test file's own, migrated and empty, so test
 * files can run in parallel against the same servers.
 */
export async function createTestEnv(overrides: Record<string, string> = {}): Promise<TestEnv> {
  const suffix = randomBytes(4).toString('hex');
  const env: Record<string, string> = {
    MYSQL_URL: withDatabase(inject('mysqlUrl'), `test_${suffix}`),
    REDIS_URL: inject('redisUrl'),
    KEY_PREFIX: `test:${suffix}:`,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...overrides,
  };
  const config = loadConfig(env);
  const logger = createLogger(config, 'test');
  await ensureDatabase(config.MYSQL_URL, config.DB_CONNECT_TIMEOUT_MS);
  await migrate(poolSettings(config), logger);
  const ctx = createContext(config, 'test', { logger });
  return {
    config,
    env,
    ctx,
    async cleanup() {
      await ctx.close();
      const connection = await mysql.createConnection({ uri: inject('mysqlUrl') });
      await connection.query(`DROP DATABASE IF EXISTS \`test_${suffix}\``);
      await connection.end();
      const redis = createRedis(config, logger, 'test-cleanup');
      const keys = await redis.keys(`${config.KEY_PREFIX}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    },
  };
}
