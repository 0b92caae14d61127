import { Agent, request } from 'node:http';
import type { Logger } from '@tasks/common';
import { sleep } from '@tasks/common';
import type { Redis } from 'ioredis';
import { allFinished, finishTimes, resetDatabase } from './database.js';
import { freePort, waitForReady } from './http.js';
import { cpuMicrosPerTask, pidFromRedisInfo, snapshotCpu } from './processes.js';
import { percentile, progress, waitFor } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import type { DatabaseServer } from './servers.js';
import { ServiceProcess, serviceEnv, stopAll } from './services.js';
import type { BenchSettings } from './settings.js';
import { openStore } from './task-store.js';

export interface LatencyFigures {
  server: string;
  rate: number;
  seconds: number;
  tasks: number;
  errors: number;
  /** From the client sending POST /tasks to the task's `finished_at`, in ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** POST /tasks response times, in ms. */
  postP50Ms: number;
  postP99Ms: number;
  apiPeakRssMb: number;
  executorPeakRssMb: number;
  /** CPU time per task of each process (the API, the scheduler, the executor, the servers) over the measured seconds and the drain after. */
  cpuMicrosPerTask: Record<string, number>;
  /** `POST /tasks?wait=30` at WAIT_RATE a second: from the task's `finished_at` to its answer, in ms. */
  wait: { rate: number; tasks: number; errors: number; p50Ms: number; p99Ms: number; maxMs: number };
}

/** The rate of the waiting POSTs, each holding its connection until its task is final. */
export const WAIT_RATE = 200;

interface Sent {
  /** Wall-clock ms (sub-millisecond) when the request was sent. */
  sentAt: number;
  responseMs: number;
  id: number | null;
}

const BODY = JSON.stringify({ message: 'bench', time: 0 });

function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

function post(agent: Agent, port: number, path = '/tasks'): Promise<Sent> {
  const sentAt = wallNow();
  return new Promise((resolve) => {
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          let id: number | null = null;
          if (res.statusCode === 201) {
            try {
              id = Number((JSON.parse(body) as { id: unknown }).id);
            } catch {
              id = null;
            }
          }
          resolve({ sentAt, responseMs: wallNow() - sentAt, id });
        });
      },
    );
    req.on('error', () => resolve({ sentAt, responseMs: wallNow() - sentAt, id: null }));
    req.end(BODY);
  });
}

/** Sends `rate` POSTs a second for `seconds`, on schedule whatever the responses do (an open loop). */
async function offer(agent: Agent, port: number, rate: number, seconds: number, path?: string): Promise<Sent[]> {
  const total = Math.round(rate * seconds);
  const intervalMs = 1000 / rate;
  const pending: Promise<Sent>[] = [];
  const start = performance.now();
  while (pending.length < total) {
    const due = Math.min(total, Math.floor((performance.now() - start) / intervalMs) + 1);
    while (pending.length < due) pending.push(post(agent, port, path));
    const next = start + pending.length * intervalMs;
    await sleep(Math.max(0, next - performance.now()));
  }
  return Promise.all(pending);
}

/**
 * The whole path at a steady rate: the API, the scheduler and one executor (the real
 * services), `rate` tasks a second with `time` 0 and nothing failing. A task's latency runs
 * from the client sending its POST to its `finished_at` (both this machine's clock).
 */
export async function runLatency(
  settings: BenchSettings,
  server: DatabaseServer,
  logger: Logger,
  redis: Redis,
): Promise<LatencyFigures> {
  const { latencyRate: rate, latencySeconds: seconds } = settings;
  const { pool } = server;
  const label = `${server.label} latency`;
  progress(`${label}: preparing (${rate} tasks/s for ${seconds} s)`);
  await resetDatabase(server.url, logger);
  await deleteKeys(redis, settings.keyPrefix);
  const port = await freePort();
  const env = serviceEnv(settings, server.url, { HOST: '127.0.0.1', PORT: String(port), FAILURE_RATE: '0' });
  const api = ServiceProcess.service('task-insert', env, 'api');
  const scheduler = ServiceProcess.service('scheduler', env);
  const executor = ServiceProcess.service('executor', env);
  const all = [api, scheduler, executor];
  const { store, close: closeStore } = openStore(settings, server.url, logger);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  try {
    await waitForReady(port, api);
    const drained = () =>
      waitFor(
        'the offered tasks to finish',
        async () => {
          for (const p of all) p.assertRunning();
          return allFinished(store);
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    progress(`${label}: warming up for 2 s`);
    await offer(agent, port, rate, 2);
    await drained();
    progress(`${label}: measuring`);
    const processes: Record<string, number[]> = {
      ...Object.fromEntries(all.map((p) => [p.label, p.tree()])),
      [server.kind]: server.pid === null ? [] : [server.pid],
    };
    const redisPid = pidFromRedisInfo(await redis.info('server'));
    if (redisPid !== null) processes.redis = [redisPid];
    const cpuBefore = snapshotCpu(processes);
    const sent = await offer(agent, port, rate, seconds);
    await drained();
    const cpu = cpuMicrosPerTask(cpuBefore, snapshotCpu(processes), sent.length);
    const ok = sent.filter((s): s is Sent & { id: number } => s.id !== null);
    const finished = await finishTimes(
      pool,
      ok.map((s) => s.id),
    );
    const latencies = ok
      .map((s) => (finished.get(s.id) ?? Number.NaN) - s.sentAt)
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const responses = sent.map((s) => s.responseMs).sort((a, b) => a - b);

    // Waiting for the result: each answer is sent once the task is final (woken over Redis).
    progress(`${label}: POST /tasks?wait=30 at ${WAIT_RATE}/s for ${seconds} s`);
    const waitAgent = new Agent({ keepAlive: true, maxSockets: 1_000 });
    const waited = await offer(waitAgent, port, WAIT_RATE, seconds, '/tasks?wait=30').finally(() =>
      waitAgent.destroy(),
    );
    const waitedOk = waited.filter((s): s is Sent & { id: number } => s.id !== null);
    const waitFinished = await finishTimes(
      pool,
      waitedOk.map((s) => s.id),
    );
    const waits = waitedOk
      .map((s) => s.sentAt + s.responseMs - (waitFinished.get(s.id) ?? Number.NaN))
      .filter(Number.isFinite)
      .sort((a, b) => a - b);
    const figures: LatencyFigures = {
      server: server.label,
      rate,
      seconds,
      tasks: sent.length,
      errors: sent.length - latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1) ?? Number.NaN,
      postP50Ms: percentile(responses, 50),
      postP99Ms: percentile(responses, 99),
      apiPeakRssMb: api.peakRssMb() ?? Number.NaN,
      executorPeakRssMb: executor.peakRssMb() ?? Number.NaN,
      cpuMicrosPerTask: cpu,
      wait: {
        rate: WAIT_RATE,
        tasks: waited.length,
        errors: waited.length - waits.length,
        p50Ms: percentile(waits, 50),
        p99Ms: percentile(waits, 99),
        maxMs: waits.at(-1) ?? Number.NaN,
      },
    };
    progress(
      `${label}: insert-to-completed p50 ${figures.p50Ms.toFixed(1)} ms, p99 ${figures.p99Ms.toFixed(1)} ms, ` +
        `max ${figures.maxMs.toFixed(1)} ms; POST p50 ${figures.postP50Ms.toFixed(1)} ms, ` +
        `p99 ${figures.postP99Ms.toFixed(1)} ms; ${figures.errors} errors; CPU µs per task: ` +
        Object.entries(cpu)
          .map(([name, us]) => `${name} ${us.toFixed(0)}`)
          .join(', '),
    );
    progress(
      `${label}: final to answered (?wait=30) p50 ${figures.wait.p50Ms.toFixed(1)} ms, p99 ${figures.wait.p99Ms.toFixed(1)} ms, ` +
        `max ${figures.wait.maxMs.toFixed(1)} ms; ${figures.wait.errors} errors`,
    );
    for (const p of all) if (p.logLines > 0) progress(`${label}: ${p.label} logged: ${p.logSummary()}`);
    return figures;
  } finally {
    agent.destroy();
    await stopAll(all);
    await closeStore();
    await deleteKeys(redis, settings.keyPrefix);
  }
}
