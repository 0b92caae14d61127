import type { FieldProblem, Logger } from '@tasks/common';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { unavailableStore } from './unavailable.js';

/** An error the client can act on: its status code, a stable code and a sentence. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: FieldProblem[],
    /** Headers of the answer, such as Retry-After. */
    readonly headers: Record<string, string> = {},
    /** Fields of the answer's body beside error, message and details, such as a task's `status`. */
    readonly fields: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function sendError(res: Response, err: HttpError): void {
  res.set(err.headers);
  res.status(err.status).json({
    error: err.code,
    message: err.message,
    ...(err.details ? { details: err.details } : {}),
    ...err.fields,
  });
}

/**
 * Answers 503 when a request is not answered within `ms` (MySQL or Redis hangs rather than
 * refuses), so a client never waits unboundedly. The request's deadline (deadlineOf) aborts
 * at that moment, so that a route still working does not go on to change anything. Not for
 * the requests `except` names: those bound their own wait, and answer only what they know
 * (POST /tasks: see insert-queue.ts).
 */
export function requestTimeout(ms: number, except: (req: Request) => boolean = () => false): RequestHandler {
  return (req, res, next) => {
    if (except(req)) return next();
    const deadline = new AbortController();
    res.locals.deadline = deadline.signal;
    const timer = setTimeout(() => {
      deadline.abort();
      if (!res.headersSent) {
        sendError(
          res,
          new HttpError(503, 'unavailable', `no answer from MySQL or Redis within ${ms} ms; try again shortly`),
        );
      }
    }, ms);
    res.on('close', () => clearTimeout(timer));
    next();
  };
}

/** The deadline requestTimeout gave the request: aborted once it was answered 503 for want of an answer. */
export function deadlineOf(res: Response): AbortSignal | undefined {
  return res.locals.deadline as AbortSignal | undefined;
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

/** What body-parser and the router attach to the errors they raise (http-errors). */
interface ClientRequestError {
  type?: string;
  status?: number;
  expose?: boolean;
  limit?: number;
  code?: string;
  message?: string;
}

/** A request error raised before any route ran, as the 4xx answer it is; null for any other error. */
function clientError(err: unknown): HttpError | null {
  if (err instanceof URIError) {
    // The router could not percent-decode a path segment (`/tasks/%ZZ`).
    const rule = 'holds a malformed percent-encoding';
    return new HttpError(400, 'invalid_path', `the path ${rule} (${err.message})`, [{ field: 'path', message: rule }]);
  }
  const parser = (err ?? {}) as ClientRequestError;
  switch (parser.type) {
    case 'entity.parse.failed':
      return new HttpError(400, 'invalid_json', `the body is not valid JSON: ${parser.message}`);
    case 'entity.too.large':
      return new HttpError(413, 'body_too_large', `the body is larger than the limit of ${parser.limit} bytes`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, 'unsupported_encoding', parser.message ?? 'unsupported encoding');
  }
  if (typeof parser.code === 'string' && parser.code.startsWith('Z_')) {
    // zlib could not inflate a body sent with Content-Encoding gzip, deflate or br.
    const rule = 'does not match its Content-Encoding';
    return new HttpError(400, 'invalid_body', `the body ${rule}: ${parser.message}`, [
      { field: 'body', message: rule },
    ]);
  }
  if (parser.expose && parser.status !== undefined && parser.status >= 400 && parser.status < 500) {
    // Any other error body-parser raised about the request itself (a size that does not match its Content-Length).
    return new HttpError(parser.status, 'invalid_body', `the body could not be read: ${parser.message}`, [
      { field: 'body', message: 'could not be read' },
    ]);
  }
  return null;
}

/** Maps every error to a JSON answer; nothing leaks a stack trace to the client. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      // Already answered (the request timed out): log what happened afterwards.
      (req.log ?? logger).warn({ err }, 'request failed after its answer was sent');
      return;
    }
    if (err instanceof HttpError) return sendError(res, err);
    if ((err as ClientRequestError | null)?.type === 'request.aborted') return;
    const client = clientError(err);
    if (client) return sendError(res, client);
    const store = unavailableStore(err);
    if (store) {
      req.log?.warn({ err }, `${store} unavailable`);
      return sendError(
        res,
        new HttpError(
          503,
          'unavailable',
          `${store === 'Redis' ? 'Redis' : 'the database'} is unavailable; try again shortly`,
        ),
      );
    }
    (req.log ?? logger).error({ err }, 'request failed');
    sendError(res, new HttpError(500, 'internal', 'internal error'));
  };
}
