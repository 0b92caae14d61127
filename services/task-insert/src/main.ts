import cluster from 'node:cluster';
import { once } from 'node:events';
import { configFromEnvironment, createLogger, EVENTS, listenSettingError, serve } from '@tasks/common';
import { createApp } from './app.js';
import { leaveCluster, stopOnPrimaryRequest, superviseWorkers } from './workers.js';

function serveApi(): void {
  serve(
    'task-insert',
    async ({ config, logger, ctx, metrics, databasePrepared, heartbeat }) => {
      // Listen at once: /healthz answers while the database is still being prepared, and the
      // routes that need it answer 503 until it is.
      let databaseReady = false;
      const app = createApp({ config, logger, store: ctx.store, metrics, databaseReady: () => databaseReady });
      const server = app.listen(config.PORT, config.HOST);
      await once(server, 'listening').catch((err: unknown) => {
        throw listenSettingError(err, config.HOST, config.PORT) ?? err;
      });
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : config.PORT;
      logger.info({ event: EVENTS.apiListening, port, host: config.HOST }, 'API listening');
      heartbeat.describe(() => ({ port, database_ready: databaseReady }));
      databasePrepared.then(
        () => {
          databaseReady = true;
          logger.info({ event: EVENTS.started, port, host: config.HOST }, 'database prepared: every route is served');
        },
        () => undefined,
      );
      return async () => {
        // Stop accepting, let requests in flight finish, then drop idle keep-alive connections.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
        await closed;
        clearTimeout(force);
        leaveCluster();
      };
    },
    { opsServer: false, startBeforeDatabase: true },
  );
}

if (cluster.isPrimary) {
  const config = configFromEnvironment();
  if (config.API_WORKERS > 1) superviseWorkers(config.API_WORKERS, createLogger(config, 'task-insert'));
  else serveApi();
} else {
  stopOnPrimaryRequest();
  serveApi();
}
