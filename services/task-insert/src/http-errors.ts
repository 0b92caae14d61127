import { isConnectionError, type Logger } from '@tasks/common';
import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

export interface FieldProblem {
  field: string;
  message: string;
}

/** An error the client can act on: its status code, a stable code and a sentence. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: FieldProblem[],
  ) {
    super(message);
  }
}

export function sendError(res: Response, err: HttpError): void {
  res.status(err.status).json({
    error: err.code,
    message: err.message,
    ...(err.details ? { details: err.details } : {}),
  });
}

/**
 * Answers 503 when a request is not answered within `ms` (the database hangs rather than
 * refuses), so a client never waits unboundedly.
 */
export function requestTimeout(ms: number): RequestHandler {
  return (_req, res, next) => {
    const timer = setTimeout(() => {
      if (!res.headersSent) {
        sendError(
          res,
          new HttpError(503, 'unavailable', `no answer from the database within ${ms} ms; try again shortly`),
        );
      }
    }, ms);
    res.on('close', () => clearTimeout(timer));
    next();
  };
}

export const notFound: RequestHandler = (req, _res, next) => {
  next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`));
};

interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
  message?: string;
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
    const parser = err as BodyParserError;
    switch (parser.type) {
      case 'entity.parse.failed':
        return sendError(res, new HttpError(400, 'invalid_json', `the body is not valid JSON: ${parser.message}`));
      case 'entity.too.large':
        return sendError(
          res,
          new HttpError(413, 'body_too_large', `the body is larger than the limit of ${parser.limit} bytes`),
        );
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return sendError(res, new HttpError(415, 'unsupported_encoding', parser.message ?? 'unsupported encoding'));
      case 'request.aborted':
        return;
    }
    if (isConnectionError(err)) {
      req.log?.warn({ err }, 'database unavailable');
      return sendError(res, new HttpError(503, 'unavailable', 'the database is unavailable; try again shortly'));
    }
    (req.log ?? logger).error({ err }, 'request failed');
    sendError(res, new HttpError(500, 'internal', 'internal error'));
  };
}
