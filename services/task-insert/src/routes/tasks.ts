import {
  type Config,
  DuplicateIdempotencyKeyError,
  type HandlerRegistry,
  isCommitOutcomeUnknown,
  isDelayed,
  isFinal,
  type Metrics,
  type NewTask,
  parseTaskId,
  SIMULATED,
  sameTask,
  TaskBodyReader,
  TaskRejectedError,
  type TaskStatus,
  type TaskStore,
  taskView,
} from '@tasks/common';
import express, { type Request, type RequestHandler, Router } from 'express';
import { requireJsonBody } from '../content-type.js';
import { HttpError } from '../http-errors.js';
import type { InsertNotifier } from '../insert-notifier.js';
import { InsertQueue, InsertRefusedError, InsertTimedOutError } from '../insert-queue.js';
import type { WaitRoom } from '../wait-room.js';
import { clientGone, seatIn, waitParameter } from './waiting.js';

export interface TaskRoutesDeps {
  store: TaskStore;
  /** The task types a body may name (`simulated` always). */
  handlers: HandlerRegistry;
  /** Where the requests with `?wait=` wait for their tasks. */
  waits: WaitRoom;
  notifier: InsertNotifier;
  config: Pick<
    Config,
    | 'MAX_MESSAGE_LENGTH'
    | 'MAX_TASK_TIME_S'
    | 'BODY_LIMIT_BYTES'
    | 'REQUEST_TIMEOUT_MS'
    | 'INSERT_QUEUE_LIMIT'
    | 'MAX_WAIT_S'
  >;
  metrics?: Metrics;
}

/** POST /tasks, with or without the trailing slash. */
export const INSERT_PATH = /^\/tasks\/?$/;
/** GET /tasks/:id. */
const TASK_PATH = /^\/tasks\/[^/]+\/?$/;

/**
 * The requests the generic request timeout leaves alone, as they bound their own waits:
 * POST /tasks (an insert answered 503 must never be stored afterwards: see insert-queue.ts),
 * and GET /tasks/:id?wait= (it answers at its own deadline, each of its reads bounded).
 */
export function boundsItsOwnWait(req: Request): boolean {
  if (req.method === 'POST') return INSERT_PATH.test(req.path);
  return req.method === 'GET' && TASK_PATH.test(req.path) && req.query.wait !== undefined;
}

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

export function taskRoutes({ store, handlers, waits, notifier, config, metrics }: TaskRoutesDeps): Router {
  const router = Router();
  const bodies = new TaskBodyReader(
    { maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S },
    handlers,
  );
  const json = express.json({ limit: config.BODY_LIMIT_BYTES, strict: false, type: () => true });
  const waitOf = waitParameter(config.MAX_WAIT_S);
  const readTask = (id: number) => within(store.getTask(id), config.REQUEST_TIMEOUT_MS);
  // Group commit: the inserts of requests that arrive together share one statement. Each
  // request gets its own outcome: a task the database refuses fails alone. The queue is
  // bounded in number and in time, and answers only what it knows (see insert-queue.ts).
  const inserts = new InsertQueue((tasks, signal) => store.insert(tasks, signal), {
    limit: config.INSERT_QUEUE_LIMIT,
    timeoutMs: config.REQUEST_TIMEOUT_MS,
    maxBatch: MAX_INSERT_BATCH,
  });
  metrics?.observeInsertQueue(() => inserts.size);

  /**
   * Inserts the task, or finds the one its Idempotency-Key inserted before (with the same body):
   * its id and status, or the error the request is answered with.
   */
  const insertOrReplay = async (
    req: Request,
    task: Omit<NewTask, 'idempotencyKey'>,
    key: string | null,
    started: number,
  ): Promise<{ id: number; status: TaskStatus; replayed: boolean }> => {
    const outcome = await inserts.add({ ...task, idempotencyKey: key });
    if ('id' in outcome) {
      notifier.notify();
      metrics?.tasksInserted.inc();
      return { id: outcome.id, status: isDelayed(task) ? 'delayed' : 'pending', replayed: false };
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
    return { id: first.id, status: first.status, replayed: true };
  };

  // ?wait= is read first: a bad one is a 400 whatever the body.
  const readWait: RequestHandler = (req, res, next) => {
    res.locals.waitMs = waitOf(req);
    res.locals.started = performance.now();
    next();
  };

  // With ?wait=, the answer (201 all the same) waits until the task is final or the wait is
  // over, and carries the task as it is then (null should MySQL not answer that read: the task
  // is stored all the same).
  router.post('/tasks', readWait, requireJsonBody, json, async (req, res) => {
    const started = res.locals.started as number;
    const waitMs = res.locals.waitMs as number | null;
    const key = idempotencyKey(req.get('Idempotency-Key'));
    const read = bodies.read(req.body);
    if (!read.ok) {
      const message = read.problems.map((d) => `${d.field} ${d.message}`).join('; ');
      throw new HttpError(400, 'invalid_task', message, read.problems);
    }
    const { task, ignored } = read;
    // The seat is taken before the insert: a full room answers 503 with nothing stored.
    const seat = waitMs ? seatIn(waits) : null;
    const gone = seat ? clientGone(res) : undefined;
    try {
      const stored = await insertOrReplay(req, task, key, started);
      res.status(201).location(`/tasks/${stored.id}`);
      if (stored.replayed) res.set('Idempotent-Replayed', 'true');
      if (waitMs === null) {
        res.json(created(stored.id, stored.status, ignored));
        return;
      }
      let final = null;
      if (seat && !isFinal(stored.status)) {
        const waited = await seat.wait(stored.id, Math.max(0, started + waitMs - performance.now()), gone);
        if (waited.end === 'aborted') return;
        final = waited.task;
      }
      const now =
        final ??
        (await readTask(stored.id).catch((err: unknown) => {
          req.log.warn({ err, taskId: stored.id }, 'the task waited for could not be read back');
          return null;
        }));
      res.json({ ...created(stored.id, now?.status ?? stored.status, ignored), task: now ? taskView(now) : null });
    } finally {
      seat?.leave();
    }
  });

  // With ?wait=, the answer waits until the task is final (completed, failed, cancelled) or
  // the wait is over, and is the task as MySQL holds it then.
  router.get('/tasks/:id', async (req, res) => {
    const started = performance.now();
    const id = parseId(req.params.id);
    const waitMs = waitOf(req);
    const seat = waitMs ? seatIn(waits) : null;
    try {
      // Waiting from before the first read: a task that finishes in between wakes it.
      const waiting = seat?.wait(id, Math.max(0, started + (waitMs ?? 0) - performance.now()), clientGone(res));
      let task = await readTask(id);
      if (task && waiting && !isFinal(task.status)) {
        const { end, task: final } = await waiting;
        if (end === 'aborted') return;
        task = final ?? (await readTask(id));
      }
      if (!task) throw new HttpError(404, 'not_found', `task ${id} does not exist`);
      res.json(taskView(task));
    } finally {
      seat?.leave();
    }
  });

  return router;
}
