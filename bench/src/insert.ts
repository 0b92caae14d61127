import { createServer, request } from 'node:http';
import type { Logger } from '@tasks/common';
import autocannon from 'autocannon';
import type { Redis } from 'ioredis';
import { resetDatabase } from './database.js';
import { progress, waitFor } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import { cpuSeconds, ServiceProcess, serverPids, serviceEnv } from './services.js';
import type { BenchSettings } from './settings.js';

export interface LoadFigures {
  perSecond: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time per request of the API process and of MySQL, in µs. */
  apiCpuMicros: number;
  mysqlCpuMicros: number;
}

export interface InsertFigures {
  tasks: LoadFigures;
  noop: LoadFigures;
  connections: number;
  seconds: number;
  apiPeakRssMb: number;
}

const BODY = JSON.stringify({ message: 'bench', time: 0 });

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Resolves once the server at `port` answers HTTP. */
export async function waitForHttp(port: number, service: ServiceProcess): Promise<void> {
  await waitFor(
    `${service.label} to listen on ${port}`,
    () => {
      service.assertRunning();
      return new Promise<boolean>((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/', method: 'GET' }, (res) => {
          res.resume();
          resolve(true);
        });
        req.on('error', () => resolve(false));
        req.end();
      });
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

async function load(url: string, connections: number, seconds: number): Promise<LoadFigures> {
  const result = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections,
    duration: seconds,
  });
  return {
    perSecond: result['2xx'] / result.duration,
    requests: result['2xx'],
    errors: result.errors + result.timeouts + result.non2xx,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    apiCpuMicros: Number.NaN,
    mysqlCpuMicros: Number.NaN,
  };
}

/**
 * `POST /tasks` against `POST /noop/tasks` of the same process (see api-server.ts), each with
 * `connections` keep-alive clients for `insertSeconds` after a warm-up, alternating twice.
 */
export async function runInsert(settings: BenchSettings, logger: Logger, redis: Redis): Promise<InsertFigures> {
  progress('insert: preparing');
  await resetDatabase(settings.mysqlUrl, logger);
  await deleteKeys(redis, settings.keyPrefix);
  const port = await freePort();
  const api = ServiceProcess.benchEntry(
    'api-server.js',
    serviceEnv(settings, { HOST: '127.0.0.1', PORT: String(port) }),
    'api',
  );
  try {
    await waitForHttp(port, api);
    const base = `http://127.0.0.1:${port}`;
    const connections = settings.insertConnections;
    const half = settings.insertSeconds / 2;
    const mysqlPid = serverPids().mysql;
    const totals = { tasks: [] as LoadFigures[], noop: [] as LoadFigures[] };
    progress(`insert: warming up (${connections} connections)`);
    await load(`${base}/noop/tasks`, connections, 1);
    await load(`${base}/tasks`, connections, 1);
    for (let round = 1; round <= 2; round++) {
      for (const [name, path] of [
        ['noop', '/noop/tasks'],
        ['tasks', '/tasks'],
      ] as const) {
        const apiBefore = api.cpuSeconds() ?? Number.NaN;
        const mysqlBefore = cpuSeconds(mysqlPid) ?? Number.NaN;
        const figures = await load(`${base}${path}`, connections, half);
        const perRequest = (seconds: number) => (seconds * 1e6) / Math.max(1, figures.requests);
        figures.apiCpuMicros = perRequest((api.cpuSeconds() ?? Number.NaN) - apiBefore);
        figures.mysqlCpuMicros = perRequest((cpuSeconds(mysqlPid) ?? Number.NaN) - mysqlBefore);
        totals[name].push(figures);
        progress(
          `insert: POST ${path} round ${round}: ${figures.perSecond.toFixed(0)} req/s, ` +
            `p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, ${figures.errors} errors; CPU µs per request: ` +
            `api ${figures.apiCpuMicros.toFixed(0)}, mysql ${figures.mysqlCpuMicros.toFixed(0)}`,
        );
      }
    }
    api.assertRunning();
    const combine = (list: LoadFigures[]): LoadFigures => ({
      perSecond: list.reduce((s, f) => s + f.perSecond, 0) / list.length,
      requests: list.reduce((s, f) => s + f.requests, 0),
      errors: list.reduce((s, f) => s + f.errors, 0),
      p50Ms: Math.max(...list.map((f) => f.p50Ms)),
      p99Ms: Math.max(...list.map((f) => f.p99Ms)),
      apiCpuMicros: list.reduce((s, f) => s + f.apiCpuMicros, 0) / list.length,
      mysqlCpuMicros: list.reduce((s, f) => s + f.mysqlCpuMicros, 0) / list.length,
    });
    const figures = {
      tasks: combine(totals.tasks),
      noop: combine(totals.noop),
      connections,
      seconds: settings.insertSeconds,
      apiPeakRssMb: api.peakRssMb() ?? Number.NaN,
    };
    if (api.logLines > 0) progress(`api logged: ${api.logSummary()}`);
    return figures;
  } finally {
    await api.stop();
    await deleteKeys(redis, settings.keyPrefix);
  }
}
