import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { cpuMicrosPerTask, pidFromRedisInfo, snapshotCpu } from './processes.js';
import { progress } from './progress.js';
import { deleteKeys } from './redis-keys.js';

export interface BullmqFigures {
  /** Jobs added per second with addBulk (chunks of 1,000). */
  addPerSecond: number;
  /** No-op jobs processed per second by one worker. */
  processPerSecond: number;
  jobs: number;
  concurrency: number;
  /**
   * CPU time per job while the worker ran them: `worker` is the bench process, in which the
   * worker runs (and does nothing else meanwhile), `redis` the Redis server.
   */
  cpuMicrosPerTask: Record<string, number>;
}

const ADD_CHUNK = 1_000;

type Connection = {
  host: string;
  port: number;
  db: number;
  username?: string;
  password?: string;
  maxRetriesPerRequest: null;
};

/** BullMQ's connection options for `redisUrl`: the same server, database and credentials. */
function connectionOf(redisUrl: string): Connection {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: Number(url.pathname.slice(1) || 0),
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    maxRetriesPerRequest: null,
  };
}

/** Adds `jobs` no-op jobs in chunks of ADD_CHUNK; returns the seconds it took. */
async function addJobs(queue: Queue, jobs: number): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < jobs; i += ADD_CHUNK) {
    const n = Math.min(ADD_CHUNK, jobs - i);
    await queue.addBulk(Array.from({ length: n }, (_, j) => ({ name: 'noop', data: { n: i + j } })));
  }
  return (performance.now() - start) / 1000;
}

/**
 * Runs one worker until it has finished `jobs` jobs; returns the seconds from its start, and
 * the CPU time per job of the bench process and of Redis (`redisPid`) meanwhile.
 */
async function processJobs(
  name: string,
  connection: Connection,
  prefix: string,
  jobs: number,
  concurrency: number,
  redisPid: number | null,
): Promise<{ seconds: number; cpuMicrosPerTask: Record<string, number> }> {
  let completed = 0;
  let failed = 0;
  let finish: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const worker = new Worker(name, async () => undefined, { connection, prefix, concurrency, autorun: false });
  worker.on('completed', () => {
    completed++;
    if (completed + failed >= jobs) finish();
  });
  worker.on('failed', () => {
    failed++;
    if (completed + failed >= jobs) finish();
  });
  await worker.waitUntilReady();
  const processes = { worker: [process.pid], redis: redisPid === null ? [] : [redisPid] };
  const cpuBefore = snapshotCpu(processes);
  const start = performance.now();
  const running = worker.run();
  const timeout = setTimeout(() => finish(), 120_000);
  await allDone;
  const seconds = (performance.now() - start) / 1000;
  const cpuAfter = snapshotCpu(processes);
  clearTimeout(timeout);
  await worker.close();
  await running;
  if (completed < jobs) throw new Error(`BullMQ completed ${completed} of ${jobs} jobs (${failed} failed)`);
  return { seconds, cpuMicrosPerTask: cpuMicrosPerTask(cpuBefore, cpuAfter, jobs) };
}

/**
 * BullMQ on the same Redis, as the ceiling the drain is compared to: `warmUp` jobs first
 * (as the drain's services get theirs), then `jobs` no-op jobs added in bulk and processed by
 * one worker at `concurrency` (default job options: completed jobs are kept, as BullMQ does
 * out of the box). Its keys live under `prefix`, deleted afterwards.
 */
export async function measureBullmq(
  redisUrl: string,
  prefix: string,
  jobs: number,
  concurrency: number,
  warmUp: number,
): Promise<BullmqFigures> {
  const connection = connectionOf(redisUrl);
  const name = `noop-c${concurrency}`;
  const cleaner = new Redis(redisUrl);
  const redisPid = pidFromRedisInfo(await cleaner.info('server'));
  await deleteKeys(cleaner, prefix);
  const queue = new Queue(name, { connection, prefix });
  try {
    await queue.waitUntilReady();
    if (warmUp > 0) {
      await addJobs(queue, warmUp);
      await processJobs(name, connection, prefix, warmUp, concurrency, redisPid);
    }
    const addSeconds = await addJobs(queue, jobs);
    const { seconds, cpuMicrosPerTask } = await processJobs(name, connection, prefix, jobs, concurrency, redisPid);
    const figures = {
      addPerSecond: jobs / addSeconds,
      processPerSecond: jobs / seconds,
      jobs,
      concurrency,
      cpuMicrosPerTask,
    };
    progress(
      `bullmq c=${concurrency}: ${jobs} jobs added at ${figures.addPerSecond.toFixed(0)}/s, ` +
        `processed at ${figures.processPerSecond.toFixed(0)}/s (after ${warmUp} warm-up jobs); CPU µs per job: ` +
        `worker ${cpuMicrosPerTask.worker?.toFixed(0)}, redis ${cpuMicrosPerTask.redis?.toFixed(0)}`,
    );
    return figures;
  } finally {
    await queue.close();
    await deleteKeys(cleaner, prefix);
    cleaner.disconnect();
  }
}
