import type { Request, RequestHandler } from 'express';
import { hasValidBearerToken } from './auth.js';
import { HttpError } from './http-errors.js';

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** `application/json`, or `application/<anything>+json` as the original also read. */
const JSON_MEDIA_TYPE = /^application\/(?:json|[^\s/;]+\+json)$/;

/** The media type the Content-Type header declares, lower-cased and without its parameters; null when none. */
function declaredType(req: Request): string | null {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  return type ? type : null;
}

/**
 * Whether the Content-Type header declares JSON. Read from the header itself, body or not:
 * express's `req.is()` answers null for a request without a body, whatever its header says.
 */
export function declaredJson(req: Request): boolean {
  const type = declaredType(req);
  return type !== null && JSON_MEDIA_TYPE.test(type);
}

/** Whether the request has no body: no Transfer-Encoding, and no Content-Length or Content-Length 0. */
export function withoutBody(req: Request): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return false;
  const length = req.headers['content-length'];
  return length === undefined || Number(length) === 0;
}

/**
 * The Origin header when it names another origin than the API's own (the host the request was
 * sent to, its Host header); null when there is no Origin or it is this API's. An opaque
 * origin (`Origin: null`, sent from a sandboxed frame or after a cross-site redirect) is
 * another origin.
 */
export function otherOrigin(req: Request): string | null {
  const origin = req.headers.origin;
  if (origin === undefined) return null;
  try {
    const from = new URL(origin);
    // The Host header read with the Origin's scheme, so that a default port compares equal to none.
    const to = new URL(`${from.protocol}//${req.headers.host ?? ''}`);
    return from.host === to.host ? null : origin;
  } catch {
    return origin;
  }
}

function unsupportedMediaType(req: Request): HttpError {
  const type = req.headers['content-type'] ?? 'none';
  return new HttpError(415, 'unsupported_media_type', `Content-Type must be application/json (got ${type})`);
}

function crossOrigin(origin: string): HttpError {
  return new HttpError(
    403,
    'cross_origin',
    `a write from another origin (Origin: ${origin}) must be declared Content-Type: application/json, ` +
      'which a browser sends only with the consent the API never gives',
  );
}

/** 415 unless the body is declared JSON: the check comes before any parsing. */
export const requireJsonBody: RequestHandler = (req, _res, next) => {
  next(declaredJson(req) ? undefined : unsupportedMediaType(req));
};

/**
 * A write (any method but GET, HEAD and OPTIONS) that carries the valid bearer token (`token`,
 * when API_TOKEN is set) or is declared `Content-Type: application/json` goes ahead. One
 * with a body declared otherwise, or not at all, is 415. One without a body needs no
 * Content-Type (`curl -X POST …/tasks/12/retry`), unless it comes from another origin: 403.
 *
 * A page on another site can make a browser send a form (`application/x-www-form-urlencoded`,
 * `multipart/form-data`, `text/plain`) or a body declared as nothing, but not a JSON one
 * without asking the API first (a CORS preflight, which it never grants), and it cannot add
 * an Authorization header. A browser names the page's origin in `Origin` on every
 * cross-origin POST, so an empty form sent from another site is refused too: no site a user
 * visits can insert or retry tasks through the user's browser, even while API_TOKEN is unset.
 */
export function requireJsonForWrites(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    if (READ_METHODS.has(req.method) || declaredJson(req) || hasValidBearerToken(req, token)) return next();
    if (!withoutBody(req)) return next(unsupportedMediaType(req));
    const origin = otherOrigin(req);
    next(origin === null ? undefined : crossOrigin(origin));
  };
}
