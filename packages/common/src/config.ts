import dotenv from 'dotenv';
import { z } from 'zod';
import { MYSQL_PROTOCOLS, MysqlUrlError, parseMysqlUrl } from './mysql/mysql-url.js';
import { shownValue } from './redact.js';
import { queueKeys, sharedHashTag } from './redis/keys.js';
import { GROUP_NAME } from './tasks/task-schema.js';
import { MESSAGE_LIMITS } from './wire/message-codec.js';

/**
 * Every knob of every service, read from the environment (`.env` is loaded by the
 * entrypoints through dotenv) and validated here. Tests build a config directly with
 * `loadConfig({...})`.
 */

const int = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

/**
 * The longest delay a Node.js timer keeps: a longer one fires after 1 ms (with a warning), so a
 * huge timeout or interval would become a busy loop.
 */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/** A duration in milliseconds that a timer can wait. */
const ms = (min: number) => int(min, MAX_DURATION_MS);

/** The parts of a URL that the clients percent-decode (mysql2 and ioredis call decodeURIComponent). */
const DECODED_PARTS = ['username', 'password', 'hostname', 'pathname'] as const;
const PART_NAMES: Record<(typeof DECODED_PARTS)[number], string> = {
  username: 'user name',
  password: 'password',
  hostname: 'host',
  pathname: 'path',
};

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port,host:port,…` (an IPv6 host in brackets: `[::1]:7000`). */
const hostPorts = z.string().transform((value, ctx): HostPort[] => {
  const list: HostPort[] = [];
  for (const entry of value.split(',').map((e) => e.trim())) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(entry);
    const port = Number(match?.[2]);
    if (!match?.[1] || port < 1 || port > 65535) {
      ctx.addIssue({
        code: 'custom',
        message: `"${entry}" is not host:port; give a comma-separated list such as 127.0.0.1:7000,127.0.0.1:7001`,
      });
      return z.NEVER;
    }
    list.push({ host: match[1].replace(/^\[(.*)\]$/, '$1'), port });
  }
  return list;
});

/** What is wrong with `value` as a URL with one of `protocols` whose parts the clients can decode; `check` may refuse more. */
function urlProblems(value: string, protocols: string[], check: (parsed: URL) => string | null): string[] {
  const problems: string[] = [];
  let parsed: URL | null = null;
  try {
    parsed = new URL(value);
  } catch {}
  if (!parsed || !protocols.includes(parsed.protocol)) {
    return [`must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`];
  }
  for (const part of DECODED_PARTS) {
    try {
      decodeURIComponent(parsed[part]);
    } catch {
      problems.push(
        `its ${PART_NAMES[part]} has a "%" that does not start an escape such as %40 (write a % itself as %25)`,
      );
    }
  }
  const problem = check(parsed);
  if (problem) problems.push(problem);
  return problems;
}

/**
 * A URL with one of `protocols` whose parts the clients can decode; `check` may refuse more
 * (it returns what is wrong, or null).
 */
const url = (protocols: string[], check: (parsed: URL) => string | null = () => null) =>
  z.string().superRefine((value, ctx) => {
    for (const message of urlProblems(value, protocols, check)) ctx.addIssue({ code: 'custom', message });
  });

/**
 * MYSQL_URL: one server, or the members of a Group Replication group as a host list
 * (`mysql://user:pass@h1:3306,h2:3306,h3:3306/tasks`, see mysql/mysql-url.ts). Each member's
 * URL is checked as a single-host one would be; a problem they share is told once.
 */
const mysqlUrl = z.string().superRefine((value, ctx) => {
  let problems: string[];
  try {
    const { hosts } = parseMysqlUrl(value);
    problems = hosts.flatMap((host) => urlProblems(host.url, MYSQL_PROTOCOLS, () => null));
  } catch (err) {
    if (!(err instanceof MysqlUrlError)) throw err;
    problems = err.problems;
  }
  for (const message of new Set(problems)) ctx.addIssue({ code: 'custom', message });
});

/** Redis selects its database by number: `redis://host:6379/2`. */
const redisUrl = url(['redis:', 'rediss:'], (parsed) =>
  /^(\/\d*)?$/.test(parsed.pathname) ? null : 'its path must be empty or a database number, as in redis://host:6379/0',
);

/** `group=limit,group=limit`. */
const groupLimits = z.string().transform((value, ctx): Map<string, number> => {
  const limits = new Map<string, number>();
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const match = /^([^=\s]+)=(\d{1,7})$/.exec(entry);
    if (!match?.[1] || !GROUP_NAME.test(match[1])) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is not group=limit, as in tenant-a=5,tenant-b=50` });
      return z.NEVER;
    }
    limits.set(match[1], Number(match[2]));
  }
  return limits;
});

const settings = z.object({
  MYSQL_URL: mysqlUrl.default('mysql://root@127.0.0.1:3306/tasks'),
  REDIS_URL: redisUrl.default('redis://127.0.0.1:6379'),
  /** Prepended to every Redis key, e.g. `{tasks}:` to keep all keys in one Redis Cluster slot. */
  KEY_PREFIX: z.string().default(''),
  QUEUE_KEY: z.string().min(1).default('task_queue'),
  DEAD_LETTER_KEY: z.string().min(1).default('dead-letter-queue'),
  /** Redis Cluster: seed nodes; REDIS_URL then gives only the credentials and TLS (`rediss://`). */
  REDIS_CLUSTER_NODES: hostPorts.optional(),
  /** Redis Sentinel: the sentinels; REDIS_URL then gives the data nodes' credentials, TLS and database. */
  REDIS_SENTINELS: hostPorts.optional(),
  /** The master name the sentinels monitor. */
  REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  /** The sentinels' own password, when they require one. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),

  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Human-readable log lines (pino-pretty): `auto` when stdout is a terminal, JSON otherwise. */
  LOG_PRETTY: z
    .enum(['auto', 'true', 'false', '1', '0', 'yes', 'no', ''], { error: 'must be auto, true or false' })
    .transform((v): boolean | 'auto' => (v === 'auto' || v === '' ? 'auto' : v === 'true' || v === '1' || v === 'yes'))
    .default('auto'),

  HOST: z.string().default('0.0.0.0'),
  PORT: int(0, 65535).default(8000),
  /** API processes sharing PORT (node:cluster): one per core uses every core. */
  API_WORKERS: int(1, 256).default(1),
  BODY_LIMIT_BYTES: int(64, 10 * 1024 * 1024).default(64 * 1024),
  MAX_MESSAGE_LENGTH: int(1, 1_000_000).default(10_000),
  MAX_TASK_TIME_S: int(0, MESSAGE_LIMITS.maxTimeS).default(3_600),
  DB_POOL_SIZE: int(1, 1000).default(10),
  DB_CONNECT_TIMEOUT_MS: ms(100).default(5_000),
  /**
   * How long a statement waits for a row lock held by another session before it fails and is
   * retried (seconds): a process that stopped answering while holding one stalls others this long at most.
   */
  DB_LOCK_WAIT_TIMEOUT_S: int(1, 3_600).default(5),
  /** The API answers 503 rather than wait longer than this for the database. */
  REQUEST_TIMEOUT_MS: ms(100).default(10_000),
  /** Most inserts one API process holds waiting for the database; beyond it POST /tasks answers 503 at once. */
  INSERT_QUEUE_LIMIT: int(1, 1_000_000).default(5_000),
  /** When set, every write route of the API needs `Authorization: Bearer <API_TOKEN>`. */
  API_TOKEN: z.string().min(16, { error: 'must be at least 16 characters' }).optional(),
  /** The longest `?wait=` (seconds) of GET /tasks/:id and POST /tasks; a longer one is a 400. */
  MAX_WAIT_S: int(0, 3_600).default(60),
  /** How often an API process reads the statuses of the tasks its requests wait for (a missed wake-up costs this much at most). */
  WAIT_POLL_MS: ms(10).default(1_000),
  /** Requests one API process holds waiting for their tasks; beyond it a request with ?wait= answers 503. */
  MAX_WAITERS: int(1, 1_000_000).default(10_000),
  /** Requests per minute one client address may make to `POST /tasks`; 0 sets no limit. */
  RATE_LIMIT_PER_MINUTE: int(0).default(0),
  /** Port of the /healthz, /readyz and /metrics server of the scheduler, executor and DLQ processor; 0: none. */
  HEALTH_PORT: int(0, 65535).default(0),

  /** The module of the task types and their handlers (an ES module; see handlers.ts); unset: the original's work only. */
  HANDLERS: z.string().min(1).optional(),
  /** The largest result a handler may return, in bytes of JSON; a larger one fails the try. */
  MAX_RESULT_BYTES: int(2, 16 * 1024 * 1024).default(64 * 1024),
  FAILURE_RATE: z.coerce
    .number({ error: 'must be a number' })
    .min(0, { error: 'must be between 0 and 1' })
    .max(1, { error: 'must be between 0 and 1' })
    .default(0.2),
  MAX_ATTEMPTS: int(1, MESSAGE_LIMITS.maxTries).default(3),
  RETRY_BACKOFF_MS: ms(0).default(1_000),
  RETRY_BACKOFF_MAX_MS: ms(0).default(60_000),
  CONCURRENCY: int(1, 10_000).default(1_000),
  FETCH_BATCH_SIZE: int(1, 10_000).default(1_000),
  LEASE_MS: ms(100).default(30_000),
  SHUTDOWN_TIMEOUT_MS: ms(0).default(10_000),

  POLL_INTERVAL_MS: ms(10).default(1_000),
  SCHEDULER_BATCH_SIZE: int(1, 100_000).default(1_000),
  MAX_QUEUE_DEPTH: int(1).default(5_000),
  QUEUE_AHEAD_MS: ms(0).default(1_000),
  /** How many of one group's tasks may run at once, across every executor; 0: no limit. */
  GROUP_CONCURRENCY: int(0, 1_000_000).default(0),
  /** Limits of particular groups over GROUP_CONCURRENCY: `tenant-a=5,tenant-b=50` (0: no limit). */
  GROUP_LIMITS: groupLimits.default(new Map()),
  SWEEP_INTERVAL_MS: ms(100).default(10_000),
  SWEEP_GRACE_MS: ms(0).default(10_000),
  /** `processing` tasks the sweeper looks up in Redis per command. */
  SWEEP_PAGE_SIZE: int(1, 100_000).default(1_000),

  DEAD_LETTER_RETENTION: int(1).default(10_000),
  /** Dead letters the DLQ processor records per transaction. */
  DEAD_LETTER_BATCH_SIZE: int(1, 10_000).default(1_000),
  /** Finished tasks older than this many days are deleted (by one scheduler at a time); 0 keeps them forever. */
  RETENTION_DAYS: int(0, 36_500).default(0),
});

/** The name of every setting, as the environment spells it. */
export function settingNames(): string[] {
  return Object.keys(settings.shape);
}

/** Every Redis key and channel name the settings give, with what it is for. */
function redisNames(config: z.infer<typeof settings>): [string, string][] {
  const keys = queueKeys({ prefix: config.KEY_PREFIX, queue: config.QUEUE_KEY, deadLetter: config.DEAD_LETTER_KEY });
  const names: [string, string][] = [];
  const walk = (value: unknown, path: string) => {
    if (typeof value === 'string') names.push([value, path]);
    else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) walk(inner, path ? `${path}.${key}` : key);
    }
  };
  walk(keys, '');
  return names;
}

/** The settings, checked one by one and then together (two settings must not name one Redis key). */
export const configSchema = settings.superRefine((config, ctx) => {
  const seen = new Map<string, string>();
  for (const [name, use] of redisNames(config)) {
    const other = seen.get(name);
    if (other === undefined) {
      seen.set(name, use);
      continue;
    }
    ctx.addIssue({
      code: 'custom',
      path: ['DEAD_LETTER_KEY'],
      message:
        `gives the Redis name "${name}" to both ${other} and ${use} (with QUEUE_KEY=${JSON.stringify(config.QUEUE_KEY)}); ` +
        'choose a dead-letter key that is not the queue key, nor one of them with a suffix of the other',
    });
    return; // the first overlap says enough
  }
});

export type Config = z.infer<typeof configSchema>;

/** The hash tag given to the keys in Redis Cluster mode when KEY_PREFIX is empty. */
export const CLUSTER_KEY_PREFIX = '{tasks}:';

/** In Redis Cluster mode, an empty KEY_PREFIX becomes CLUSTER_KEY_PREFIX, so every key shares one slot. */
function withClusterKeyPrefix(config: Config): Config {
  return config.REDIS_CLUSTER_NODES && config.KEY_PREFIX === ''
    ? { ...config, KEY_PREFIX: CLUSTER_KEY_PREFIX }
    : config;
}

/** The rules that relate the Redis variables to each other. */
function checkRedisTopology(config: Config, ctx: z.RefinementCtx): void {
  const problem = (variable: keyof Config, message: string) =>
    ctx.addIssue({ code: 'custom', path: [variable], message });
  if (config.REDIS_CLUSTER_NODES && config.REDIS_SENTINELS) {
    problem('REDIS_SENTINELS', 'cannot be combined with REDIS_CLUSTER_NODES: set one of them');
  }
  if (config.REDIS_SENTINELS && !config.REDIS_SENTINEL_NAME) {
    problem('REDIS_SENTINEL_NAME', 'must be set with REDIS_SENTINELS: the master name the sentinels monitor');
  }
  if (!config.REDIS_SENTINELS) {
    for (const variable of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const) {
      if (config[variable] !== undefined) problem(variable, 'has no effect without REDIS_SENTINELS');
    }
  }
  if (config.REDIS_CLUSTER_NODES) {
    const database = new URL(config.REDIS_URL).pathname.replace(/^\//, '');
    if (database !== '' && database !== '0') {
      problem('REDIS_URL', `selects database ${database}, but Redis Cluster has only database 0`);
    }
    const keys = queueKeys({ prefix: config.KEY_PREFIX, queue: config.QUEUE_KEY, deadLetter: config.DEAD_LETTER_KEY });
    if (sharedHashTag(keys) === null) {
      problem(
        'KEY_PREFIX',
        `with REDIS_CLUSTER_NODES every key must carry the same {hash tag}, so that a queue's keys share one slot ` +
          `(now "${keys.tasks.ready}" and "${keys.deadLetters}"): use a KEY_PREFIX such as ${CLUSTER_KEY_PREFIX}`,
      );
    }
  }
}

/** The schema with the rules that span several variables. */
const checkedConfigSchema = configSchema.overwrite(withClusterKeyPrefix).superRefine(checkRedisTopology);

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Validates `env` (process.env by default); throws a ConfigError naming each bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(settings.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const result = checkedConfigSchema.safeParse(known);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = issue.path.join('.');
        return `${name}=${shownValue(name, env[name])}: ${issue.message}`;
      }),
    );
  }
  return result.data;
}

/**
 * For entrypoints: loads `.env` (without overriding variables already set), validates, and on
 * a bad value prints which variable is wrong and exits with status 1 before anything starts.
 */
export function configFromEnvironment(): Config {
  dotenv.config({ quiet: true });
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
