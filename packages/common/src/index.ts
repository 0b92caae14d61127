// The public interface of @tasks/common: what the services, the CLI, the bench and the tests
// outside packages/common use. The task store is reached through its verbs only (TaskStore);
// its queue, SQL, Lua, transaction helpers and wire codec stay inside this package.

// Configuration: loading and validating the settings, and the errors a bad setting gives.

export { type Config, ConfigError, configFromEnvironment, loadConfig } from './config.js';
export { listenSettingError, SettingError } from './setting-error.js';

// Logging, metrics and a service's life: start, loop, stop.

export { Batcher, type BatcherOptions, type Split } from './batcher.js';
export type { Clock } from './clock.js';
export { EVENTS, type EventName } from './events.js';
export { HEARTBEAT_INTERVAL_MS, HEARTBEAT_TTL_MS, Heartbeat } from './heartbeat.js';
export { failureBackoffMs, type RunOptions, runService, sleep } from './lifecycle.js';
export { createLogger, type Logger } from './logger.js';
export { FailureLog, Loop, type LoopOptions, type TickResult } from './loop.js';
export { createMetrics, Metrics, type MetricsOptions, QUEUE_DEPTH_READ_TIMEOUT_MS } from './metrics.js';
export { onParentGone, tellParent } from './parent.js';
export { type ServeOptions, type ServiceParts, serve } from './service.js';

// The task store, the one door to MySQL and Redis, and the types its verbs take and return.

export { type Context, type ContextOverrides, createContext, prepareDatabase } from './context.js';
export type { CheckResult, ReadinessReport } from './readiness.js';
export type { Leased } from './redis/lease-queue.js';
export type { LiveService, LiveServices, ServiceReport } from './redis/service-registry.js';
export type { QueueDepthName, QueueDepths } from './redis/task-queue.js';
export type {
  DeadLetterPage,
  FailedTry,
  FailOutcome,
  FetchedTasks,
  LeasedTask,
  ReadyWaiter,
  RecoverOptions,
  RunningTask,
  Stats,
  TaskStore,
} from './store/task-store.js';
export { type CallerConnection, type Enqueued, EnqueueError, insertOnConnection } from './tasks/enqueue.js';
export { type InsertOutcome, isDelayed, type NewTask } from './tasks/insert-tasks.js';
export type { RetentionOptions, RetentionStep } from './tasks/retention.js';
export type { RetryPolicy } from './tasks/retry-policy.js';
export type { ListTasksOptions, MinuteCounts } from './tasks/task-reads.js';
export { type CancelOutcome, notCancelledReason } from './tasks/transitions/cancel.js';
export type { ClaimResult } from './tasks/transitions/claim-and-dispatch.js';
export type { CompleteResult, Completion } from './tasks/transitions/complete.js';
export type { FailedRunOutcome } from './tasks/transitions/fail-runs.js';
export type { RecordResult } from './tasks/transitions/record-dead-letters.js';
export type { RecoverResult } from './tasks/transitions/recover.js';
export type { RedriveAllResult, RedriveOutcome } from './tasks/transitions/redrive.js';

// The task rules the API and the CLI apply and show, and the errors the store's verbs throw.

export { NoWritablePrimaryError } from './mysql/primary.js';
export { isCommitOutcomeUnknown, TransactionStoppedError } from './mysql/stop.js';
export { DuplicateIdempotencyKeyError, TaskRejectedError } from './tasks/insert-tasks.js';
export { EXECUTOR_LOST } from './tasks/retry-policy.js';
export {
  CONTROL_FIELDS,
  type FieldProblem,
  MAX_DELAY_MS,
  PRIORITY,
  type ReadBody,
  SCHEDULING_FIELDS,
  sameTask,
  TaskBodyReader,
  TIMEOUT_MS,
} from './tasks/task-body.js';
export { decodeTaskData } from './tasks/task-data.js';
export { ignoredFields, type TaskInputLimits, taskInputSchema } from './tasks/task-input.js';
export type { Task } from './tasks/task-row.js';
export {
  FINAL_STATUSES,
  type FinalStatus,
  isFinal,
  parseTaskId,
  TASK_STATUSES,
  type TaskData,
  type TaskStatus,
} from './tasks/task-schema.js';
export { taskView } from './tasks/task-view.js';
export { notRedrivenReason } from './tasks/transitions/redrive.js';
export { type DeadLetterEntry, type DeadLetterView, deadLetterView } from './wire/dead-letter.js';
export {
  MESSAGE_LIMITS,
  type QueueMessage,
  SIMULATED,
  type SimulatedMessage,
  type TypedMessage,
} from './wire/message-codec.js';

// Task types and their handlers: what a handlers module (HANDLERS) exports, checked.

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
  loadHandlers,
  type TypeHandler,
} from './handlers.js';

// Whether an error means a store is unavailable for now (a retry later may succeed).

export { isDatabaseUnavailable, isLockWaitTimeout } from './mysql/errors.js';
export { isRedisUnavailable, isTransientError } from './transient.js';

// Settings shown with their secrets hidden, and the Redis key names operators read with redis-cli.

export { redactUrl } from './redact.js';
export { type QueueKeys, queueKeys, storedKeys } from './redis/keys.js';
