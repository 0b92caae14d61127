// The API as the insert figure measures it: the service's own app (createApp, with the real
// pool and queue) at `/`, and beside it, at `/noop`, a second createApp whose storage does
// nothing. `POST /noop/tasks` therefore runs the very same stack — pino-http, the JSON
// parser, validation, the handler, the response — minus the INSERT and the announcement:
// the baseline the insert rate is a ratio of.
import { once } from 'node:events';
import {
  configFromEnvironment,
  createContext,
  createLogger,
  type Pool,
  prepareDatabase,
  runService,
  type TaskQueue,
} from '@tasks/common';
import { createApp } from '@tasks/task-insert/dist/app.js';
import express from 'express';

/**
 * Answers every statement at once as "rows inserted", with increasing ids; the one SELECT of
 * the insert path (the server's auto-increment settings) as MariaDB's defaults.
 */
function storageThatDoesNothing(): Pool {
  let nextId = 1;
  const answer = async (sql: unknown, values?: unknown) => {
    if (typeof sql === 'string' && /^\s*SELECT\s+@@/i.test(sql)) return [[{ mode: 1, step: 1 }], []];
    const rows = Array.isArray(values) && Array.isArray(values[0]) ? values[0].length : 1;
    const insertId = nextId;
    nextId += rows;
    return [{ insertId, affectedRows: rows, warningStatus: 0 }, []];
  };
  const connection = {
    query: answer,
    execute: answer,
    beginTransaction: async () => undefined,
    commit: async () => undefined,
    rollback: async () => undefined,
    release: () => undefined,
  };
  return { query: answer, execute: answer, getConnection: async () => connection } as unknown as Pool;
}

/** Announces nothing. */
const queueThatDoesNothing = { notifyInserted: async () => undefined } as unknown as TaskQueue;

const config = configFromEnvironment();
const logger = createLogger(config, 'bench-api');

runService(logger, async () => {
  await prepareDatabase(config, logger);
  const ctx = createContext(config, 'bench-api', { logger });
  const app = express();
  app.disable('x-powered-by');
  app.use(
    '/noop',
    createApp({ config, logger, pool: storageThatDoesNothing(), queue: queueThatDoesNothing, redis: ctx.redis }),
  );
  app.use(createApp(ctx));
  const server = app.listen(config.PORT, config.HOST);
  await once(server, 'listening');
  return async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    await ctx.close();
  };
});
