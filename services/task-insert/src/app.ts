import { type Config, createMetrics, HandlerRegistry, type Logger, type Metrics, type TaskStore } from '@tasks/common';
import express, { type Express } from 'express';
import { pinoHttp } from 'pino-http';
import { requireTokenForWrites } from './auth.js';
import { requireJsonForWrites } from './content-type.js';
import { untilDatabaseReady } from './database-gate.js';
import { errorHandler, notFound, requestTimeout } from './http-errors.js';
import { InsertNotifier } from './insert-notifier.js';
import { openApiDocument } from './openapi.js';
import { rateLimitPerMinute } from './rate-limit.js';
import { cancelRoutes } from './routes/cancel.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { operateRoutes } from './routes/operate.js';
import { boundsItsOwnWait, taskRoutes } from './routes/tasks.js';
import { WaitRoom } from './wait-room.js';

export interface AppDeps {
  config: Config;
  logger: Logger;
  store: TaskStore;
  /** Counters of this process; a fresh registry when not given. */
  metrics?: Metrics;
  /** The task types of the handlers module (HANDLERS), which POST /tasks accepts; `simulated` only when not given. */
  handlers?: HandlerRegistry;
  /**
   * Where requests with `?wait=` wait for their tasks; its creator closes it. When not given,
   * one of the app's own, which subscribes to Redis on the first wait and is never closed.
   */
  waits?: WaitRoom;
  /**
   * Whether the database is prepared (created and migrated). Until it is, every route that
   * needs it answers 503 and /readyz says why; /healthz, /metrics, /services, /openapi.json
   * and the dashboard answer all the same. Always prepared when not given.
   */
  databaseReady?: () => boolean;
}

export function createApp(deps: AppDeps): Express {
  const { config, logger, store } = deps;
  const handlers = deps.handlers ?? HandlerRegistry.empty();
  const waits =
    deps.waits ?? new WaitRoom(store, logger, { pollMs: config.WAIT_POLL_MS, maxWaiters: config.MAX_WAITERS });
  const metrics = deps.metrics ?? createMetrics({ service: 'task-insert' });
  metrics.observeQueueDepths(
    () => store.depths(),
    (err) => logger.warn({ err }, 'reading queue depths for /metrics failed'),
  );
  const openApi = openApiDocument(config, handlers);
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(
    pinoHttp({
      logger,
      // Lines logged through req.log carry the request id as `reqId`.
      quietReqLogger: true,
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
  app.use(requestTimeout(config.REQUEST_TIMEOUT_MS, boundsItsOwnWait));
  app.use(dashboardRoutes());
  app.get('/openapi.json', (_req, res) => {
    res.json(openApi);
  });
  app.post('/tasks', rateLimitPerMinute(config.RATE_LIMIT_PER_MINUTE));
  app.use(requireTokenForWrites(config.API_TOKEN));
  app.use(requireJsonForWrites(config.API_TOKEN));
  if (deps.databaseReady) app.use(untilDatabaseReady(deps.databaseReady, store));
  app.use(taskRoutes({ store, handlers, waits, notifier: new InsertNotifier(store, logger), config, metrics }));
  app.use(cancelRoutes({ store, metrics }));
  app.use(operateRoutes({ store, metrics }));
  app.use(deadLetterRoutes({ store, metrics }));
  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
