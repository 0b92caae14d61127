import {
  Batcher,
  type Config,
  DuplicateIdempotencyKeyError,
  type InsertOutcome,
  ignoredFields,
  type Metrics,
  type NewTask,
  parseTaskId,
  type TaskData,
  TaskRejectedError,
  type TaskStatus,
  type TaskStore,
  taskInputSchema,
  taskView,
} from '@tasks/common';
import express, { Router } from 'express';
import { requireJsonBody } from '../content-type.js';
import { HttpError } from '../http-errors.js';
import type { InsertNotifier } from '../insert-notifier.js';

export interface TaskRoutesDeps {
  store: TaskStore;
  notifier: InsertNotifier;
  config: Pick<Config, 'MAX_MESSAGE_LENGTH' | 'MAX_TASK_TIME_S' | 'BODY_LIMIT_BYTES'>;
  metrics?: Metrics;
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
function refused(err: TaskRejectedError): HttpError {
  // `data` holds `{"message","time"}`, and `time` is an integer by then: the message is at fault.
  const field = (err.column && FIELD_OF_COLUMN[err.column]) ?? 'body';
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

export function parseId(raw: string | undefined): number {
  const id = parseTaskId(raw);
  if (id === null) {
    throw new HttpError(400, 'invalid_id', `task id must be a positive integer (got ${JSON.stringify(raw)})`, [
      { field: 'id', message: 'must be a positive integer' },
    ]);
  }
  return id;
}

export function taskRoutes({ store, notifier, config, metrics }: TaskRoutesDeps): Router {
  const router = Router();
  const schema = taskInputSchema({ maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S });
  const json = express.json({ limit: config.BODY_LIMIT_BYTES, strict: false, type: () => true });
  // Group commit: the inserts of requests that arrive together share one statement. Each
  // request gets its own outcome: a task the database refuses fails alone.
  const inserts = new Batcher<NewTask, InsertOutcome>((tasks) => store.insert(tasks), MAX_INSERT_BATCH);

  router.post('/tasks', requireJsonBody, json, async (req, res) => {
    const key = idempotencyKey(req.get('Idempotency-Key'));
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      const details = parsed.error.issues.map((issue) => ({
        field: issue.path.join('.') || 'body',
        message: issue.message,
      }));
      throw new HttpError(400, 'invalid_task', details.map((d) => `${d.field} ${d.message}`).join('; '), details);
    }
    const data: TaskData = parsed.data;
    const ignored = ignoredFields(req.body);
    const outcome = await inserts.add({ data, idempotencyKey: key });
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
      throw refused(outcome.error);
    }
    if (!(outcome.error instanceof DuplicateIdempotencyKeyError) || key === null) throw outcome.error;
    const first = await store.getTaskByIdempotencyKey(key);
    if (!first) throw outcome.error;
    if (first.data.message !== data.message || first.data.time !== data.time) {
      throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different body');
    }
    res
      .status(201)
      .location(`/tasks/${first.id}`)
      .set('Idempotent-Replayed', 'true')
      .json(created(first.id, first.status, ignored));
  });

  router.get('/tasks/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const task = await store.getTask(id);
    if (!task) throw new HttpError(404, 'not_found', `task ${id} does not exist`);
    res.json(taskView(task));
  });

  return router;
}
