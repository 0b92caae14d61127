import {
  Batcher,
  type Config,
  DuplicateIdempotencyKeyError,
  getTask,
  getTaskByIdempotencyKey,
  type InsertOutcome,
  insertTasks,
  type Metrics,
  type NewTask,
  type Pool,
  type TaskData,
  taskInputSchema,
  taskView,
} from '@tasks/common';
import express, { type RequestHandler, Router } from 'express';
import { HttpError } from '../http-errors.js';
import type { InsertNotifier } from '../insert-notifier.js';

export interface TaskRoutesDeps {
  pool: Pool;
  notifier: InsertNotifier;
  config: Pick<Config, 'MAX_MESSAGE_LENGTH' | 'MAX_TASK_TIME_S' | 'BODY_LIMIT_BYTES'>;
  metrics?: Metrics;
}

const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
/** Printable ASCII, as the header's specification (a structured-field string) allows. */
const IDEMPOTENCY_KEY = /^[\x20-\x7e]+$/;
/** Most tasks inserted in one transaction. */
const MAX_INSERT_BATCH = 500;

function created(id: number) {
  return { id, message: 'Task created successfully', status: 'pending' };
}

/** 415 unless the body is declared JSON: the check comes before any parsing. */
const requireJson: RequestHandler = (req, _res, next) => {
  if (!req.is('application/json')) {
    const type = req.headers['content-type'] ?? 'none';
    return next(new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json (got ${type})`));
  }
  next();
};

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
  const id = Number(raw);
  if (!/^\d+$/.test(raw ?? '') || !Number.isSafeInteger(id) || id < 1) {
    throw new HttpError(400, 'invalid_id', `task id must be a positive integer (got ${JSON.stringify(raw)})`, [
      { field: 'id', message: 'must be a positive integer' },
    ]);
  }
  return id;
}

export function taskRoutes({ pool, notifier, config, metrics }: TaskRoutesDeps): Router {
  const router = Router();
  const schema = taskInputSchema({ maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S });
  const json = express.json({ limit: config.BODY_LIMIT_BYTES, strict: false, type: () => true });
  // Group commit: the inserts of requests that arrive together share one transaction.
  const inserts = new Batcher<NewTask, InsertOutcome>((tasks) => insertTasks(pool, tasks), MAX_INSERT_BATCH);
  const insert = async (task: NewTask): Promise<number> => {
    const outcome = await inserts.add(task);
    if ('error' in outcome) throw outcome.error;
    return outcome.id;
  };

  router.post('/tasks', requireJson, json, async (req, res) => {
    const key = idempotencyKey(req.get('Idempotency-Key'));
    const parsed = schema.safeParse(req.body);
    if (!parsed.success) {
      const details = parsed.error.issues.flatMap((issue) =>
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => ({ field: k, message: 'is not a known field' }))
          : [{ field: issue.path.join('.') || 'body', message: issue.message }],
      );
      throw new HttpError(400, 'invalid_task', details.map((d) => `${d.field} ${d.message}`).join('; '), details);
    }
    const data: TaskData = parsed.data;
    try {
      const id = await insert({ data, idempotencyKey: key });
      notifier.notify();
      metrics?.tasksInserted.inc();
      res.status(201).location(`/tasks/${id}`).json(created(id));
    } catch (err) {
      if (!(err instanceof DuplicateIdempotencyKeyError) || key === null) throw err;
      const first = await getTaskByIdempotencyKey(pool, key);
      if (!first) throw err;
      if (first.data.message !== data.message || first.data.time !== data.time) {
        throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different body');
      }
      res.status(201).location(`/tasks/${first.id}`).set('Idempotent-Replayed', 'true').json(created(first.id));
    }
  });

  router.get('/tasks/:id', async (req, res) => {
    const id = parseId(req.params.id);
    const task = await getTask(pool, id);
    if (!task) throw new HttpError(404, 'not_found', `task ${id} does not exist`);
    res.json(taskView(task));
  });

  return router;
}
