import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpError } from './http-errors.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * When `token` is set, every request that is not a read (GET, HEAD, OPTIONS) must carry
 * `Authorization: Bearer <token>`; 401 otherwise. Both sides are hashed to equal-length
 * digests and compared in constant time, so neither the token's content nor its length
 * leaks through the answer's timing. Without a token, nothing is checked.
 */
export function requireTokenForWrites(token: string | undefined): RequestHandler {
  if (!token) return (_req, _res, next) => next();
  const expected = digest(token);
  return (req, res, next) => {
    if (READ_METHODS.has(req.method)) return next();
    const header = req.get('Authorization') ?? '';
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match?.[1] && timingSafeEqual(digest(match[1]), expected)) return next();
    res.setHeader('WWW-Authenticate', 'Bearer realm="tasks"');
    next(
      new HttpError(
        401,
        'unauthorized',
        header ? 'the bearer token is not valid' : 'this route needs the header Authorization: Bearer <API_TOKEN>',
      ),
    );
  };
}
