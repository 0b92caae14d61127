// The API as the insert figure measures it: the service's own app (createApp from the
// package @tasks/task-insert, with the real store) at `/`, and beside it, at `/noop`, a second
// createApp whose store inserts nothing. `POST /noop/tasks` therefore runs the very same stack — pino-http, the JSON
// parser, validation, the handler, the response — minus the INSERT and the announcement:
// the baseline the insert rate is a ratio of.
import { once } from 'node:events';
import {
  configFromEnvironment,
  createLogger,
  type InsertOutcome,
  type NewTask,
  prepareDatabase,
  runService,
} from '@tasks/common';
import { createContextParts, retryPolicy, TaskStore } from '@tasks/common/internal';
import { createApp } from '@tasks/task-insert';
import express from 'express';

/**
 * The store of the real app, except that an insert stores nothing and tells no scheduler: each
 * task gets the next id at once. Every other verb is the real one (no route the baseline loads
 * calls them).
 */
class StoreThatStoresNothing extends TaskStore {
  private nextId = 1;

  override async insert(tasks: NewTask[]): Promise<InsertOutcome[]> {
    return tasks.map(() => ({ id: this.nextId++ }));
  }

  override async announceInserted(): Promise<void> {}
}

const config = configFromEnvironment();
const logger = createLogger(config, 'bench-api');

runService(logger, async () => {
  await prepareDatabase(config, logger);
  const ctx = createContextParts(config, 'bench-api', { logger });
  const app = express();
  app.disable('x-powered-by');
  app.use(
    '/noop',
    createApp({
      config,
      logger,
      store: new StoreThatStoresNothing({
        db: ctx.pool,
        queue: ctx.queue,
        redis: ctx.redis,
        openRedis: ctx.openRedis,
        retry: retryPolicy(config),
      }),
    }),
  );
  app.use(createApp({ config, logger, store: ctx.store }));
  const server = app.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  return async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    await ctx.close();
  };
});
