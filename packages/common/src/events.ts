/**
 * The `event` field of the log lines that tests, operators' alerts and log queries act on.
 * The sentence of a line may change; these names do not.
 */
export const EVENTS = {
  /** A service is ready: its loops run (the API: it listens). */
  started: 'service.started',
  /** A service stopped after a signal. */
  stopped: 'service.stopped',
  /**
   * The shutdown timeout passed while the stop still waited: the connections to stores that do
   * not answer were dropped (`dropped`), or, if it waits on, the process exits 1.
   */
  stopOverdue: 'service.stop-overdue',
  /** The process that started this one (`pnpm start`) is gone: the service stops as on SIGTERM. */
  parentGone: 'service.parent-gone',
  /** A service could not start; it exits non-zero. */
  startFailed: 'service.start-failed',
  /** The API listens (its routes that need the database answer 503 until it is `started`). */
  apiListening: 'api.listening',
  /** HEALTH_PORT was taken by another process: this one runs without /healthz, /readyz and /metrics. */
  opsPortTaken: 'ops.port-taken',
  /** /healthz, /readyz and /metrics of a service without an API listen. */
  opsListening: 'ops.listening',
  /** The scheduler claimed and pushed tasks (`count`, `taskIds`; at debug level). */
  tasksDispatched: 'tasks.dispatched',
  /** An executor starts a run of a task (`taskId`, `attempt`). */
  taskStarted: 'task.started',
  /** A run of a task succeeded and its completion was written. */
  taskCompleted: 'task.completed',
  /** A failed run was recorded and its task retried. */
  taskRetried: 'task.retried',
  /** A task was dead-lettered after its last attempt. */
  taskDeadLettered: 'task.dead-lettered',
  /** A try passed its deadline: its handler's signal aborted, and the try failed (`timeoutMs`). */
  taskTimedOut: 'task.timed-out',
  /** A running task was cancelled: its handler's signal aborted, and its run ended. */
  taskCancelled: 'task.cancelled',
  /** A run whose task no longer runs in it (cancelled, finished, run again) was not started. */
  runDismissed: 'run.dismissed',
  /** A failed run changed nothing: a stale message, or a duplicate of one already counted. */
  runDropped: 'run.dropped',
  /** A message or dead letter could not be read; it was set aside with `reason`. */
  invalidEntry: 'entry.invalid',
  /** The sweeper recovered tasks (`reaped`, `repushed`, `deadLettered`, `invalid`, with their ids). */
  tasksRecovered: 'tasks.recovered',
  /** Tasks whose data cannot become a message were marked failed. */
  invalidTaskData: 'tasks.invalid-data',
  /** On stop, unfinished tasks were handed back to the queue. */
  tasksHandedBack: 'tasks.handed-back',
  /** A loop keeps failing (a summary at a bounded rate), or recovered. */
  loopFailing: 'loop.failing',
  loopRecovered: 'loop.recovered',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];
