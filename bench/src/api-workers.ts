import type { Logger } from '@tasks/common';
import type { Redis } from 'ioredis';
import { resetDatabase } from './database.js';
import { freePort, waitForReady } from './http.js';
import { combine, type LoadFigures, load } from './insert.js';
import { cpuSeconds } from './processes.js';
import { progress } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import type { DatabaseServer } from './servers.js';
import { ServiceProcess, serviceEnv, stopAll } from './services.js';
import type { BenchSettings } from './settings.js';

export interface WorkersFigures {
  server: string;
  workers: number;
  /** Node processes of the API (its primary and its workers) while it was loaded. */
  processes: number;
  /** Whether the API ran as many workers as asked (a primary and `workers` workers when more than one). */
  honoured: boolean;
  load: LoadFigures;
  peakRssMb: number;
}

/**
 * The API service itself (`services/task-insert`, as production runs it) with API_WORKERS set
 * to each of `settings.apiWorkers`: all of them started side by side on ports of their own,
 * then loaded in turn (`POST /tasks`, `insertConnections` keep-alive clients) over two rounds,
 * so that the machine's noise hits each.
 */
export async function runApiWorkers(
  settings: BenchSettings,
  server: DatabaseServer,
  logger: Logger,
  redis: Redis,
): Promise<WorkersFigures[]> {
  const label = `${server.label} API workers`;
  progress(`${label}: preparing (API_WORKERS=${settings.apiWorkers.join(', ')})`);
  await resetDatabase(server.url, logger);
  await deleteKeys(redis, settings.keyPrefix);
  const apis: { workers: number; port: number; api: ServiceProcess }[] = [];
  for (const workers of settings.apiWorkers) {
    const port = await freePort();
    const env = serviceEnv(settings, server.url, {
      HOST: '127.0.0.1',
      PORT: String(port),
      API_WORKERS: String(workers),
    });
    apis.push({ workers, port, api: ServiceProcess.service('task-insert', env, `api (API_WORKERS=${workers})`) });
  }
  try {
    for (const { port, api } of apis) await waitForReady(port, api);
    const connections = settings.insertConnections;
    const half = settings.insertSeconds / 2;
    const rounds = new Map<number, LoadFigures[]>(apis.map((a) => [a.workers, []]));
    const processes = new Map<number, number>();
    for (const { port } of apis) await load(`http://127.0.0.1:${port}/tasks`, connections, 1);
    for (let round = 1; round <= 2; round++) {
      for (const { workers, port, api } of apis) {
        const apiBefore = api.treeCpuSeconds();
        const mysqlBefore = cpuSeconds(server.pid) ?? Number.NaN;
        const figures = await load(`http://127.0.0.1:${port}/tasks`, connections, half);
        const perRequest = (seconds: number) => (seconds * 1e6) / Math.max(1, figures.requests);
        figures.apiCpuMicros = perRequest(api.treeCpuSeconds() - apiBefore);
        figures.mysqlCpuMicros = perRequest((cpuSeconds(server.pid) ?? Number.NaN) - mysqlBefore);
        processes.set(workers, api.tree().length);
        rounds.get(workers)?.push(figures);
        progress(
          `${label}: API_WORKERS=${workers} (${api.tree().length} processes) round ${round}: ` +
            `${figures.perSecond.toFixed(0)} req/s, p50 ${figures.p50Ms} ms, p99 ${figures.p99Ms} ms, ` +
            `${figures.errors} errors; CPU µs per request: api ${figures.apiCpuMicros.toFixed(0)}, ` +
            `${server.kind} ${figures.mysqlCpuMicros.toFixed(0)}`,
        );
      }
    }
    const results = apis.map(({ workers, api }) => {
      const count = processes.get(workers) ?? 0;
      api.assertRunning();
      if (api.logLines > 0) progress(`${label}: ${api.label} logged: ${api.logSummary()}`);
      return {
        server: server.label,
        workers,
        processes: count,
        honoured: workers === 1 ? count === 1 : count >= workers + 1,
        load: combine(rounds.get(workers) ?? []),
        peakRssMb: api.treePeakRssMb(),
      };
    });
    for (const r of results) {
      if (!r.honoured) {
        progress(
          `!!! ${label}: API_WORKERS=${r.workers} ran ${r.processes} process(es): this build of the API does not ` +
            'start workers, so its figure is of one process',
        );
      }
    }
    return results;
  } finally {
    await stopAll(apis.map((a) => a.api));
    await deleteKeys(redis, settings.keyPrefix);
  }
}
