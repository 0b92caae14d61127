import {
  type Database,
  type DeadLetterEntry,
  type Metrics,
  readDeadLetterPage,
  redriveAllDeadLetters,
  type TaskQueue,
  type TaskStatus,
} from '@tasks/common';
import { Router } from 'express';
import { z } from 'zod';
import { deadlineOf } from '../http-errors.js';
import { digits, parseQuery } from './operate.js';

export interface DeadLetterRoutesDeps {
  pool: Database;
  queue: TaskQueue;
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

/** One entry of the dead-letter list as the API shows it, with its task's status now. */
export interface DeadLetterView {
  /** The task the entry names; null for an entry that names none (an invalid message). */
  id: number | null;
  message: string | null;
  /** Tries of the run that was given up. */
  tries: number | null;
  error: string | null;
  failed_at: string | null;
  /** The task's status in MySQL now; null when the entry names no task or its task is gone. */
  status: TaskStatus | null;
  /** For an entry that names no task: the text that was not a valid message (or the entry itself). */
  raw: string | null;
}

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const whole = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) ? value : null;

/**
 * An entry as shown: its fields read from what is stored, each only when of the right type
 * (an entry pushed by hand may hold anything).
 */
export function deadLetterView(entry: DeadLetterEntry, status: TaskStatus | null): DeadLetterView {
  const letter: Record<string, unknown> = entry.letter ?? {};
  return {
    id: entry.id,
    message: text(letter.message),
    tries: whole(letter.tries),
    error: text(letter.error),
    failed_at: text(letter.failed_at),
    status: entry.id === null ? null : status,
    raw: entry.id === null ? (text(letter.raw) ?? entry.raw) : null,
  };
}

/**
 * The `dead-letter-queue` list for operators: a page of it, newest first (the order in which
 * tasks failed), with each task's status now; and the redrive of every failed task it names.
 */
export function deadLetterRoutes({ pool, queue, metrics }: DeadLetterRoutesDeps): Router {
  const router = Router();

  // Paged by position: `next_offset` is the offset of the next page (null on the last one).
  router.get('/dead-letters', async (req, res) => {
    const { offset, limit } = parseQuery(deadLetterQuerySchema, req);
    const { total, entries } = await readDeadLetterPage({ pool, queue }, offset, limit);
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
  router.post('/dead-letters/retry', async (req, res) => {
    const result = await redriveAllDeadLetters({ pool, queue, metrics, signal: deadlineOf(res) });
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
  });

  return router;
}
