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

/**
 * What a service works with, built from config in one place: the task store (the one door to
 * MySQL and Redis), the logger and the clock. The clients behind the store are not here: the
 * store's own tests reach them through createContextParts.
 */
export interface Context {
  config: Config;
  logger: Logger;
  clock: Clock;
  /** The one door to the task store: what services, the CLI and the tests work with. */
  store: TaskStore;
  /**
   * Drops each Redis client this context opened that is not connected now: the commands waiting
   * for it to come back fail at once. For a stop whose time is up. Returns how many it dropped.
   */
  dropUnreachable(): number;
  /** Closes what this context created; clients passed in as overrides are left open. */
  close(): Promise<void>;
}

/**
 * A context with the clients and the queue behind its store: for the store's own code and
 * tests (packages/common), never exported from index.ts.
 */
export interface ContextParts extends Context {
  pool: Database;
  redis: QueueRedis;
  queue: TaskQueue;
  /**
   * Opens another Redis client like the context's own (standalone, cluster or sentinel), for
   * blocking commands or pub/sub; its commands never fail for a reconnect. The caller closes it.
   */
  openRedis(purpose: string): Redis;
}

export interface ContextOverrides {
  logger?: Logger;
  /**
   * A Redis client to use instead of one built from config (left open by close): a test's
   * client in a state of its own, closed or pointed elsewhere.
   */
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

/** The overrides of the store's own tests: also a pool of theirs (left open by close). */
export interface ContextPartsOverrides extends ContextOverrides {
  pool?: Database;
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
  const { logger, clock, store, dropUnreachable, close } = createContextParts(config, name, overrides);
  return { config, logger, clock, store, dropUnreachable, close };
}

/** The context and the parts behind its store (see ContextParts): for packages/common only. */
export function createContextParts(config: Config, name: string, overrides: ContextPartsOverrides = {}): ContextParts {
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
