import type { Request, Response } from 'express';
import { z } from 'zod';
import { HttpError } from '../http-errors.js';
import { type Seat, type WaitRoom, WaitRoomFullError } from '../wait-room.js';
import { digits, parseQuery } from './query.js';

/** What the routes that can wait for their task (`?wait=`) share. */

/**
 * The reader of `?wait=` (whole seconds, 0 to `maxS`): the ms to wait for the task to be final
 * (0: none), or null when not asked. The routes' other parameters are ignored, as they always were.
 */
export function waitParameter(maxS: number): (req: Request) => number | null {
  const query = z.object({ wait: digits(0, maxS).optional() });
  return (req) => {
    const { wait } = parseQuery(query, req);
    return wait === undefined ? null : wait * 1_000;
  };
}

/** Aborts when the client goes away before its answer is sent: it stops waiting. */
export function clientGone(res: Response): AbortSignal {
  const gone = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) gone.abort();
  });
  return gone.signal;
}

/** A seat in the wait room, or a 503 when it is full (nothing was done yet). */
export function seatIn(waits: WaitRoom): Seat {
  try {
    return waits.reserve();
  } catch (err) {
    if (!(err instanceof WaitRoomFullError)) throw err;
    throw new HttpError(503, 'unavailable', `${err.message}; try again shortly`, undefined, {
      'Retry-After': String(err.retryAfterS),
    });
  }
}
