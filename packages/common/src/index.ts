export { Batcher, type BatcherOptions, type Split } from './batcher.js';
export { type Clock, systemClock } from './clock.js';
export {
  CLUSTER_KEY_PREFIX,
  type Config,
  ConfigError,
  configFromEnvironment,
  configSchema,
  type HostPort,
  loadConfig,
  MAX_DURATION_MS,
} from './config.js';
export {
  type Context,
  type ContextOverrides,
  createContext,
  databaseSettings,
  prepareDatabase,
  retryPolicy,
} from './context.js';
export { EVENTS, type EventName } from './events.js';
export {
  type BodySchema,
  defineHandlers,
  type HandlerContext,
  type HandlerDefinition,
  type HandlerFunction,
  HandlerRegistry,
  type Handlers,
  HandlersError,
  type HandlerTask,
  handlerRegistry,
  handlersModulePath,
  loadHandlers,
  type TypeHandler,
} from './handlers.js';
export {
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TTL_MS,
  Heartbeat,
  type HeartbeatDeps,
  type HeartbeatOptions,
} from './heartbeat.js';
export { FORCE_EXIT_MS, failureBackoffMs, type RunOptions, retryUntil, runService, sleep } from './lifecycle.js';
export { createLogger, type Logger, REDACTED_PATHS } from './logger.js';
export { FailureLog, Loop, type LoopOptions, type TickResult } from './loop.js';
export { createMetrics, Metrics, type MetricsOptions, QUEUE_DEPTH_READ_TIMEOUT_MS } from './metrics.js';
export {
  createDatabase,
  Database,
  type DatabaseSettings,
  ensureDatabase,
  openConnection,
  SESSION_SQL_MODE,
} from './mysql/database.js';
export {
  isAccessDenied,
  isConnectionError,
  isDatabaseUnavailable,
  isLockWaitTimeout,
  isReadOnlyError,
  isRefusedAsReadOnly,
  isRolledBack,
  NO_WRITABLE_PRIMARY,
} from './mysql/errors.js';
export { idsCondition } from './mysql/ids-condition.js';
export { ALREADY_DONE, MIGRATIONS_DIR, migrate, migrationStatements } from './mysql/migrate.js';
export { type MysqlHost, type MysqlTarget, MysqlUrlError, parseMysqlUrl } from './mysql/mysql-url.js';
export { NAMED_LOCK_SILENT_S, withNamedLock } from './mysql/named-lock.js';
export { findPrimary, NoWritablePrimaryError } from './mysql/primary.js';
export {
  ConnectionAbandonedError,
  isCommitOutcomeUnknown,
  STOP_GRACE_MS,
  TransactionStoppedError,
} from './mysql/stop.js';
export { oneTrip, type Statement, type TransactionOptions, type Trip, transaction } from './mysql/transaction.js';
export { type OpsServer, type OpsServerOptions, startOpsServer, startOpsServerFromConfig } from './ops-server.js';
export { onParentGone, tellParent } from './parent.js';
export {
  type CheckResult,
  checkReadiness,
  READINESS_PROBE_TTL_MS,
  READINESS_TIMEOUT_MS,
  type ReadinessDeps,
  type ReadinessReport,
} from './readiness.js';
export { redactUrl, SECRET_VARIABLES } from './redact.js';
export {
  closeRedis,
  createRedis,
  dropConnection,
  type Redis,
  type RedisClientOptions,
  type RedisConfig,
  reconnectOnReadonly,
} from './redis/client.js';
export { DeadLetterList } from './redis/dead-letter-list.js';
export { type ErrorLogEntry, ErrorLogLimiter, REDIS_ERROR_LOG_INTERVAL_MS } from './redis/error-log.js';
export {
  hashTag,
  type LeaseQueueKeys,
  type QueueKeys,
  queueKeys,
  type ServiceKeys,
  sharedHashTag,
  storedKeys,
} from './redis/keys.js';
export { type FetchResult, type Leased, LeaseQueue, type RetryRequest } from './redis/lease-queue.js';
export { luaSource, type QueueCommands, type QueueRedis, withIncludes, withQueueCommands } from './redis/scripts.js';
export {
  type LiveService,
  type LiveServices,
  processId,
  ServiceRegistry,
  type ServiceReport,
} from './redis/service-registry.js';
export {
  type DeadLetterRequest,
  depthsByName,
  QUEUE_DEPTH_NAMES,
  type QueueDepthName,
  type QueueDepths,
  TaskQueue,
} from './redis/task-queue.js';
export { type ServeOptions, type ServiceParts, serve } from './service.js';
export { databaseSettingError, listenSettingError, SettingError } from './setting-error.js';
export * from './store/task-store.js';
export * from './tasks/insert-tasks.js';
export * from './tasks/retention.js';
export * from './tasks/retry-policy.js';
export * from './tasks/status-counts.js';
export * from './tasks/task-data.js';
export * from './tasks/task-input.js';
export * from './tasks/task-reads.js';
export type { Task } from './tasks/task-row.js';
export * from './tasks/task-schema.js';
export { taskView } from './tasks/task-view.js';
export { type CancelOutcome, notCancelledReason } from './tasks/transitions/cancel.js';
export * from './tasks/transitions/claim-and-dispatch.js';
export * from './tasks/transitions/complete.js';
export type { TransitionDeps } from './tasks/transitions/deps.js';
export * from './tasks/transitions/fail-runs.js';
export * from './tasks/transitions/record-dead-letters.js';
export * from './tasks/transitions/recover.js';
export * from './tasks/transitions/redrive.js';
export { isRedisUnavailable, isTransientError } from './transient.js';
export { type DeadLetterEntry, type DeadLetterView, deadLetterView, readDeadLetter } from './wire/dead-letter.js';
export * from './wire/message-codec.js';
