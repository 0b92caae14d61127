import type { Config, Logger, Pool, TaskQueue } from '@tasks/common';
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import { errorHandler, notFound, requestTimeout } from './http-errors.js';
import { InsertNotifier } from './insert-notifier.js';
import { taskRoutes } from './routes/tasks.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  pool: Pool;
  queue: TaskQueue;
}

export function createApp({ config, logger, pool, queue }: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(
    pinoHttp({
      logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && given.length <= 128 ? given : crypto.randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      customLogLevel: (_req, res, err) =>
        err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'info' : 'debug',
    }),
  );
  app.use(requestTimeout(config.REQUEST_TIMEOUT_MS));
  app.use(taskRoutes({ pool, notifier: new InsertNotifier(queue, logger), config }));
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
