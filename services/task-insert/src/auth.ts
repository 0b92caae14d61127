import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { HttpError } from './http-errors.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Whether the request carries `Authorization: Bearer <token>`; never when no token is set.
 * Both sides are hashed to equal-length digests and compared in constant time, so neither the
 * token's content nor its length leaks through the answer's timing.
 */
export function hasValidBearerToken(req: Request, token: string | undefined): boolean {
  if (!token) return false;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(req.get('Authorization') ?? '');
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), digest(token));
}

/**
 * When `token` is set, every request that is not a read (GET, HEAD, OPTIONS) must carry
 * `Authorization: Bearer <token>`; 401 otherwise. Without a token, nothing is checked.
 */
export function requireTokenForWrites(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  return (req, res, next) => {
    if (READ_METHODS.has(req.method) || hasValidBearerToken(req, token)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer realm="tasks"');
    next(
      new HttpError(
        401,
        'unauthorized',
        req.get('Authorization')
          ? 'the bearer token is not valid'
          : 'this route needs the header Authorization: Bearer <API_TOKEN>',
      ),
    );
  };
}
