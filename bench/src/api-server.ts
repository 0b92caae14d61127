// The API as the insert figure measures it: the service's own app (createApp, with the real
// pool and queue) at `/`, and beside it, at `/noop`, a second createApp whose storage does
// nothing. `POST /noop/tasks` therefore runs the very same stack — pino-http, the JSON
// parser, validation, the handler, the response — minus the INSERT and the announcement:
// the baseline the insert rate is a ratio of.
import { once } from 'node:events';
import { configFromEnvironment, createLogger, prepareDatabase, runService } from '@tasks/common';
import { createContextParts, type Database, retryPolicy, type TaskQueue, TaskStore } from '@tasks/common/internal';
import { createApp } from '@tasks/task-insert/dist/app.js';
import express from 'express';
import mysql from 'mysql2';

/** More rows than a batch of the API ever has. */
const MAX_BATCH = 1_000;

/**
 * Answers every statement at once as "rows inserted", with increasing ids; the one SELECT of
 * the insert path (the server's auto-increment settings) as MariaDB's defaults. A query of
 * several statements (a transaction in one round trip) gets one such answer per statement.
 */
function storageThatDoesNothing(): Database {
  let nextId = 1;
  const inserted = () => {
    const insertId = nextId;
    nextId += MAX_BATCH;
    return { insertId, affectedRows: 0, warningStatus: 0 };
  };
  const answer = async (sql: unknown) => {
    if (typeof sql === 'string' && /^\s*SELECT\s+@@/i.test(sql)) return [[{ mode: 1, step: 1 }], []];
    if (typeof sql === 'string' && sql.includes(';')) {
      // START TRANSACTION, the statements, COMMIT.
      return [sql.split(';\n').map(inserted), []];
    }
    return [inserted(), []];
  };
  const connection = {
    query: answer,
    execute: answer,
    format: (sql: string, values: Parameters<typeof mysql.format>[1]) => mysql.format(sql, values),
    beginTransaction: async () => undefined,
    commit: async () => undefined,
    rollback: async () => undefined,
    release: () => undefined,
  };
  return { query: answer, execute: answer, getConnection: async () => connection } as unknown as Database;
}

/** Announces nothing. */
const queueThatDoesNothing = { notifyInserted: async () => undefined } as unknown as TaskQueue;

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
      store: new TaskStore({
        db: storageThatDoesNothing(),
        queue: queueThatDoesNothing,
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
