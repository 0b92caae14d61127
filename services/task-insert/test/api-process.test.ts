import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EVENTS } from '@tasks/common';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type LogLine, ServiceProcess } from '../../../test/faults/support/service-process.js';
import { TcpProxy } from '../../../test/faults/support/tcp-proxy.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';

/**
 * The API as users start it, `node services/task-insert/dist/main.js`, as a child process:
 * it listens before MySQL answers, and API_WORKERS runs several processes on one port.
 */

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let t: TestEnv;

beforeAll(async () => {
  // The child runs the build: bring it up to date with the sources first.
  await promisify(execFile)(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'services/task-insert'], {
    cwd: ROOT,
  });
  t = await createTestEnv();
});
afterAll(async () => {
  await t?.cleanup();
});

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string | string[] | undefined>;
}

/** One request on a connection of its own (no keep-alive), so each may reach another worker. */
function call(port: number, method: string, path: string, options: { body?: unknown; requestId?: string } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent: false,
        headers: {
          Connection: 'close',
          ...(payload ? { 'Content-Type': 'application/json' } : {}),
          ...(options.requestId ? { 'X-Request-Id': options.requestId } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}'), headers: res.headers }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const listening = (line: LogLine) => line.event === EVENTS.apiListening;
const portOf = (line: LogLine) => Number(line.port);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('started while MySQL is down', () => {
  let proxy: TcpProxy;
  let api: ServiceProcess | undefined;
  let freshDatabase: string;

  beforeAll(async () => {
    const mysqlUrl = new URL(t.config.MYSQL_URL);
    proxy = await TcpProxy.start(Number(mysqlUrl.port || 3306));
    await proxy.cut();
    // A database that does not exist yet: the API creates and migrates it once MySQL answers.
    freshDatabase = `${mysqlUrl.pathname.slice(1)}_late`;
    mysqlUrl.hostname = '127.0.0.1';
    mysqlUrl.port = String(proxy.port);
    mysqlUrl.pathname = `/${freshDatabase}`;
    api = await ServiceProcess.start(
      'task-insert',
      {
        ...t.env,
        MYSQL_URL: mysqlUrl.toString(),
        HOST: '127.0.0.1',
        PORT: '0',
        DB_CONNECT_TIMEOUT_MS: '500',
        LOG_LEVEL: 'info',
      },
      listening,
    );
  });
  afterAll(async () => {
    await api?.stop();
    await proxy.close();
    const connection = await mysql.createConnection({ uri: inject('mysqlUrl') });
    await connection.query(`DROP DATABASE IF EXISTS \`${freshDatabase}\``);
    await connection.end();
  });

  it('listens at once: /healthz 200, /readyz and the routes that need the database 503, then all is served', async () => {
    const port = portOf(await api!.waitForLog(listening));

    expect((await call(port, 'GET', '/healthz')).status).toBe(200);
    const readiness = await call(port, 'GET', '/readyz');
    expect(readiness.status).toBe(503);
    expect(readiness.body).toMatchObject({ ready: false, checks: { migrations: { ok: false } } });
    for (const [method, path, body] of [
      ['POST', '/tasks', { message: 'early', time: 0 }],
      ['GET', '/tasks/1', undefined],
      ['GET', '/tasks', undefined],
      ['GET', '/stats', undefined],
    ] as const) {
      const answer = await call(port, method, path, { body });
      expect(answer.status, `${method} ${path}`).toBe(503);
      expect(answer.body).toMatchObject({ error: 'unavailable' });
    }

    await proxy.restore();
    await until(async () => (await call(port, 'GET', '/readyz')).status === 200, 20_000, 200);
    const created = await call(port, 'POST', '/tasks', { body: { message: 'after the database came up', time: 0 } });
    expect(created.status).toBe(201);
    expect((await call(port, 'GET', `/tasks/${created.body.id}`)).body).toMatchObject({
      status: 'pending',
      data: { message: 'after the database came up', time: 0 },
    });
  });

  it('stops with exit code 0 on SIGTERM', async () => {
    await api!.stop();
    expect(await api!.exited).toEqual({ code: 0, signal: null });
  });
});

describe('API_WORKERS=2', () => {
  let api: ServiceProcess | undefined;

  beforeAll(async () => {
    api = await ServiceProcess.start('task-insert', {
      ...t.env,
      API_WORKERS: '2',
      HOST: '127.0.0.1',
      PORT: '0',
      // Each request is logged (at debug level) with its id and the pid of the worker that served it.
      LOG_LEVEL: 'debug',
    });
  });
  afterAll(async () => {
    await api?.stop();
  });

  /** The pids of the workers that served `count` fresh requests. */
  async function servingPids(port: number, count: number, tag: string): Promise<Set<number>> {
    for (let i = 0; i < count; i++) {
      expect((await call(port, 'GET', '/healthz', { requestId: `${tag}-${i}` })).status).toBe(200);
    }
    const pids = new Set<number>();
    for (let i = 0; i < count; i++) {
      const line = await api!.waitForLog((l) => l.reqId === `${tag}-${i}` && l.msg === 'request completed');
      pids.add(Number(line.pid));
    }
    return pids;
  }

  it('serves requests from two worker processes sharing one port', async () => {
    await until(async () => api!.lines.filter(listening).length >= 2, 20_000);
    const workers = api!.lines.filter(listening);
    const port = portOf(workers[0]!);
    expect(workers.map(portOf)).toEqual([port, port]);
    const pids = await servingPids(port, 8, 'spread');
    expect(pids.size).toBe(2);
    expect(pids.has(api!.pid)).toBe(false);
    expect(new Set(workers.map((l) => Number(l.pid)))).toEqual(pids);
  });

  it('reports each worker alive in Redis from serve(), with its pid and port', async () => {
    const workers = api!.lines.filter(listening);
    const apiProcesses = async () =>
      (await t.ctx.store.liveServices()).services.filter((s) => s.service === 'task-insert');
    await until(async () => (await apiProcesses()).length === 2, 20_000, 100);
    const reported = await apiProcesses();
    expect(new Set(reported.map((s) => s.pid))).toEqual(new Set(workers.map((l) => Number(l.pid))));
    for (const s of reported) expect(s.detail).toMatchObject({ port: portOf(workers[0]!) });
  });

  it('replaces a worker that dies', async () => {
    const before = api!.lines.filter(listening).map((l) => Number(l.pid));
    const victim = before[0]!;
    process.kill(victim, 'SIGKILL');
    const replacement = await api!.waitForLog((l) => listening(l) && !before.includes(Number(l.pid)), 20_000);
    const port = portOf(replacement);
    const pids = await servingPids(port, 8, 'replaced');
    expect(pids).toEqual(new Set([before[1]!, Number(replacement.pid)]));
  });

  it('stops every worker gracefully on SIGTERM and exits 0', async () => {
    const workers = [...new Set(api!.lines.filter(listening).map((l) => Number(l.pid)))];
    const running = workers.filter(isAlive);
    await api!.stop();
    expect(await api!.exited).toEqual({ code: 0, signal: null });
    for (const pid of workers) expect(isAlive(pid), `worker ${pid}`).toBe(false);
    // A worker that stopped gracefully leaves the live services at once (the killed one's report runs out).
    const reported = (await t.ctx.store.liveServices()).services.map((s) => s.pid);
    expect(running).toHaveLength(2);
    for (const pid of running) expect(reported, `worker ${pid}`).not.toContain(pid);
    expect(api!.lines.filter((l) => l.event === EVENTS.stopped).length).toBeGreaterThanOrEqual(2);
  });
});

describe('stopped while requests wait for their tasks', () => {
  it('answers them at once with their tasks as they are, and exits 0 without waiting out its shutdown timeout', async () => {
    const api = await ServiceProcess.start(
      'task-insert',
      { ...t.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info' },
      listening,
    );
    try {
      const port = portOf(await api.waitForLog(listening));
      await api.waitForLog((l) => l.event === EVENTS.started);
      const [outcome] = await t.ctx.store.insert([
        { data: { message: 'waited for at shutdown', time: 0 }, idempotencyKey: null },
      ]);
      const id = (outcome as { id: number }).id;
      // Keep-alive, as browsers and clients do: the connection stays open after the answer.
      const agent = new Agent({ keepAlive: true });
      const answer = new Promise<Answer>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: `/tasks/${id}?wait=30`, agent }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text), headers: res.headers }));
        });
        req.on('error', reject);
        req.end();
      });
      // The room subscribes on its first wait: once the subscription is there, the request waits.
      await until(async () => {
        const list = (await t.redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
        return list.split('\n').some((l) => l.includes(' name=task-insert:finished ') && /\bage=[0-9] /.test(l));
      }, 10_000);
      const stopping = performance.now();
      api.kill('SIGTERM');
      const res = await answer;
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id, status: 'pending' });
      expect(await api.exited).toEqual({ code: 0, signal: null });
      expect(performance.now() - stopping).toBeLessThan(5_000);
      agent.destroy();
    } finally {
      await api.stop();
    }
  });
});

describe('HANDLERS naming a module that cannot be loaded', () => {
  it.each(['1', '2'])('API_WORKERS=%s: one line naming HANDLERS on stderr, and exit 1', async (workers) => {
    const child = spawn(process.execPath, ['services/task-insert/dist/main.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        ...t.env,
        HANDLERS: './no/such/handlers.js',
        API_WORKERS: workers,
        HOST: '127.0.0.1',
        PORT: '0',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code] = await once(child, 'exit');
    clearTimeout(killer);
    expect(code).toBe(1);
    const lines = stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^HANDLERS=\.\/no\/such\/handlers\.js: could not be loaded: /);
  });
});
