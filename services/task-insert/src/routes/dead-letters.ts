import { deadLetterView, type Metrics, type TaskStore } from '@tasks/common';
import { type RequestHandler, Router } from 'express';
import { z } from 'zod';
import { deadlineOf } from '../http-errors.js';
import { digits, parseQuery } from './query.js';

export interface DeadLetterRoutesDeps {
  store: TaskStore;
  metrics: Metrics;
}

/** Bounds of `GET /dead-letters`, shared by the route and /openapi.json. */
export const DEAD_LETTER_PAGE = { min: 1, max: 100, default: 20 } as const;
export const DEAD_LETTER_OFFSET = { min: 0, max: Number.MAX_SAFE_INTEGER } as const;

export const deadLetterQuerySchema = z.strictObject(
  {
    offset: digits(DEAD_LETTER_OFFSET.min, DEAD_LETTER_OFFSET.max).default(DEAD_LETTER_OFFSET.min),
    limit: digits(DEAD_LETTER_PAGE.min, DEAD_LETTER_PAGE.max).default(DEAD_LETTER_PAGE.default),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known parameter' : undefined) },
);

/**
 * The `dead-letter-queue` list for operators: a page of it, newest first (the order in which
 * tasks failed), with each task's status now; and the redrive of every failed task it names.
 */
export function deadLetterRoutes({ store, metrics }: DeadLetterRoutesDeps): Router {
  const router = Router();

  // Paged by position: `next_offset` is the offset of the next page (null on the last one).
  router.get('/dead-letters', async (req, res) => {
    const { offset, limit } = parseQuery(deadLetterQuerySchema, req);
    const { total, entries } = await store.deadLetterPage(offset, limit);
    const end = offset + entries.length;
    res.json({
      entries: entries.map(({ entry, status }) => deadLetterView(entry, status)),
      total,
      offset,
      limit,
      next_offset: entries.length > 0 && end < total ? end : null,
    });
  });

  // The list is read before MySQL is written: with Redis down, this fails having changed nothing.
  const redriveAll: RequestHandler = async (req, res) => {
    const result = await store.redriveAllDeadLetters(deadlineOf(res));
    metrics.tasksRedriven.inc(result.redriven.length);
    req.log.info(
      {
        redriven: result.redriven.length,
        removedDeadLetters: result.removedEntries,
        keptEntries: result.keptEntries,
        ...(result.removalError ? { removalError: result.removalError } : {}),
      },
      'dead letters redriven',
    );
    res.json({
      redriven: result.redriven.length,
      removed_dead_letters: result.removedEntries,
      kept_entries: result.keptEntries,
      ...(result.removalError ? { removal_error: result.removalError } : {}),
    });
  };
  router.post('/dead-letters/redrive', redriveAll);
  // The route's first name, kept for the clients that use it.
  router.post('/dead-letters/retry', redriveAll);

  return router;
}
