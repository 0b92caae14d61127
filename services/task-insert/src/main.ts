import { once } from 'node:events';
import { EVENTS, serve } from '@tasks/common';
import { createApp } from './app.js';

serve(
  'task-insert',
  async ({ config, logger, ctx, metrics }) => {
    const server = createApp({ ...ctx, metrics }).listen(config.PORT, config.HOST);
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.PORT;
    logger.info({ event: EVENTS.started, port, host: config.HOST }, 'API listening');
    return async () => {
      // Stop accepting, let requests in flight finish, then drop idle keep-alive connections.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_TIMEOUT_MS);
      await closed;
      clearTimeout(force);
    };
  },
  { opsServer: false },
);
