import {
  type CallerConnection,
  type Enqueued,
  EnqueueError,
  type FieldProblem,
  type HandlerRegistry,
  type Handlers,
  handlerRegistry,
  insertOnConnection,
  loadConfig,
  TaskBodyReader,
} from '@tasks/common';

export { type CallerConnection, type Enqueued, EnqueueError };

/** A body enqueue refused, with every field at fault, as `POST /tasks` would answer it (422). */
export class TaskBodyError extends EnqueueError {
  constructor(readonly problems: FieldProblem[]) {
    super(`the task's body is refused: ${problems.map((p) => `${p.field} ${p.message}`).join('; ')}`);
  }
}

export interface EnqueueOptions {
  /**
   * The handlers of your task types, as the executors run them: a typed body is checked with its
   * type's schema and takes its type's timeoutMs and maxAttempts, exactly as `POST /tasks` does.
   * Without them, only the original's bodies (`{"message","time"}`) are taken.
   */
  handlers?: Handlers;
  /** Settings over the environment's: MAX_MESSAGE_LENGTH and MAX_TASK_TIME_S bound the original's bodies. */
  settings?: Record<string, string>;
}

/** Inserts a task on a connection, in its open transaction (see createEnqueue). */
export type Enqueue = (connection: CallerConnection, body: unknown) => Promise<Enqueued>;

/**
 * An enqueue for the tasks of your own transaction (a transactional outbox): the task is
 * inserted on your mysql2 connection, in the transaction you have open on it, and exists only
 * if you commit. A rollback leaves no trace of it; nothing runs it before your commit, and the
 * schedulers find it within a poll (POLL_INTERVAL_MS) after.
 *
 * `body` is what `POST /tasks` takes (the original's `{"message","time"}`, or a typed task's,
 * with `run_at`/`delay_ms`, `priority`, `group`, `timeout_ms`), read by the same rules; a body
 * at fault throws TaskBodyError naming every field, and inserts nothing. The connection must
 * be one connection (`await pool.getConnection()`), not a pool; outside a transaction the task
 * commits at once. It may be in any sql_mode and time zone; its character set must be UTF-8.
 *
 * Holds a row lock on one of the task counts until you commit: keep the transaction short, as
 * with any row you write.
 */
export function createEnqueue(options: EnqueueOptions = {}): Enqueue {
  const config = loadConfig({ ...process.env, ...options.settings });
  const handlers: HandlerRegistry = handlerRegistry(options.handlers ?? {}, null, 'createEnqueue({ handlers })');
  const bodies = new TaskBodyReader(
    { maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S },
    handlers,
  );
  return async (connection, body) => {
    const read = bodies.read(body);
    if (!read.ok) throw new TaskBodyError(read.problems);
    return insertOnConnection(connection, { ...read.task, idempotencyKey: null });
  };
}
