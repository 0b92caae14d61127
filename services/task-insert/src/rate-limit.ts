import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpError, sendError } from './http-errors.js';

/**
 * At most `perMinute` requests a minute from one client address (IPv6 addresses by /56
 * subnet), counted in this process's memory; beyond it, 429 with `Retry-After` (seconds) and
 * the `RateLimit` headers. 0 sets no limit. Behind a reverse proxy every client shares the
 * proxy's address, so limit there instead.
 */
export function rateLimitPerMinute(perMinute: number): RequestHandler {
  if (perMinute <= 0) return (_req, _res, next) => next();
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    validate: { xForwardedForHeader: false },
    handler: (_req, res, _next, options) => {
      sendError(
        res,
        new HttpError(
          options.statusCode,
          'rate_limited',
          `more than ${perMinute} requests a minute from this address; retry after the Retry-After seconds`,
        ),
      );
    },
  });
}
