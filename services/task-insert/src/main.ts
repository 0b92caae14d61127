import { once } from 'node:events';
import {
  configFromEnvironment,
  createContext,
  createLogger,
  createMetrics,
  prepareDatabase,
  retryUntil,
  runService,
} from '@tasks/common';
import { createApp } from './app.js';

const config = configFromEnvironment();
const logger = createLogger(config, 'task-insert');

runService(logger, async (signal) => {
  await retryUntil('preparing the database', () => prepareDatabase(config, logger), logger, signal);
  const ctx = createContext(config, 'task-insert', { logger });
  const metrics = createMetrics({ service: 'task-insert', defaultMetrics: true });
  const server = createApp({ ...ctx, metrics }).listen(config.PORT, config.HOST);
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  logger.info({ port, host: config.HOST }, 'API listening');
  return async () => {
    // Stop accepting, let requests in flight finish, then drop idle keep-alive connections.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
    await closed;
    clearTimeout(force);
    await ctx.close();
  };
});
