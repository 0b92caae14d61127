import { type Clock, systemClock } from './clock.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { createDatabase, type Database, type DatabaseSettings, ensureDatabase } from './mysql/database.js';
import { migrate } from './mysql/migrate.js';
import { closeRedis, createRedis, dropConnection, type Redis } from './redis/client.js';
import { queueKeys } from './redis/keys.js';
import { type QueueRedis, withQueueCommands } from './redis/scripts.js';
import { TaskQueue } from './redis/task-queue.js';
import { databaseSettingError } from './setting-error.js';
import { TaskStore } from './store/task-store.js';
import type { RetryPolicy } from './tasks/retry-policy.js';

/** The clients a service works with, built from config in one place. */
export interface Context {
  config: Config;
  logger: Logger;
  pool: Database;
  redis: QueueRedis;
  queue: TaskQueue;
  clock: Clock;
  /** The one door to the task store: what services, the CLI and the tests work with. */
  store: TaskStore;
  /**
   * Opens another Redis client like the context's own (standalone, cluster or sentinel), for
   * blocking commands or pub/sub; its commands never fail for a reconnect. The caller closes it.
   */
  openRedis(purpose: string): Redis;
  /**
   * Drops each Redis client this context opened that is not connected now: the commands waiting
   * for it to come back fail at once. For a stop whose time is up. Returns how many it dropped.
   */
  dropUnreachable(): number;
  /** Closes what this context created; clients passed in as overrides are left open. */
  close(): Promise<void>;
}

export interface ContextOverrides {
  logger?: Logger;
  pool?: Database;
  redis?: Redis;
  clock?: Clock;
  /** The randomness of retry backoff's jitter. */
  random?: () => number;
}

/** How many of a group's tasks may run at once, as the settings give it (Infinity: no limit). */
export function groupLimit(config: Config): (group: string) => number {
  return (group) => {
    const limit = config.GROUP_LIMITS.get(group) ?? config.GROUP_CONCURRENCY;
    return limit > 0 ? limit : Number.POSITIVE_INFINITY;
  };
}

/** The retry policy the settings give. */
export function retryPolicy(config: Config): RetryPolicy {
  return {
    maxAttempts: config.MAX_ATTEMPTS,
    backoffMs: config.RETRY_BACKOFF_MS,
    backoffMaxMs: config.RETRY_BACKOFF_MAX_MS,
  };
}

export function databaseSettings(config: Config): DatabaseSettings {
  return {
    url: config.MYSQL_URL,
    size: config.DB_POOL_SIZE,
    connectTimeoutMs: config.DB_CONNECT_TIMEOUT_MS,
    lockWaitTimeoutS: config.DB_LOCK_WAIT_TIMEOUT_S,
  };
}

/**
 * Creates the database if needed and applies pending migrations. Wrong credentials or a missing
 * privilege fail with a SettingError naming MYSQL_URL: no retry can help.
 */
export async function prepareDatabase(config: Config, logger: Logger): Promise<void> {
  try {
    await ensureDatabase(databaseSettings(config));
    const applied = await migrate(databaseSettings(config), logger);
    if (applied > 0) logger.info({ applied }, 'database migrated');
  } catch (err) {
    throw databaseSettingError(config.MYSQL_URL, err) ?? err;
  }
}

export function createContext(config: Config, name: string, overrides: ContextOverrides = {}): Context {
  const logger = overrides.logger ?? createLogger(config, name);
  const clock = overrides.clock ?? systemClock;
  const pool = overrides.pool ?? createDatabase(databaseSettings(config), logger);
  /** The Redis clients this context opened and that have not ended. */
  const opened = new Set<Redis>();
  const track = (client: Redis): Redis => {
    opened.add(client);
    client.once('end', () => opened.delete(client));
    return client;
  };
  const redis = withQueueCommands(overrides.redis ?? track(createRedis(config, logger, name)));
  const queue = new TaskQueue(
    redis,
    queueKeys({ prefix: config.KEY_PREFIX, queue: config.QUEUE_KEY, deadLetter: config.DEAD_LETTER_KEY }),
    config.DEAD_LETTER_RETENTION,
    clock,
  );
  const openRedis = (purpose: string) =>
    track(createRedis(config, logger, `${name}:${purpose}`, { maxRetriesPerRequest: null }));
  const store = new TaskStore({
    db: pool,
    queue,
    redis,
    openRedis,
    retry: retryPolicy(config),
    groupLimit: groupLimit(config),
    clock,
    random: overrides.random,
  });
  return {
    config,
    logger,
    pool,
    redis,
    queue,
    clock,
    store,
    openRedis,
    dropUnreachable() {
      const unreachable = [...opened].filter((client) => client.status !== 'ready');
      for (const client of unreachable) dropConnection(client);
      return unreachable.length;
    },
    async close() {
      if (!overrides.redis) await closeRedis(redis);
      if (!overrides.pool) await pool.end();
    },
  };
}
