export { Batcher } from './batcher.js';
export { type Clock, systemClock } from './clock.js';
export {
  type Config,
  ConfigError,
  configFromEnvironment,
  configSchema,
  loadConfig,
  MAX_DURATION_MS,
} from './config.js';
export { type Context, type ContextOverrides, createContext, poolSettings, prepareDatabase } from './context.js';
export { failureBackoffMs, retryUntil, runService, sleep } from './lifecycle.js';
export { createLogger, type Logger, REDACTED_PATHS } from './logger.js';
export { createMetrics, Metrics, type MetricsOptions } from './metrics.js';
export { idsCondition } from './mysql/ids-condition.js';
export { ALREADY_DONE, MIGRATIONS_DIR, migrate, migrationStatements } from './mysql/migrate.js';
export { createPool, ensureDatabase, isConnectionError, type Pool, type PoolSettings } from './mysql/pool.js';
export { type OpsServer, type OpsServerOptions, startOpsServer, startOpsServerFromConfig } from './ops-server.js';
export { type CheckResult, checkReadiness, READINESS_TIMEOUT_MS, type ReadinessReport } from './readiness.js';
export { redactUrl, SECRET_VARIABLES } from './redact.js';
export { createRedis, type Redis } from './redis/client.js';
export { type DeadLetterEntry, DeadLetterList, parseDeadLetter } from './redis/dead-letter-list.js';
export { type LeaseQueueKeys, type QueueKeys, queueKeys } from './redis/keys.js';
export { type FetchResult, type Leased, LeaseQueue, type RetryRequest } from './redis/lease-queue.js';
export { type QueueCommands, type QueueRedis, withQueueCommands } from './redis/scripts.js';
export { EXECUTOR_LOST, type QueueDepths, TaskQueue } from './redis/task-queue.js';
export { type ServeOptions, type ServiceParts, serve } from './service.js';
export * from './tasks/insert-tasks.js';
export * from './tasks/redrive.js';
export * from './tasks/task-input.js';
export * from './tasks/task-reads.js';
export * from './tasks/task-repository.js';
export type { Task } from './tasks/task-row.js';
export * from './tasks/task-schema.js';
export { taskView } from './tasks/task-view.js';
