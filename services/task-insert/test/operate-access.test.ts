import { Writable } from 'node:stream';
import { createLogger, loadConfig } from '@tasks/common';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawHttp } from '../../../test/support/raw-http.js';
import { deadLetteredTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

const TOKEN = 'operator-token-0123456789';
const BODY = { message: 'spiderman 3', time: 3 };

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

function appWith(env: Record<string, string>, logger = t.logger) {
  return createApp({ ...t.ctx, logger, config: loadConfig({ ...t.env, ...env }) });
}

async function countRows(): Promise<number> {
  const [[row]] = (await t.sql.query('SELECT COUNT(*) AS n FROM tasks')) as [{ n: number }[], unknown];
  return Number(row!.n);
}

describe('with API_TOKEN set', () => {
  const app = () => appWith({ API_TOKEN: TOKEN });

  it.each([
    ['no Authorization header', undefined],
    ['a wrong token', `Bearer ${TOKEN}x`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 8)}`],
    ['another scheme', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`],
    ['the bare token', TOKEN],
  ])('POST /tasks with %s is 401 and writes nothing', async (_name, header) => {
    const before = await countRows();
    const req = request(app()).post('/tasks').send(BODY);
    if (header) req.set('Authorization', header);
    const res = await req;
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(res.body).toMatchObject({ error: 'unauthorized' });
    expect(JSON.stringify(res.body)).not.toContain(TOKEN);
    expect(await countRows()).toBe(before);
  });

  it('POST /tasks with the token inserts', async () => {
    const res = await request(app()).post('/tasks').set('Authorization', `Bearer ${TOKEN}`).send(BODY).expect(201);
    expect(res.body).toMatchObject({ message: 'Task created successfully' });
    // The scheme is case-insensitive, as HTTP says.
    await request(app()).post('/tasks').set('Authorization', `bearer ${TOKEN}`).send(BODY).expect(201);
  });

  it('POST /tasks/:id/retry with the token needs no Content-Type', async () => {
    const task = await deadLetteredTask(t);
    await request(app()).post(`/tasks/${task.id}/retry`).set('Content-Type', 'text/plain').expect(401);
    await request(app()).post(`/tasks/${task.id}/retry`).set('Authorization', `Bearer ${TOKEN}`).expect(200);
  });

  it('POST /tasks/:id/retry needs the token too', async () => {
    const task = await deadLetteredTask(t);
    await request(app()).post(`/tasks/${task.id}/retry`).expect(401);
    expect((await t.store.getTask(task.id))?.status).toBe('failed');
    await request(app()).post(`/tasks/${task.id}/retry`).set('Authorization', `Bearer ${TOKEN}`).expect(200);
    expect((await t.store.getTask(task.id))?.status).toBe('pending');
  });

  it('leaves reads, health, metrics, the document and the dashboard open', async () => {
    const a = app();
    for (const path of ['/tasks', '/tasks?status=failed', '/stats', '/stats/throughput', '/healthz', '/readyz']) {
      expect((await request(a).get(path)).status, path).toBe(200);
    }
    for (const path of ['/metrics', '/openapi.json', '/', '/dashboard.js']) {
      expect((await request(a).get(path)).status, path).toBe(200);
    }
  });
});

describe('without API_TOKEN', () => {
  it('writes need no token', async () => {
    await request(appWith({})).post('/tasks').send(BODY).expect(201);
  });

  it.each([
    ['no Content-Type', undefined],
    ['a form', 'application/x-www-form-urlencoded'],
    ['a multipart form', 'multipart/form-data; boundary=x'],
    ['text/plain', 'text/plain'],
  ])(
    'POST /tasks/:id/retry with a body and %s is 415 and changes nothing: a cross-site form cannot send it',
    async (_name, type) => {
      const task = await deadLetteredTask(t);
      const req = request(appWith({})).post(`/tasks/${task.id}/retry`);
      if (type) req.set('Content-Type', type);
      // A Buffer body goes out as it is, with no Content-Type of its own.
      const res = await req.send(Buffer.from('id=1'));
      expect(res.status).toBe(415);
      expect(res.body).toMatchObject({
        error: 'unsupported_media_type',
        message: /Content-Type must be application\/json/,
      });
      expect((await t.store.getTask(task.id))?.status).toBe('failed');
    },
  );

  it('POST /tasks/:id/retry declared application/json retries', async () => {
    const task = await deadLetteredTask(t);
    await request(appWith({})).post(`/tasks/${task.id}/retry`).set('Content-Type', 'application/json').expect(200);
    expect((await t.store.getTask(task.id))?.status).toBe('pending');
  });

  describe('a write without a body, as curl sends it (no Content-Length, no Transfer-Encoding)', () => {
    let raw: RawHttp;
    beforeAll(async () => {
      raw = await RawHttp.listen(appWith({}));
    });
    afterAll(async () => {
      await raw.close();
    });

    const declared = { 'Content-Type': 'application/json' };

    it.each([
      ['declared application/json', declared],
      ['with no Content-Type', {}],
      ['with a Content-Type that is not JSON', { 'Content-Type': 'text/plain' }],
    ])('POST /tasks/:id/retry %s retries', async (_name, headers) => {
      const task = await deadLetteredTask(t);
      const res = await raw.request('POST', `/tasks/${task.id}/retry`, headers);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ task: { id: task.id, status: 'pending' }, removed_dead_letters: 1 });
      expect((await t.store.getTask(task.id))?.status).toBe('pending');
    });

    it.each([
      ['declared application/json', declared],
      ['with no Content-Type', {}],
    ])('POST /dead-letters/retry %s retries', async (_name, headers) => {
      const task = await deadLetteredTask(t);
      const res = await raw.request('POST', '/dead-letters/retry', headers);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ redriven: expect.any(Number), kept_entries: 0 });
      expect((await t.store.getTask(task.id))?.status).toBe('pending');
    });

    it("is taken from the API's own origin (a page it served)", async () => {
      const task = await deadLetteredTask(t);
      const res = await raw.request('POST', `/tasks/${task.id}/retry`, { Origin: `http://${raw.host}` });
      expect(res.status).toBe(200);
      expect((await t.store.getTask(task.id))?.status).toBe('pending');
    });

    it.each([
      ['another site', 'https://evil.example'],
      ['another port of the same host', 'http://127.0.0.1:1'],
      ['an opaque origin (a sandboxed frame, a redirect)', 'null'],
    ])('is refused with 403 from %s, and changes nothing', async (_name, origin) => {
      const task = await deadLetteredTask(t);
      for (const [path, headers] of [
        [`/tasks/${task.id}/retry`, { Origin: origin }],
        // An empty form, as a cross-site page can make a browser send.
        [
          `/tasks/${task.id}/retry`,
          { Origin: origin, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '0' },
        ],
        ['/dead-letters/retry', { Origin: origin }],
      ] as const) {
        const res = await raw.request('POST', path, headers);
        expect(res.status, path).toBe(403);
        expect(res.body).toEqual({ error: 'cross_origin', message: expect.stringContaining(`Origin: ${origin}`) });
      }
      expect((await t.store.getTask(task.id))?.status).toBe('failed');
    });
  });
});

describe('RATE_LIMIT_PER_MINUTE', () => {
  it('answers 429 with Retry-After beyond the limit, for POST /tasks only', async () => {
    const app = appWith({ RATE_LIMIT_PER_MINUTE: '3' });
    for (let i = 0; i < 3; i++) await request(app).post('/tasks').send(BODY).expect(201);
    const before = await countRows();
    const res = await request(app).post('/tasks').send(BODY);
    expect(res.status).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(res.headers.ratelimit).toBeDefined();
    expect(res.body).toMatchObject({ error: 'rate_limited' });
    expect(await countRows()).toBe(before);
    // Reads are not limited.
    await request(app).get('/stats').expect(200);
    await request(app).get('/tasks').expect(200);
  });

  it('limits nothing when 0 (the default)', async () => {
    const app = appWith({});
    const replies = await Promise.all(Array.from({ length: 30 }, () => request(app).post('/tasks').send(BODY)));
    expect(replies.every((r) => r.status === 201)).toBe(true);
  });
});

describe('the dashboard page', () => {
  it('is served with security headers and a CSP that allows only its own script', async () => {
    const res = await request(appWith({})).get('/').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = res.headers['content-security-policy'] as string;
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('upgrade-insecure-requests');
    expect(csp).toContain("frame-ancestors 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.text).toContain('<script src="/dashboard.js"');
    // No inline script for the CSP to block.
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const script = await request(appWith({})).get('/dashboard.js').expect(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
  });
});

describe('logs', () => {
  function capture() {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    return { lines, logger: createLogger({ LOG_LEVEL: 'debug', LOG_PRETTY: false }, 'test-api', stream) };
  }

  it('carry the request id on every line of a request, and never the token', async () => {
    const { lines, logger } = capture();
    const app = appWith({ API_TOKEN: TOKEN }, logger);
    const task = await deadLetteredTask(t);
    const res = await request(app)
      .post(`/tasks/${task.id}/retry`)
      .set('Authorization', `Bearer ${TOKEN}`)
      .set('X-Request-Id', 'req-operate-1')
      .expect(200);
    expect(res.headers['x-request-id']).toBe('req-operate-1');
    const ofRequest = lines.filter((l) => l.reqId === 'req-operate-1');
    expect(ofRequest.map((l) => l.msg)).toEqual(expect.arrayContaining(['failed task redriven', 'request completed']));
    expect(lines.every((l) => l.reqId === 'req-operate-1')).toBe(true);
    expect(JSON.stringify(lines)).not.toContain(TOKEN);
    const completed = ofRequest.find((l) => l.msg === 'request completed') as { req: { headers: object } };
    expect(completed.req.headers).toMatchObject({ authorization: '[redacted]' });
  });

  it('give each request its own id when the client sends none', async () => {
    const { lines, logger } = capture();
    const app = appWith({}, logger);
    const a = await request(app).post('/tasks').send(BODY).expect(201);
    const b = await request(app).get('/tasks/0');
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.headers['x-request-id']).not.toBe(a.headers['x-request-id']);
    const ids = new Set(lines.map((l) => l.reqId));
    expect(ids).toEqual(new Set([a.headers['x-request-id'], b.headers['x-request-id']]));
  });
});
