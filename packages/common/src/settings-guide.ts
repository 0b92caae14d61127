import { type Config, loadConfig, settingNames } from './config.js';

/**
 * What each setting is for, in the order a user needs them: the few that everyone sets first,
 * the tuning knobs after, grouped. `.env.example` and the table of docs/configuration.md are
 * generated from this and from the schema's own defaults (`pnpm settings`), and a test checks
 * that they, the compose file and the schema agree: a setting added to config.ts without a line
 * here fails it.
 */

export interface SettingGroup {
  title: string;
  settings: Partial<Record<keyof Config, string>>;
}

export const SETTING_GROUPS: SettingGroup[] = [
  {
    title: 'The settings most users need',
    settings: {
      MYSQL_URL:
        'MySQL 8.4+ or MariaDB 10.6+; the database is created if missing. A Group Replication group lists its members: mysql://user:pass@h1:3306,h2:3306,h3:3306/db',
      REDIS_URL: 'Redis 6.2+',
      PORT: 'where the API and the dashboard listen',
      HOST: 'the address the API listens on',
      API_TOKEN:
        'when set (16 characters or more), every write route needs the header "Authorization: Bearer <API_TOKEN>"; reads stay open',
      KEY_PREFIX: 'prepended to every Redis key; on Redis Cluster it must hold a hash tag ({tasks}: when empty there)',
      LOG_LEVEL: 'fatal, error, warn, info, debug (a line per task transition), trace or silent',
      FAILURE_RATE: 'the probability that a simulated task fails (the original demo)',
      HANDLERS:
        'the ES module of your task types and their handlers (default export: { type: handler }); the API and the executors load it',
    },
  },
  {
    title: 'Retries',
    settings: {
      MAX_ATTEMPTS: "tries before a task is dead-lettered (the original's 3)",
      RETRY_BACKOFF_MS: 'delay before the first retry, doubling each time, with jitter; 0 retries at once',
      RETRY_BACKOFF_MAX_MS: 'the longest retry delay',
    },
  },
  {
    title: 'Executors',
    settings: {
      CONCURRENCY: 'tasks one executor runs at once',
      FETCH_BATCH_SIZE: 'messages an executor leases per fetch',
      LEASE_MS: 'a task whose executor stops renewing its lease (it died) runs again after this long',
      SHUTDOWN_TIMEOUT_MS: 'on SIGTERM, how long running tasks may finish before they are handed back',
      MAX_RESULT_BYTES: 'the largest result a handler may return (bytes of JSON); a larger one fails the try',
    },
  },
  {
    title: 'Scheduler and recovery',
    settings: {
      POLL_INTERVAL_MS: "the scheduler's fallback poll (inserts wake it at once) and the executors' longest idle wait",
      SCHEDULER_BATCH_SIZE: 'tasks claimed per transaction',
      MAX_QUEUE_DEPTH:
        'the scheduler claims no more while task_queue holds this many (MySQL keeps the backlog, where priorities and groups still apply)',
      QUEUE_AHEAD_MS:
        "task_queue is kept to about this much of the executors' work at their recent pace (at least 100, at most MAX_QUEUE_DEPTH), so that priorities and groups' turns reach the executors within about that long; 0: always up to MAX_QUEUE_DEPTH",
      GROUP_CONCURRENCY: "how many of one group's tasks may run at once, across every executor; 0: no limit",
      GROUP_LIMITS: 'limits of particular groups over GROUP_CONCURRENCY: tenant-a=5,tenant-b=50 (0: no limit)',
      SWEEP_INTERVAL_MS: 'how often lost tasks and expired leases are looked for',
      SWEEP_GRACE_MS: 'how long a task must have been processing before it can count as lost',
      SWEEP_PAGE_SIZE: 'processing tasks looked up in Redis per command while sweeping',
    },
  },
  {
    title: 'Dead letters and retention',
    settings: {
      DEAD_LETTER_RETENTION: 'entries kept in dead-letter-queue',
      DEAD_LETTER_BATCH_SIZE: 'dead letters the DLQ processor records per transaction',
      RETENTION_DAYS: 'delete completed and failed tasks that finished more than this many days ago; 0 keeps them',
    },
  },
  {
    title: 'API limits',
    settings: {
      API_WORKERS: 'API processes sharing PORT; one per core uses every core (a worker that dies is replaced)',
      BODY_LIMIT_BYTES: 'larger request bodies get 413',
      MAX_MESSAGE_LENGTH: 'the longest message, in characters',
      MAX_TASK_TIME_S: 'the largest accepted "time"',
      REQUEST_TIMEOUT_MS: 'the API answers 503 rather than wait longer for the database',
      INSERT_QUEUE_LIMIT:
        'inserts one API process holds while the database works; beyond it POST /tasks answers 503 at once',
      RATE_LIMIT_PER_MINUTE: 'requests per minute one client address may send to POST /tasks (429 beyond); 0: no limit',
      MAX_WAIT_S:
        'the longest ?wait= (seconds) of GET /tasks/:id and POST /tasks, which answer once the task is final or at that deadline; more is a 400',
      WAIT_POLL_MS:
        'how often an API process reads the statuses of the tasks its requests wait for: a wake-up lost with Redis delays an answer this long at most',
      MAX_WAITERS:
        'requests one API process holds waiting for their tasks; beyond it a request with ?wait= answers 503',
    },
  },
  {
    title: 'MySQL connections',
    settings: {
      DB_POOL_SIZE: 'MySQL connections per process',
      DB_CONNECT_TIMEOUT_MS: 'how long a connection may take to open',
      DB_LOCK_WAIT_TIMEOUT_S:
        'how long a statement waits for a row another session holds before it fails and is retried (seconds)',
    },
  },
  {
    title: 'Redis names and topology',
    settings: {
      QUEUE_KEY: 'the ready list; :inflight, :leases, :delayed and :present are added for its companions',
      DEAD_LETTER_KEY: "the dead letters; :inbox is the DLQ processor's work queue",
      REDIS_CLUSTER_NODES: 'Redis Cluster: some of its nodes, host:port,…; REDIS_URL then gives only the login and TLS',
      REDIS_SENTINELS:
        "Redis Sentinel: the sentinels, host:port,…; REDIS_URL then gives the primary's login, TLS and database",
      REDIS_SENTINEL_NAME: 'the master name the sentinels monitor',
      REDIS_SENTINEL_PASSWORD: "the sentinels' own password, when they require one",
    },
  },
  {
    title: 'Operations',
    settings: {
      HEALTH_PORT:
        'port of /healthz, /readyz and /metrics for the scheduler, executor and DLQ processor (the API serves them on PORT); 0: none',
      LOG_PRETTY: 'human-readable log lines: auto (at a terminal), true or false (JSON lines)',
    },
  },
];

export interface SettingLine {
  name: keyof Config;
  group: string;
  about: string;
  /** The default as written in the environment: empty when the setting is unset by default. */
  default: string;
}

/** The default of each setting, as a value of the environment would write it. */
function defaultText(value: unknown): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return '';
  if (value instanceof Map) return [...value].map(([k, v]) => `${k}=${v}`).join(',');
  return String(value);
}

/** Every setting, in the guide's order, with its default from the schema. */
export function settingLines(): SettingLine[] {
  const defaults = loadConfig({});
  return SETTING_GROUPS.flatMap((group) =>
    Object.entries(group.settings).map(([name, about]) => ({
      name: name as keyof Config,
      group: group.title,
      about: about as string,
      default: defaultText(defaults[name as keyof Config]),
    })),
  );
}

/** The settings the schema knows that the guide does not, and those the guide names that the schema does not. */
export function guideDrift(): { missing: string[]; unknown: string[] } {
  const guided = new Set(settingLines().map((l) => l.name as string));
  const known = new Set(settingNames());
  return {
    missing: [...known].filter((n) => !guided.has(n)),
    unknown: [...guided].filter((n) => !known.has(n)),
  };
}

/** `text` as comment lines of at most `width` characters. */
function commentLines(text: string, width = 96): string[] {
  const lines: string[] = [];
  let line = '#';
  for (const word of text.split(' ')) {
    if (line.length + 1 + word.length > width && line !== '#') {
      lines.push(line);
      line = '#';
    }
    line += ` ${word}`;
  }
  lines.push(line);
  return lines;
}

/** `.env.example`: every setting with its default, the ones most users need first. */
export function envExample(): string {
  const lines = [
    '# Every setting, with its default; generated from the settings schema (pnpm settings). Copy',
    '# to .env and change what you need; variables already set in the environment win over .env.',
    '# A bad value stops the service at start, naming it. Durations (..._MS) are milliseconds, at',
    '# most 2147483647. In the URLs, write a % (or @ : / in a password) escaped: %25 (%40 %3A %2F).',
  ];
  let group = '';
  for (const line of settingLines()) {
    if (line.group !== group) {
      group = line.group;
      lines.push('', `# --- ${group} ---`);
    }
    lines.push(...commentLines(line.about), `${line.name}=${line.default}`);
  }
  lines.push(
    '',
    "# --- docker compose only: the mysql service's credentials (the services' MYSQL_URL is built from them) ---",
    'MYSQL_ROOT_PASSWORD=change-me-root',
    'MYSQL_DATABASE=tasks',
    'MYSQL_USER=tasks',
    'MYSQL_PASSWORD=change-me',
  );
  return `${lines.join('\n')}\n`;
}

/** The table of docs/configuration.md, a section per group. */
export function settingsTable(): string {
  const out: string[] = [];
  let group = '';
  const cell = (text: string) => text.replaceAll('|', '\\|');
  for (const line of settingLines()) {
    if (line.group !== group) {
      group = line.group;
      if (out.length > 0) out.push('');
      out.push(`### ${group}`, '', '| variable | default | meaning |', '|---|---|---|');
    }
    out.push(`| \`${line.name}\` | ${line.default === '' ? '(unset)' : `\`${line.default}\``} | ${cell(line.about)} |`);
  }
  return `${out.join('\n')}\n`;
}
