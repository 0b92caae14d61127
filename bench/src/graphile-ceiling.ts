import { EventEmitter } from 'node:events';
import type { WorkerEvents } from 'graphile-worker';
import pg from 'pg';
import { cpuMicrosPerTask, cpuSeconds, descendants, pidListeningOn, snapshotCpu } from './processes.js';
import { progress } from './progress.js';

/**
 * graphile-worker on the local PostgreSQL, as the second ceiling the drain is compared to: the
 * fastest job queue whose jobs are durable in SQL. It runs with the settings of its own
 * performance page (24 concurrent jobs, a pool of 25 connections, a local queue of 500 jobs,
 * completions and failures batched), in a database of its own that each measurement creates
 * and drops: `warmUp` jobs first, then `jobs` no-op jobs added with one `addJobs` call and
 * drained by one runner in the bench process.
 */

type Graphile = typeof import('graphile-worker');

/** The settings graphile-worker publishes for its throughput figures. */
export const GRAPHILE_SETTINGS = {
  concurrentJobs: 24,
  maxPoolSize: 25,
  localQueue: { size: 500 },
  completeJobBatchDelay: 0,
  failJobBatchDelay: 0,
} as const;

/** The name of the no-op task. */
const TASK = 'noop';

export interface GraphileFigures {
  /** `PostgreSQL 15.20`. */
  server: string;
  /** Jobs added per second by the one addJobs call. */
  addPerSecond: number;
  /** No-op jobs run per second, from the runner's start to the last one deleted. */
  processPerSecond: number;
  jobs: number;
  concurrency: number;
  localQueueSize: number;
  /**
   * CPU time per job while the runner drained them: `worker` is the bench process, in which the
   * runner works (and does nothing else meanwhile); `postgres backends` the backends connected
   * to the measured database (pg_stat_activity); `postgres` every PostgreSQL process (the
   * postmaster and its children: those backends, the WAL writer, the checkpointer, autovacuum),
   * the whole server as a MySQL server's one process is.
   */
  cpuMicrosPerTask: Record<string, number>;
}

/** A PostgreSQL server that answers: its label. */
export interface PostgresServer {
  label: string;
  version: string;
  url: string;
}

function databaseOf(url: string): string {
  const database = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!/^bench\w*$/.test(database)) throw new Error(`the bench only drops databases named bench*; got ${database}`);
  return database;
}

/** The same server and credentials, connected to its `postgres` database (to create and drop the bench's). */
function adminUrl(url: string): string {
  const parsed = new URL(url);
  parsed.pathname = '/postgres';
  return parsed.toString();
}

async function withAdmin<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl(url), connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Whether PostgreSQL answers at `url`'s server: its label, or why not. */
export async function probePostgres(url: string): Promise<PostgresServer | { url: string; error: string }> {
  try {
    databaseOf(url);
    const version = await withAdmin(url, async (client) => {
      const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
      return rows[0]?.server_version ?? 'unknown';
    });
    const number = /^\d+(\.\d+)*/.exec(version)?.[0] ?? version;
    return { label: `PostgreSQL ${number}`, version, url };
  } catch (err) {
    return { url, error: err instanceof Error ? err.message : String(err) };
  }
}

async function recreateDatabase(url: string, drop: boolean, create: boolean): Promise<void> {
  const name = pg.escapeIdentifier(databaseOf(url));
  await withAdmin(url, async (client) => {
    if (drop) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    if (create) await client.query(`CREATE DATABASE ${name}`);
  });
}

/** The postmaster (the process listening on the server's port) and all its children. */
function postgresPids(url: string): number[] {
  const postmaster = pidListeningOn(Number(new URL(url).port || 5432));
  return postmaster === null ? [] : [postmaster, ...descendants(postmaster)];
}

/** The backends connected to the pool's database. */
async function backendPids(pool: pg.Pool): Promise<number[]> {
  const { rows } = await pool.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE datname = current_database()',
  );
  return rows.map((r) => Number(r.pid));
}

/** Adds `jobs` no-op jobs with one addJobs call (one statement); returns the seconds it took. */
async function addJobs(graphile: Graphile, pool: pg.Pool, jobs: number): Promise<number> {
  const utils = await graphile.makeWorkerUtils({ pgPool: pool, logger: quietLogger(graphile) });
  try {
    const start = performance.now();
    await utils.addJobs(Array.from({ length: jobs }, (_, n) => ({ identifier: TASK, payload: { n } })));
    return (performance.now() - start) / 1000;
  } finally {
    await utils.release();
  }
}

function quietLogger(graphile: Graphile) {
  return new graphile.Logger(() => () => undefined);
}

/**
 * Starts a runner and waits until it has run `jobs` jobs and their completions are committed
 * (the jobs table is empty); returns the seconds from the runner's start, and the CPU time per
 * job of the bench process and of PostgreSQL meanwhile.
 */
async function drainJobs(
  graphile: Graphile,
  url: string,
  pool: pg.Pool,
  jobs: number,
): Promise<{ seconds: number; cpuMicrosPerTask: Record<string, number> }> {
  let completed = 0;
  let errors = 0;
  let finish: () => void = () => undefined;
  const allRun = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const events = new EventEmitter() as WorkerEvents;
  events.on('job:complete', ({ error }) => {
    if (error) errors++;
    else completed++;
    if (completed + errors >= jobs) finish();
  });
  // The servers' processes first and the bench process last before, the other way round
  // after: reading /proc for the servers costs the bench process, not the runner.
  const serverPids = async () => ({ 'postgres backends': await backendPids(pool), postgres: postgresPids(url) });
  const serversBefore = snapshotCpu(await serverPids());
  const workerBefore = cpuSeconds(process.pid) ?? Number.NaN;
  const start = performance.now();
  const runner = await graphile.run({
    pgPool: pool,
    taskList: { [TASK]: async () => undefined },
    crontab: '',
    events,
    logger: quietLogger(graphile),
    noHandleSignals: true,
    preset: { worker: { ...GRAPHILE_SETTINGS } },
  });
  let failure: unknown = null;
  runner.promise.catch((err: unknown) => {
    failure = err;
    finish();
  });
  const timeout = setTimeout(() => finish(), 120_000);
  try {
    await allRun;
    // The last completions are batched: the drain ends when they are committed.
    for (;;) {
      if (failure !== null) throw failure;
      const { rows } = await pool.query<{ left: string }>('SELECT count(*) AS left FROM graphile_worker._private_jobs');
      if (Number(rows[0]?.left) === 0) break;
      if (performance.now() - start > 120_000) throw new Error(`graphile-worker left ${rows[0]?.left} jobs`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const seconds = (performance.now() - start) / 1000;
    const workerAfter = cpuSeconds(process.pid) ?? Number.NaN;
    const serversAfter = snapshotCpu(await serverPids());
    if (completed < jobs) throw new Error(`graphile-worker completed ${completed} of ${jobs} jobs (${errors} failed)`);
    return {
      seconds,
      cpuMicrosPerTask: {
        worker: ((workerAfter - workerBefore) * 1e6) / jobs,
        ...cpuMicrosPerTask(serversBefore, serversAfter, jobs),
      },
    };
  } finally {
    clearTimeout(timeout);
    await runner.stop();
  }
}

/** One measurement: a database of its own, its schema, the warm-up, then the measured jobs; the database dropped after. */
export async function measureGraphile(server: PostgresServer, jobs: number, warmUp: number): Promise<GraphileFigures> {
  // Its log line per successful job is left out, as its own performance runs do.
  process.env.NO_LOG_SUCCESS = '1';
  const graphile: Graphile = await import('graphile-worker');
  await recreateDatabase(server.url, true, true);
  const pool = new pg.Pool({ connectionString: server.url, max: GRAPHILE_SETTINGS.maxPoolSize });
  pool.on('error', (err) => progress(`graphile-worker pool error: ${err.message}`));
  pool.on('connect', (client) => {
    client.on('error', (err) => progress(`graphile-worker connection error: ${err.message}`));
  });
  try {
    await graphile.runMigrations({ pgPool: pool, logger: quietLogger(graphile) });
    if (warmUp > 0) {
      await addJobs(graphile, pool, warmUp);
      await drainJobs(graphile, server.url, pool, warmUp);
    }
    const addSeconds = await addJobs(graphile, pool, jobs);
    const { seconds, cpuMicrosPerTask } = await drainJobs(graphile, server.url, pool, jobs);
    const figures: GraphileFigures = {
      server: server.label,
      addPerSecond: jobs / addSeconds,
      processPerSecond: jobs / seconds,
      jobs,
      concurrency: GRAPHILE_SETTINGS.concurrentJobs,
      localQueueSize: GRAPHILE_SETTINGS.localQueue.size,
      cpuMicrosPerTask,
    };
    const cpu = Object.entries(cpuMicrosPerTask)
      .map(([name, us]) => `${name} ${us.toFixed(0)}`)
      .join(', ');
    progress(
      `graphile-worker c=${figures.concurrency}: ${jobs} jobs added at ${figures.addPerSecond.toFixed(0)}/s, ` +
        `processed at ${figures.processPerSecond.toFixed(0)}/s (after ${warmUp} warm-up jobs); CPU µs per job: ${cpu}`,
    );
    return figures;
  } finally {
    await pool.end();
    await recreateDatabase(server.url, true, false);
  }
}
