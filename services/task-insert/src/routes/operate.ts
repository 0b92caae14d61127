import {
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TTL_MS,
  type Metrics,
  notRedrivenReason,
  type RedriveOutcome,
  TASK_STATUSES,
  type TaskStore,
  taskView,
} from '@tasks/common';
import { type RequestHandler, Router } from 'express';
import { z } from 'zod';
import { deadlineOf, HttpError } from '../http-errors.js';
import { LIST_LIMIT, THROUGHPUT_MINUTES } from './limits.js';
import { digits, parseQuery } from './query.js';
import { parseId } from './tasks.js';

export interface OperateRoutesDeps {
  store: TaskStore;
  metrics: Metrics;
}

export const listQuerySchema = z.strictObject(
  {
    status: z.enum(TASK_STATUSES, { error: `must be one of ${TASK_STATUSES.join(', ')}` }).optional(),
    limit: digits(LIST_LIMIT.min, LIST_LIMIT.max).default(LIST_LIMIT.default),
    after: digits(1, Number.MAX_SAFE_INTEGER).optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known parameter' : undefined) },
);

export const throughputQuerySchema = z.strictObject(
  { minutes: digits(THROUGHPUT_MINUTES.min, THROUGHPUT_MINUTES.max).default(THROUGHPUT_MINUTES.default) },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known parameter' : undefined) },
);

/**
 * What operators use: the task listing, redrive of failed tasks, counts and queue depths,
 * throughput, the services alive, health and metrics.
 */
export function operateRoutes({ store, metrics }: OperateRoutesDeps): Router {
  const router = Router();

  // Newest first; `next_after` is the cursor of the next page (null on the last one).
  router.get('/tasks', async (req, res) => {
    const { status, limit, after } = parseQuery(listQuerySchema, req);
    const tasks = await store.listTasks({ status, limit, after });
    const last = tasks.at(-1);
    res.json({ tasks: tasks.map(taskView), next_after: tasks.length === limit && last ? last.id : null });
  });

  const redrive: RequestHandler<{ id: string }> = async (req, res) => {
    const id = parseId(req.params.id);
    const [outcome] = (await store.redrive([id], deadlineOf(res))) as [RedriveOutcome];
    if (!outcome.redriven) {
      const status = outcome.reason === 'not_found' ? 404 : 409;
      throw new HttpError(status, outcome.reason, notRedrivenReason(outcome));
    }
    metrics.tasksRedriven.inc();
    req.log.info({ taskId: id, removedDeadLetters: outcome.removedEntries }, 'failed task redriven');
    const task = await store.getTask(id);
    res.json({
      task: task ? taskView(task) : null,
      removed_dead_letters: outcome.removedEntries,
      // Redis failed after MySQL was written: say exactly what was done.
      ...(outcome.removedEntries === null
        ? { warning: 'the task is pending again, but Redis did not answer: its dead-letter entries stay in the list' }
        : {}),
    });
  };
  router.post('/tasks/:id/redrive', redrive);
  // The route's first name, kept for the clients that use it.
  router.post('/tasks/:id/retry', redrive);

  router.get('/stats', async (_req, res) => {
    res.json(await store.stats());
  });

  router.get('/stats/throughput', async (req, res) => {
    const { minutes } = parseQuery(throughputQuerySchema, req);
    const series = await store.finishedPerMinute(minutes);
    res.json({
      minutes: series.map((m) => ({
        minute: m.minute.toISOString(),
        completed: m.completed,
        failed: m.failed,
        cancelled: m.cancelled,
      })),
    });
  });

  // Every service reports itself alive every few seconds; Redis's clock says when it last did.
  router.get('/services', async (_req, res) => {
    const { now, services } = await store.liveServices();
    res.json({
      now: now.toISOString(),
      report_interval_ms: HEARTBEAT_INTERVAL_MS,
      forgotten_after_ms: HEARTBEAT_TTL_MS,
      services: services.map((s) => ({
        id: s.id,
        service: s.service,
        host: s.host,
        pid: s.pid,
        started_at: s.startedAt,
        last_seen: s.lastSeen.toISOString(),
        last_seen_ago_ms: s.lastSeenAgoMs,
        alive_until: s.deadline.toISOString(),
        detail: s.detail,
      })),
    });
  });

  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readyz', async (_req, res) => {
    const report = await store.readiness();
    res.status(report.ready ? 200 : 503).json(report);
  });

  router.get('/metrics', async (_req, res) => {
    res.type(metrics.contentType).send(await metrics.render());
  });

  return router;
}
