import cluster from 'node:cluster';
import { once } from 'node:events';
import {
  type Config,
  configFromEnvironment,
  createLogger,
  EVENTS,
  HandlerRegistry,
  HandlersError,
  listenSettingError,
  loadHandlers,
  SettingError,
  serve,
  tellParent,
} from '@tasks/common';
import { createApp } from './app.js';
import { WaitRoom } from './wait-room.js';
import { leaveCluster, stopOnPrimaryRequest, superviseWorkers } from './workers.js';

/**
 * The task types of the module HANDLERS names, which POST /tasks validates bodies with. A
 * module that cannot be loaded, or is not a handlers module, is a setting to change: a
 * SettingError, told in one line.
 */
async function handlersOf(config: Config): Promise<HandlerRegistry> {
  if (!config.HANDLERS) return HandlerRegistry.empty();
  try {
    return await loadHandlers(config.HANDLERS);
  } catch (err) {
    throw err instanceof HandlersError ? new SettingError('HANDLERS', err.message) : err;
  }
}

function serveApi(): void {
  serve(
    'task-insert',
    async ({ config, logger, ctx, metrics, databasePrepared, heartbeat }) => {
      const handlers = await handlersOf(config);
      // Listen at once: /healthz answers while the database is still being prepared, and the
      // routes that need it answer 503 until it is.
      let databaseReady = false;
      const waits = new WaitRoom(ctx.store, logger, { pollMs: config.WAIT_POLL_MS, maxWaiters: config.MAX_WAITERS });
      const app = createApp({
        config,
        logger,
        store: ctx.store,
        metrics,
        handlers,
        waits,
        databaseReady: () => databaseReady,
      });
      const server = app.listen(config.PORT, config.HOST);
      await once(server, 'listening').catch((err: unknown) => {
        throw listenSettingError(err, config.HOST, config.PORT) ?? err;
      });
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : config.PORT;
      logger.info({ event: EVENTS.apiListening, port, host: config.HOST, types: handlers.types }, 'API listening');
      heartbeat.describe(() => ({ port, database_ready: databaseReady }));
      databasePrepared.then(
        () => {
          databaseReady = true;
          logger.info({ event: EVENTS.started, port, host: config.HOST }, 'database prepared: every route is served');
        },
        () => undefined,
      );
      return async () => {
        // Stop accepting, let requests in flight finish (those waiting for their tasks answer
        // now, with the tasks as they are), then drop idle keep-alive connections.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        waits.close();
        // A connection whose answer goes out from now on is idle afterwards: closed then.
        const idle = setInterval(() => server.closeIdleConnections(), 100);
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
        await closed;
        clearInterval(idle);
        clearTimeout(force);
        leaveCluster();
      };
    },
    { opsServer: false, startBeforeDatabase: true },
  );
}

/**
 * The primary of several API workers checks the handlers module once before starting them:
 * one that cannot be loaded stops the API with its one line, rather than every worker in turn.
 */
async function superviseApi(config: Config): Promise<void> {
  try {
    await handlersOf(config);
  } catch (err) {
    if (!(err instanceof SettingError)) throw err;
    process.stderr.write(`${err.message}\n`);
    tellParent({ event: EVENTS.startFailed, setting: err.variable });
    process.exitCode = 1;
    return;
  }
  superviseWorkers(config.API_WORKERS, createLogger(config, 'task-insert'));
}

if (cluster.isPrimary) {
  const config = configFromEnvironment();
  if (config.API_WORKERS > 1) {
    superviseApi(config).catch((err: unknown) => {
      createLogger(config, 'task-insert').fatal({ event: EVENTS.startFailed, err }, 'failed to start');
      process.exitCode = 1;
    });
  } else serveApi();
} else {
  stopOnPrimaryRequest();
  serveApi();
}
