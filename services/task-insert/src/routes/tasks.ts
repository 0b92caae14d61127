import {
  type Config,
  DuplicateIdempotencyKeyError,
  type HandlerRegistry,
  isCommitOutcomeUnknown,
  type Metrics,
  notCancelledReason,
  parseTaskId,
  SIMULATED,
  TaskRejectedError,
  type TaskStatus,
  type TaskStore,
  taskView,
} from '@tasks/common';
import express, { Router } from 'express';
import { requireJsonBody } from '../content-type.js';
import { HttpError } from '../http-errors.js';
import type { InsertNotifier } from '../insert-notifier.js';
import { InsertQueue, InsertRefusedError, InsertTimedOutError } from '../insert-queue.js';
import { sameTask, TaskBodyReader } from '../task-body.js';

export interface TaskRoutesDeps {
  store: TaskStore;
  /** The task types a body may name (`simulated` always). */
  handlers: HandlerRegistry;
  notifier: InsertNotifier;
  config: Pick<
    Config,
    'MAX_MESSAGE_LENGTH' | 'MAX_TASK_TIME_S' | 'BODY_LIMIT_BYTES' | 'REQUEST_TIMEOUT_MS' | 'INSERT_QUEUE_LIMIT'
  >;
  metrics?: Metrics;
}

/** POST /tasks, with or without the trailing slash: the route the generic request timeout leaves alone. */
export const INSERT_PATH = /^\/tasks\/?$/;

const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Printable ASCII, as the header's specification (a structured-field string) allows. */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]+$/;
/** Most tasks inserted by one statement. */
const MAX_INSERT_BATCH = 500;

/** The original's answer, with the fields of the body that were ignored when there were any. */
function created(id: number, status: TaskStatus, ignored: string[]) {
  return {
    id,
    message: 'Task created successfully',
    status,
    ...(ignored.length > 0 ? { ignored_fields: ignored } : {}),
  };
}

/** The field of the request behind a column the database refused. */
const FIELD_OF_COLUMN: Record<string, string> = { data: 'message', idempotency_key: 'Idempotency-Key' };

/** The answer to a task the database refused; the server's own words (naming its schema) go to the log only. */
function refused(err: TaskRejectedError, type: string | undefined): HttpError {
  // The original's `data` holds `{"message","time"}`, and `time` is an integer by then: the
  // message is at fault. A typed task's data is its body.
  const column = err.column === 'data' && type !== undefined && type !== SIMULATED ? undefined : err.column;
  const field = (column && FIELD_OF_COLUMN[column]) ?? 'body';
  const rule = 'holds a value the database cannot store';
  return new HttpError(400, 'invalid_task', `${field} ${rule}`, [{ field, message: rule }]);
}

function idempotencyKey(header: string | undefined): string | null {
  if (header === undefined) return null;
  const key = header.trim();
  if (key.length === 0 || key.length > MAX_IDEMPOTENCY_KEY_LENGTH || !IDEMPOTENCY_KEY.test(key)) {
    const rule = `must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII characters`;
    throw new HttpError(400, 'invalid_header', `Idempotency-Key ${rule}`, [
      { field: 'Idempotency-Key', message: rule },
    ]);
  }
  return key;
}

/** A 503 that says nothing was stored, and when to try again. */
function notStored(err: InsertRefusedError | InsertTimedOutError): HttpError {
  return new HttpError(503, 'unavailable', `${err.message}; try again shortly`, undefined, {
    'Retry-After': String(err.retryAfterS),
  });
}

/** A 503 for an insert whose connection was lost during its commit: it may be stored, or not. */
function outcomeUnknown(key: string | null): HttpError {
  const lost =
    'the connection to the database was lost while the task was being committed: whether it was stored is unknown';
  const retry =
    key === null
      ? 'a retry may store it twice; send an Idempotency-Key with inserts to make retries safe'
      : 'retry with the same Idempotency-Key, which stores it once';
  return new HttpError(503, 'unavailable', `${lost}; ${retry}`, undefined, { 'Retry-After': '1' });
}

/** `promise`, or a 503 should it not settle within `ms` (for reads: nothing is written meanwhile). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HttpError(503, 'unavailable', `no answer from the database within ${ms} ms; try again shortly`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function parseId(raw: string | undefined): number {
  const id = parseTaskId(raw);
  if (id === null) {
    throw new HttpError(400, 'invalid_id', `task id must be a positive integer (got ${JSON.stringify(raw)})`, [
      { field: 'id', message: 'must be a positive integer' },
    ]);
  }
  return id;
}

export function taskRoutes({ store, handlers, notifier, config, metrics }: TaskRoutesDeps): Router {
  const router = Router();
  const bodies = new TaskBodyReader(
    { maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S },
    handlers,
  );
  const json = express.json({ limit: config.BODY_LIMIT_BYTES, strict: false, type: () => true });
  // Group commit: the inserts of requests that arrive together share one statement. Each
  // request gets its own outcome: a task the database refuses fails alone. The queue is
  // bounded in number and in time, and answers only what it knows (see insert-queue.ts).
  const inserts = new InsertQueue((tasks, signal) => store.insert(tasks, signal), {
    limit: config.INSERT_QUEUE_LIMIT,
    timeoutMs: config.REQUEST_TIMEOUT_MS,
    maxBatch: MAX_INSERT_BATCH,
  });
  metrics?.observeInsertQueue(() => inserts.size);

  router.post('/tasks', requireJsonBody, json, async (req, res) => {
    const started = performance.now();
    const key = idempotencyKey(req.get('Idempotency-Key'));
    const read = bodies.read(req.body);
    if (!read.ok) {
      throw new HttpError(
        400,
        'invalid_task',
        read.problems.map((d) => `${d.field} ${d.message}`).join('; '),
        read.problems,
      );
    }
    const { task, ignored } = read;
    const outcome = await inserts.add({ ...task, idempotencyKey: key });
    if ('id' in outcome) {
      notifier.notify();
      metrics?.tasksInserted.inc();
      res
        .status(201)
        .location(`/tasks/${outcome.id}`)
        .json(created(outcome.id, 'pending', ignored));
      return;
    }
    if (outcome.error instanceof TaskRejectedError) {
      req.log.info({ err: outcome.error }, 'the database refused a task');
      throw refused(outcome.error, task.type);
    }
    if (outcome.error instanceof InsertRefusedError || outcome.error instanceof InsertTimedOutError) {
      throw notStored(outcome.error);
    }
    if (isCommitOutcomeUnknown(outcome.error)) {
      req.log.warn({ err: outcome.error }, 'the connection was lost during an insert: its outcome is unknown');
      throw outcomeUnknown(key);
    }
    if (!(outcome.error instanceof DuplicateIdempotencyKeyError) || key === null) throw outcome.error;
    // A read: should it not be answered in the time left, the 503 leaves nothing behind.
    const left = Math.max(0, config.REQUEST_TIMEOUT_MS - (performance.now() - started));
    const first = await within(store.getTaskByIdempotencyKey(key), left);
    if (!first) throw outcome.error;
    if (!sameTask(first, task)) {
      throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different body');
    }
    res
      .status(201)
      .location(`/tasks/${first.id}`)
      .set('Idempotent-Replayed', 'true')
      .json(created(first.id, first.status, ignored));
  });

  // Cancel: a task not finished yet becomes cancelled at once (a running one's executor is told
  // to stop it); a second cancel is harmless. A finished task stays as it is: 409 with its status.
  router.post('/tasks/:id/cancel', async (req, res) => {
    const id = parseId(req.params.id);
    const outcome = await store.cancel(id);
    const refusal = notCancelledReason(outcome);
    if (refusal !== null && !outcome.cancelled) {
      if (outcome.reason === 'not_found') throw new HttpError(404, 'not_found', refusal);
      throw new HttpError(409, 'finished', refusal, undefined, {}, { status: outcome.status });
    }
    if (outcome.cancelled) {
      metrics?.tasksCancelled.inc();
      req.log.info({ taskId: id, was: outcome.was }, 'task cancelled');
    }
    const task = await store.getTask(id);
    if (!task) throw new HttpError(404, 'not_found', `task ${id} does not exist`);
    res.json(taskView(task));
  });

  router.get('/tasks/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const task = await store.getTask(id);
    if (!task) throw new HttpError(404, 'not_found', `task ${id} does not exist`);
    res.json(taskView(task));
  });

  return router;
}
