import { configSchema } from '@tasks/common';

/** What the bench runs against and how much work it offers; read from BENCH_* variables. */
export interface BenchSettings {
  /** The MySQL server, with the database the bench owns (dropped and created anew for each run). */
  mysqlUrl: string;
  redisUrl: string;
  /** Prepended to every Redis key the bench or its services touch; deleted before and after. */
  keyPrefix: string;
  /** Rows seeded for each drain. */
  drainRows: number;
  /**
   * Tasks each drain's services run (and jobs BullMQ's worker runs) before the measured ones:
   * long-running processes are measured with their code compiled and their pools filled.
   */
  warmUpRows: number;
  /** Seconds each insert figure is measured for (after a warm-up). */
  insertSeconds: number;
  insertConnections: number;
  /** Tasks offered per second, and for how long, in the latency run. */
  latencyRate: number;
  latencySeconds: number;
  /** Executor counts of the scaling runs. */
  scaling: number[];
  /** Sections to run (all when empty): redis, bullmq, drain, failures, scaling, insert, latency. */
  only: Set<string>;
  /** Service settings taken from the environment (e.g. CONCURRENCY=64 pnpm bench), passed to every service. */
  serviceOverrides: Record<string, string>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function loopbackUrl(name: string, value: string): string {
  const host = new URL(value).hostname;
  if (!LOOPBACK.has(host) && !host.startsWith('127.')) {
    throw new Error(`${name} must point at this machine (127.0.0.1); got ${host}`);
  }
  return value;
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number; got ${value}`);
  return n;
}

/** Variables the bench sets itself for each service; the environment does not override them. */
const OWNED = new Set([
  'MYSQL_URL',
  'REDIS_URL',
  'KEY_PREFIX',
  'LOG_LEVEL',
  'LOG_PRETTY',
  'HOST',
  'PORT',
  'FAILURE_RATE',
]);

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const serviceOverrides: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '' && !OWNED.has(key)) serviceOverrides[key] = value;
  }
  return {
    mysqlUrl: loopbackUrl('BENCH_MYSQL_URL', env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/bench'),
    redisUrl: loopbackUrl('BENCH_REDIS_URL', env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'),
    keyPrefix: env.BENCH_KEY_PREFIX ?? 'bench:',
    drainRows: Math.round(positive('BENCH_DRAIN_ROWS', env.BENCH_DRAIN_ROWS, 20_000)),
    warmUpRows: Math.round(positive('BENCH_WARMUP_ROWS', env.BENCH_WARMUP_ROWS, 5_000)),
    insertSeconds: positive('BENCH_INSERT_SECONDS', env.BENCH_INSERT_SECONDS, 8),
    insertConnections: Math.round(positive('BENCH_INSERT_CONNECTIONS', env.BENCH_INSERT_CONNECTIONS, 64)),
    latencyRate: positive('BENCH_LATENCY_RATE', env.BENCH_LATENCY_RATE, 200),
    latencySeconds: positive('BENCH_LATENCY_SECONDS', env.BENCH_LATENCY_SECONDS, 12),
    scaling: (env.BENCH_SCALING ?? '1,2,4').split(',').map((s) => Math.round(positive('BENCH_SCALING', s, 1))),
    only: new Set((env.BENCH_ONLY ?? '').split(',').filter((s) => s !== '')),
    serviceOverrides,
  };
}

export function runs(settings: BenchSettings, section: string): boolean {
  return settings.only.size === 0 || settings.only.has(section);
}
