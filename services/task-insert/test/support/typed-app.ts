import { fileURLToPath } from 'node:url';
import { loadHandlers } from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { createTestEnv, type TestEnv } from '../../../../test/support/test-env.js';
import { createApp } from '../../src/app.js';

/** The handlers module of the API's typed-task tests: the examples' types, and `echo` without a schema. */
export const TYPED_HANDLERS = fileURLToPath(
  new URL('../../../../test/support/fixtures/typed-handlers.js', import.meta.url),
);

/** A test env and the API app on it, with the typed handlers loaded as HANDLERS would load them. */
export async function typedApp(): Promise<{ t: TestEnv; app: Express }> {
  const t = await createTestEnv();
  return { t, app: createApp({ ...t.ctx, handlers: await loadHandlers(TYPED_HANDLERS) }) };
}

/** POST /tasks with `body` as JSON, and the Idempotency-Key when given. */
export function postTask(app: Express, body: unknown, key?: string): request.Test {
  const req = request(app).post('/tasks').set('Content-Type', 'application/json');
  return (key ? req.set('Idempotency-Key', key) : req).send(JSON.stringify(body));
}

/** The fields a 400's details name. */
export const problemFields = (res: request.Response): string[] =>
  (res.body.details as { field: string }[]).map((d) => d.field);
