import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadHandlers } from '@tasks/common';
import type { Express } from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';
import { WaitRoom } from '../src/wait-room.js';

/**
 * /openapi.json against the real app: every documented route answers, and every constraint
 * the document states for a request (body fields, path and query parameters) is the one the
 * API enforces: a value just past it is rejected with 400, a value at it is accepted.
 */

interface Schema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  oneOf?: Schema[];
  title?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  required?: string[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean;
  $ref?: string;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<string, unknown>;
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const execFileAsync = promisify(execFile);
const HANDLERS = fileURLToPath(new URL('../../../test/support/fixtures/typed-handlers.js', import.meta.url));
const TOKEN = 'openapi-test-token-0123';
let t: TestEnv;
let app: Express;
let waits: WaitRoom;
let doc: Document;
let failedId: number;

beforeAll(async () => {
  // The failed task is redriven by a test: the wait at its bound waits that long.
  t = await createTestEnv({ MAX_MESSAGE_LENGTH: '40', MAX_TASK_TIME_S: '90', MAX_WAIT_S: '1', API_TOKEN: TOKEN });
  waits = new WaitRoom(t.ctx.store, t.ctx.logger, { pollMs: 1_000, maxWaiters: 100 });
  app = createApp({ ...t.ctx, handlers: await loadHandlers(HANDLERS), waits });
  doc = (await request(app).get('/openapi.json').expect(200)).body;
  failedId = (await deadLetteredTask(t)).id;
});
afterAll(async () => {
  waits.close();
  await t.cleanup();
});

/** A schema by its reference; the first of its alternatives (oneOf) when it has some. */
function resolve(schema: Schema): Schema {
  if (schema.oneOf) return resolve(schema.oneOf[0]!);
  if (!schema.$ref) return schema;
  const name = schema.$ref.replace('#/components/schemas/', '');
  const target = doc.components.schemas[name];
  if (!target) throw new Error(`unresolved ${schema.$ref}`);
  return target;
}

function operations(): [string, string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => [path, method, op] as [string, string, Operation]),
  );
}

/** A request with the documented path filled in, authorized (the token is set in this app). */
function call(method: string, path: string, values: Record<string, string | number> = {}) {
  const url = path.replace(/\{(\w+)\}/g, (_m, name: string) => String(values[name] ?? failedId));
  const agent = request(app);
  const req = method === 'post' ? agent.post(url) : agent.get(url);
  return req.set('Authorization', `Bearer ${TOKEN}`);
}

/** A body the API accepts, built from the documented schema. */
function validBody(schema: Schema): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const [name, prop] of Object.entries(schema.properties ?? {})) {
    if (prop.const !== undefined || prop.enum) body[name] = prop.const ?? prop.enum?.[0];
    else if (Array.isArray(prop.type) && prop.type.includes('null')) body[name] = null;
    else body[name] = prop.type === 'string' ? 'x'.repeat(prop.minLength ?? 1) : (prop.minimum ?? 0);
  }
  return body;
}

describe('/openapi.json', () => {
  it('is an OpenAPI 3 document', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).length).toBeGreaterThanOrEqual(10);
  });

  it('describes the routes the API has', () => {
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/',
        '/dead-letters',
        '/dead-letters/redrive',
        '/dead-letters/retry',
        '/healthz',
        '/metrics',
        '/openapi.json',
        '/readyz',
        '/services',
        '/stats',
        '/stats/throughput',
        '/tasks',
        '/tasks/{id}',
        '/tasks/{id}/cancel',
        '/tasks/{id}/redrive',
        '/tasks/{id}/retry',
      ].sort(),
    );
  });

  it('states the configured limits of the task body, and that other fields are allowed', () => {
    const body = resolve(doc.paths['/tasks']!.post!.requestBody!.content['application/json']!.schema);
    expect(body.properties?.message).toMatchObject({ type: 'string', maxLength: 40 });
    expect(body.properties?.message?.minLength).toBeUndefined();
    expect(body.properties?.time).toMatchObject({ type: 'integer', minimum: 0, maximum: 90 });
    expect(body.required?.sort()).toEqual(['message', 'time']);
    expect(body.additionalProperties).toBeUndefined();
  });

  it('names an operationId for every operation, each once', () => {
    const ids = operations().map(([, , op]) => (op as { operationId?: string }).operationId);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents X-Request-Id on every answer, and 503 on every route that needs MySQL or Redis', () => {
    for (const [path, method, op] of operations()) {
      for (const [status, answer] of Object.entries(op.responses)) {
        expect(Object.keys((answer as { headers?: object }).headers ?? {}), `${method} ${path} ${status}`).toContain(
          'X-Request-Id',
        );
      }
    }
    for (const path of [
      '/tasks',
      '/tasks/{id}',
      '/tasks/{id}/cancel',
      '/tasks/{id}/retry',
      '/dead-letters',
      '/dead-letters/retry',
      '/stats',
      '/stats/throughput',
      '/readyz',
      '/services',
    ]) {
      for (const [method, op] of Object.entries(doc.paths[path]!)) {
        expect(Object.keys(op.responses), `${method} ${path}`).toContain('503');
      }
    }
  });
});

describe('every documented operation', () => {
  it('exists: answers with a documented status, never "no route"', async () => {
    for (const [path, method, op] of operations()) {
      const body = op.requestBody ? validBody(resolve(Object.values(op.requestBody.content)[0]!.schema)) : undefined;
      const res = await (body ? call(method, path).send(body) : call(method, path));
      expect(res.body?.error, `${method} ${path}`).not.toBe('not_found');
      expect(Object.keys(op.responses), `${method} ${path} answered ${res.status}`).toContain(String(res.status));
    }
  });

  it('requires the bearer token exactly where the document says', async () => {
    for (const [path, method, op] of operations()) {
      const url = path.replace('{id}', String(failedId));
      const res = await (method === 'post' ? request(app).post(url).send({}) : request(app).get(url));
      const security = (op as { security?: object[] }).security ?? [];
      const documented = security.some((requirement) => Object.keys(requirement).length > 0);
      expect(res.status === 401, `${method} ${path}`).toBe(documented);
    }
  });
});

describe('the documented request body constraints are the enforced ones', () => {
  const post = (body: unknown) => call('post', '/tasks').send(body as object);
  const schema = () => resolve(doc.paths['/tasks']!.post!.requestBody!.content['application/json']!.schema);

  it('accepts the body at every documented bound', async () => {
    const s = schema();
    const at: Record<string, unknown> = {};
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      at[name] = prop.type === 'string' ? 'y'.repeat(prop.maxLength!) : prop.maximum;
    }
    await post(at).expect(201);
  });

  it('rejects each value past a documented bound, naming the field', async () => {
    const s = schema();
    let checked = 0;
    for (const [name, prop] of Object.entries(s.properties ?? {})) {
      const past: unknown[] = [];
      if (prop.maxLength !== undefined) past.push('z'.repeat(prop.maxLength + 1));
      if (prop.minLength !== undefined && prop.minLength > 0) past.push('z'.repeat(prop.minLength - 1));
      if (prop.maximum !== undefined) past.push(prop.maximum + 1);
      if (prop.minimum !== undefined) past.push(prop.minimum - 1);
      if (prop.type === 'integer') past.push(1.5);
      if (prop.type === 'string') past.push(42);
      for (const value of past) {
        const res = await post({ ...validBody(s), [name]: value });
        expect(res.status, `${name}=${JSON.stringify(value).slice(0, 20)}`).toBe(400);
        expect(res.body.details.map((d: { field: string }) => d.field)).toContain(name);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  it('rejects a body missing each required field', async () => {
    const s = schema();
    for (const name of s.required ?? []) {
      const { [name]: _dropped, ...rest } = validBody(s);
      const res = await post(rest);
      expect(res.status, name).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(name);
    }
  });

  it('accepts an unknown field, as the schema allows, and names it as ignored', async () => {
    expect(schema().additionalProperties).toBeUndefined();
    const res = await post({ ...validBody(schema()), tme: 3 });
    expect(res.status).toBe(201);
    expect(res.body.ignored_fields).toEqual(['tme']);
  });
});

describe('the documented task types are the accepted ones', () => {
  const post = (body: unknown) => call('post', '/tasks').send(body as object);
  const fieldsOf = (res: { body: { details: { field: string }[] } }) => res.body.details.map((d) => d.field);

  /** The body of each type of the handlers module, as documented. */
  function variants(): Schema[] {
    const body = doc.paths['/tasks']!.post!.requestBody!.content['application/json']!.schema;
    expect(body.oneOf?.map((s) => s.$ref)).toEqual([
      '#/components/schemas/TaskInput',
      '#/components/schemas/TypedTaskInput',
    ]);
    return doc.components.schemas.TypedTaskInput!.oneOf!;
  }
  const variant = (type: string) => variants().find((v) => v.properties?.type?.const === type)!;

  it("names each type of the handlers module once, beside the original's", async () => {
    expect(variants().map((v) => v.properties?.type?.const)).toEqual(['echo', 'primes', 'webhook']);
    expect(doc.components.schemas.TaskInput!.properties?.type?.enum).toEqual(['simulated', null]);
    const unknown = await post({ type: 'nope' }).expect(400);
    for (const type of ['echo', 'primes', 'simulated', 'webhook']) expect(unknown.body.message).toContain(type);
  });

  it('enforces the documented bounds of timeout_ms', async () => {
    const timeout = variant('echo').properties!.timeout_ms!;
    await post({ type: 'echo', timeout_ms: timeout.minimum }).expect(201);
    await post({ type: 'echo', timeout_ms: timeout.maximum }).expect(201);
    for (const value of [timeout.minimum! - 1, timeout.maximum! + 1, 1.5, '100']) {
      expect(fieldsOf(await post({ type: 'echo', timeout_ms: value }).expect(400)), String(value)).toEqual([
        'timeout_ms',
      ]);
    }
  });

  it("states a type's fields and their bounds as its schema enforces them", async () => {
    const primes = variant('primes');
    expect(primes.required?.sort()).toEqual(['below', 'type']);
    const below = primes.properties!.below!;
    await post({ type: 'primes', below: below.minimum }).expect(201);
    await post({ type: 'primes', below: below.maximum }).expect(201);
    for (const value of [below.minimum! - 1, below.maximum! + 1, 2.5]) {
      expect(fieldsOf(await post({ type: 'primes', below: value }).expect(400)), String(value)).toEqual(['below']);
    }
    expect(fieldsOf(await post({ type: 'primes' }).expect(400))).toEqual(['below']);
    expect(variant('webhook').required?.sort()).toEqual(['type', 'url']);
  });
});

describe('the documented parameter constraints are the enforced ones', () => {
  it('rejects each path and query parameter past its bound or outside its enum, accepts it at the bound', async () => {
    let checked = 0;
    for (const [path, method, op] of operations()) {
      for (const param of op.parameters ?? []) {
        // Headers, and the X-Request-Id header by reference.
        if (param.in !== 'path' && param.in !== 'query') continue;
        const s = param.schema;
        const bad: (string | number)[] = [];
        const good: (string | number)[] = [];
        if (s.maximum !== undefined) {
          bad.push(s.maximum + 1);
          good.push(s.maximum);
        }
        if (s.minimum !== undefined) {
          bad.push(s.minimum - 1);
          if (param.in === 'query') good.push(s.minimum);
        }
        if (s.type === 'integer') bad.push('abc', '1.5');
        if (s.enum) {
          bad.push('not-a-value');
          good.push(...(s.enum as string[]));
        }
        const send = (value: string | number) =>
          param.in === 'path'
            ? call(method, path, { [param.name]: value })
            : call(method, path).query({ [param.name]: value });
        for (const value of bad) {
          const res = await send(value);
          expect(res.status, `${method} ${path} ${param.name}=${value}`).toBe(400);
          checked++;
        }
        for (const value of good) {
          const res = await send(value);
          expect(res.status, `${method} ${path} ${param.name}=${value}`).not.toBe(400);
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
  });

  it('rejects an undocumented query parameter on the listing', async () => {
    const documented = (doc.paths['/tasks']!.get!.parameters ?? []).map((p) => p.name);
    expect(documented).not.toContain('offset');
    await call('get', '/tasks').query({ offset: 10 }).expect(400);
  });
});

describe('redocly lint', () => {
  /** Operations that answer no client error (4xx): redocly's recommended rules warn about them, and only them. */
  const WITHOUT_CLIENT_ERRORS = ['/stats', '/services', '/healthz', '/readyz', '/metrics', '/openapi.json', '/'];

  it('passes with its recommended rules, offline', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      await writeFile(file, JSON.stringify(doc));
      const require = createRequire(import.meta.url);
      const cliDir = dirname(require.resolve('@redocly/cli/package.json'));
      const result = await execFileAsync(
        process.execPath,
        [join(cliDir, 'bin/cli.js'), 'lint', '--extends', 'recommended', '--format', 'json', file],
        {
          // No telemetry and no look-up of a newer version: the lint sends nothing anywhere.
          env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
          timeout: 60_000,
        },
      ).catch((err: { stdout?: string; code?: number }) => ({ stdout: err.stdout ?? '', code: err.code }));
      const report = JSON.parse(result.stdout) as {
        totals: { errors: number; warnings: number };
        problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
      };
      const problems = report.problems.map((p) => `${p.severity} ${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`);
      expect(problems.filter((p) => p.startsWith('error'))).toEqual([]);
      expect(report.totals.errors).toBe(0);
      expect(problems.filter((p) => p.startsWith('warn')).sort()).toEqual(
        WITHOUT_CLIENT_ERRORS.map(
          (path) =>
            `warn operation-4xx-response #/paths/${path.replaceAll('/', '~1')}/get/responses: Operation must have at least one \`4XX\` response.`,
        ).sort(),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
