import type { Logger } from '@tasks/common';
import autocannon from 'autocannon';
import type { Redis } from 'ioredis';
import { resetDatabase } from './database.js';
import { freePort, waitForReady } from './http.js';
import { cpuSeconds } from './processes.js';
import { progress } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import type { DatabaseServer } from './servers.js';
import { ServiceProcess, serviceEnv } from './services.js';
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
  server: string;
  tasks: LoadFigures;
  noop: LoadFigures;
  connections: number;
  seconds: number;
  apiPeakRssMb: number;
}

const BODY = JSON.stringify({ message: 'bench', time: 0 });

export async function load(url: string, connections: number, seconds: number): Promise<LoadFigures> {
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

/** The mean of rates and CPU times, the sums of counts and the worst latencies of several rounds. */
export function combine(list: LoadFigures[]): LoadFigures {
  return {
    perSecond: list.reduce((s, f) => s + f.perSecond, 0) / list.length,
    requests: list.reduce((s, f) => s + f.requests, 0),
    errors: list.reduce((s, f) => s + f.errors, 0),
    p50Ms: Math.max(...list.map((f) => f.p50Ms)),
    p99Ms: Math.max(...list.map((f) => f.p99Ms)),
    apiCpuMicros: list.reduce((s, f) => s + f.apiCpuMicros, 0) / list.length,
    mysqlCpuMicros: list.reduce((s, f) => s + f.mysqlCpuMicros, 0) / list.length,
  };
}

/**
 * `POST /tasks` against `POST /noop/tasks` of the same process (see api-server.ts), each with
 * `connections` keep-alive clients for `insertSeconds` after a warm-up, alternating twice.
 */
export async function runInsert(
  settings: BenchSettings,
  server: DatabaseServer,
  logger: Logger,
  redis: Redis,
): Promise<InsertFigures> {
  const label = `${server.label} insert`;
  progress(`${label}: preparing`);
  await resetDatabase(server.url, logger);
  await deleteKeys(redis, settings.keyPrefix);
  const port = await freePort();
  const api = ServiceProcess.benchEntry(
    'api-server.js',
    serviceEnv(settings, server.url, { HOST: '127.0.0.1', PORT: String(port) }),
    'api',
  );
  try {
    await waitForReady(port, api);
    const base = `http://127.0.0.1:${port}`;
    const connections = settings.insertConnections;
    const half = settings.insertSeconds / 2;
    const mysqlPid = server.pid;
    const totals = { tasks: [] as LoadFigures[], noop: [] as LoadFigures[] };
    progress(`${label}: warming up (${connections} connections)`);
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
          `${label}: POST ${path} round ${round}: ${figures.perSecond.toFixed(0)} req/s, ` +
            `p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, ${figures.errors} errors; CPU µs per request: ` +
            `api ${figures.apiCpuMicros.toFixed(0)}, mysql ${figures.mysqlCpuMicros.toFixed(0)}`,
        );
      }
    }
    api.assertRunning();
    const figures = {
      server: server.label,
      tasks: combine(totals.tasks),
      noop: combine(totals.noop),
      connections,
      seconds: settings.insertSeconds,
      apiPeakRssMb: api.peakRssMb() ?? Number.NaN,
    };
    if (api.logLines > 0) progress(`${label}: api logged: ${api.logSummary()}`);
    return figures;
  } finally {
    await api.stop();
    await deleteKeys(redis, settings.keyPrefix);
  }
}
