import type { TaskStore } from '@tasks/common';
import type { RequestHandler } from 'express';
import { HttpError } from './http-errors.js';

/** Routes that answer without the database (/services reads Redis only). */
const WITHOUT_DATABASE = new Set(['/healthz', '/metrics', '/services']);

export const DATABASE_NOT_PREPARED = 'the database is not prepared yet (connecting and applying migrations)';

/**
 * While `ready()` is false (the API listens at once and prepares the database meanwhile),
 * /healthz, /metrics and /services answer as usual, /readyz answers 503 with each check and the
 * migrations' state, and every other route 503 `unavailable`. Then it steps aside.
 */
export function untilDatabaseReady(ready: () => boolean, store: TaskStore): RequestHandler {
  return async (req, res, next) => {
    if (ready() || (req.method === 'GET' && WITHOUT_DATABASE.has(req.path))) return next();
    if (req.method === 'GET' && req.path === '/readyz') {
      const report = await store.readiness();
      res.status(503).json({
        ready: false,
        checks: { ...report.checks, migrations: { ok: false, error: DATABASE_NOT_PREPARED } },
      });
      return;
    }
    next(new HttpError(503, 'unavailable', `${DATABASE_NOT_PREPARED}; try again shortly`));
  };
}
