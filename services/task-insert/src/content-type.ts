import type { Request, RequestHandler } from 'express';
import { hasValidBearerToken } from './auth.js';
import { HttpError } from './http-errors.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `application/json`, or `application/*+json` as the original also read. */
export function declaredJson(req: Request): boolean {
  return Boolean(req.is(['application/json', 'application/*+json']));
}

function unsupportedMediaType(req: Request): HttpError {
  const type = req.headers['content-type'] ?? 'none';
  return new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json (got ${type})`);
}

/** 415 unless the body is declared JSON: the check comes before any parsing. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  next(declaredJson(req) ? undefined : unsupportedMediaType(req));
};

/**
 * Every write (any method but GET, HEAD and OPTIONS) must be declared
 * `Content-Type: application/json`, body or not, unless it carries the valid bearer token
 * (`token`, when API_TOKEN is set). A page on another site can make a browser send a form
 * (`application/x-www-form-urlencoded`, `multipart/form-data`, `text/plain`) or a body
 * declared as nothing, but not a JSON one without asking the API first (a CORS preflight,
 * which it never grants), and it cannot add an Authorization header: so no site a user visits
 * can insert or retry tasks through the user's browser, even while API_TOKEN is unset.
 */
export function requireJsonForWrites(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (READ_METHODS.has(req.method) || declaredJson(req) || hasValidBearerToken(req, token)) return next();
    next(unsupportedMediaType(req));
  };
}
