import { type Metrics, notCancelledReason, type TaskStore, taskView } from '@tasks/common';
import { Router } from 'express';
import { HttpError } from '../http-errors.js';
import { parseId } from './tasks.js';

export interface CancelRoutesDeps {
  store: TaskStore;
  metrics?: Metrics;
}

export function cancelRoutes({ store, metrics }: CancelRoutesDeps): Router {
  const router = Router();

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

  return router;
}
