import { configSchema } from '@tasks/common/internal';

/** What the bench runs against and how much work it offers; read from BENCH_* variables. */
export interface BenchSettings {
  /**
   * The MySQL/MariaDB servers, each with the database the bench owns (dropped and created anew
   * for each run). Every database figure is measured on each of them.
   */
  mysqlUrls: string[];
  /**
   * Whether `mysqlUrls` is the default (MariaDB on 3306, MySQL on 3307): a default server that
   * does not answer is left out, loudly; a server named explicitly must answer.
   */
  defaultServers: boolean;
  redisUrl: string;
  /**
   * The PostgreSQL database graphile-worker's ceiling runs in (created and dropped by each
   * measurement; its name must start with `bench`). When the server does not answer, the run
   * goes on without that ceiling and says so loudly.
   */
  postgresUrl: string;
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
  /** Scheduler processes of the many-schedulers drain (measured against the drain with one). */
  schedulers: number;
  /** API_WORKERS values the insert rate of the API service is measured with. */
  apiWorkers: number[];
  /** Finished rows the history section fills `tasks` with. */
  historyRows: number;
  /** Requests per read route in the history section, and the seconds each route may take at most. */
  historyReads: number;
  historyReadSeconds: number;
  /** Sections to run (all when empty); see SECTIONS. */
  only: Set<string>;
  /** Sections to leave out. */
  skip: Set<string>;
  /** Service settings taken from the environment (e.g. CONCURRENCY=64 pnpm bench), passed to every service. */
  serviceOverrides: Record<string, string>;
}

export const SECTIONS = [
  'redis',
  'bullmq',
  'graphile',
  'drain',
  'schedulers',
  'failures',
  'scaling',
  'scheduling',
  'types',
  'insert',
  'workers',
  'latency',
  'history',
] as const;

export const DEFAULT_MYSQL_URLS = ['mysql://root@127.0.0.1:3306/bench', 'mysql://root@127.0.0.1:3307/bench'];

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

function loopbackUrl(name: string, value: string): string {
  let host: string;
  try {
    host = new URL(value).hostname;
  } catch {
    throw new Error(`${name} must be a URL; got ${value}`);
  }
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

function wholeList(name: string, value: string): number[] {
  return value
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => Math.round(positive(name, s.trim(), 1)));
}

function sections(name: string, value: string | undefined): Set<string> {
  const list = (value ?? '').split(',').filter((s) => s.trim() !== '');
  for (const s of list) {
    if (!(SECTIONS as readonly string[]).includes(s.trim())) {
      throw new Error(`${name}: unknown section ${s}; the sections are ${SECTIONS.join(', ')}`);
    }
  }
  return new Set(list.map((s) => s.trim()));
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
  'HEALTH_PORT',
  'FAILURE_RATE',
  'API_WORKERS',
]);

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const serviceOverrides: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '' && !OWNED.has(key)) serviceOverrides[key] = value;
  }
  const named = env.BENCH_MYSQL_URLS ?? env.BENCH_MYSQL_URL;
  const mysqlUrls = (named ?? DEFAULT_MYSQL_URLS.join(','))
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => loopbackUrl(env.BENCH_MYSQL_URLS ? 'BENCH_MYSQL_URLS' : 'BENCH_MYSQL_URL', s.trim()));
  if (mysqlUrls.length === 0) throw new Error('BENCH_MYSQL_URLS names no server');
  return {
    mysqlUrls,
    defaultServers: named === undefined || named === '',
    redisUrl: loopbackUrl('BENCH_REDIS_URL', env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'),
    postgresUrl: loopbackUrl(
      'BENCH_POSTGRES_URL',
      env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/bench_graphile',
    ),
    keyPrefix: env.BENCH_KEY_PREFIX ?? 'bench:',
    drainRows: Math.round(positive('BENCH_DRAIN_ROWS', env.BENCH_DRAIN_ROWS, 20_000)),
    warmUpRows: Math.round(positive('BENCH_WARMUP_ROWS', env.BENCH_WARMUP_ROWS, 5_000)),
    insertSeconds: positive('BENCH_INSERT_SECONDS', env.BENCH_INSERT_SECONDS, 8),
    insertConnections: Math.round(positive('BENCH_INSERT_CONNECTIONS', env.BENCH_INSERT_CONNECTIONS, 64)),
    latencyRate: positive('BENCH_LATENCY_RATE', env.BENCH_LATENCY_RATE, 1_000),
    latencySeconds: positive('BENCH_LATENCY_SECONDS', env.BENCH_LATENCY_SECONDS, 12),
    scaling: wholeList('BENCH_SCALING', env.BENCH_SCALING ?? '1,2,4'),
    schedulers: Math.round(positive('BENCH_SCHEDULERS', env.BENCH_SCHEDULERS, 3)),
    apiWorkers: wholeList('BENCH_API_WORKERS', env.BENCH_API_WORKERS ?? '1,2'),
    historyRows: Math.round(positive('BENCH_HISTORY_ROWS', env.BENCH_HISTORY_ROWS, 10_000_000)),
    historyReads: Math.round(positive('BENCH_HISTORY_READS', env.BENCH_HISTORY_READS, 200)),
    historyReadSeconds: positive('BENCH_HISTORY_READ_SECONDS', env.BENCH_HISTORY_READ_SECONDS, 20),
    only: sections('BENCH_ONLY', env.BENCH_ONLY),
    skip: sections('BENCH_SKIP', env.BENCH_SKIP),
    serviceOverrides,
  };
}

export function runs(settings: BenchSettings, section: (typeof SECTIONS)[number]): boolean {
  return (settings.only.size === 0 || settings.only.has(section)) && !settings.skip.has(section);
}
