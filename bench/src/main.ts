// `pnpm bench`: runs the real services against the local MySQL/MariaDB servers and Redis and
// measures each figure beside its ceiling, taken in the same run, on every server. Progress
// goes to stderr; the tables (Markdown) to stdout; everything to bench/results/latest.json.
// Exits 1 when a target is missed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { runApiWorkers, type WorkersFigures } from './api-workers.js';
import { drainSection } from './drain-figures.js';
import { type PostgresServer, probePostgres } from './graphile-ceiling.js';
import { BASELINE_ROWS, type HistoryFigures, runHistory } from './history.js';
import { historyRows } from './history-rows.js';
import { type InsertFigures, runInsert } from './insert.js';
import { type LatencyFigures, runLatency } from './latency.js';
import { drainRow, type PeerRow, peerTable } from './peer-table.js';
import { progress } from './progress.js';
import { measureRedis } from './redis-ceiling.js';
import { type HistoryRow, historyTable, markdownTable, type Row, row } from './report.js';
import { announceMissing, closeServers, missingServerBanner, resolveServers } from './servers.js';
import { type BenchSettings, readSettings, runs } from './settings.js';

const run = promisify(execFile);
const RESULTS = new URL('../results/', import.meta.url);

/** Targets of the insert and latency figures, on every server. */
export const INSERT_TARGET = 0.9;
export const LATENCY_BOUNDS_MS = { p50: 20, p99: 50 };

function packageVersion(name: string): string {
  try {
    const file = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The commit measured, with `+changes` when the work tree differs from it. */
async function gitCommit(): Promise<string> {
  try {
    const cwd = new URL('../..', import.meta.url);
    const { stdout: head } = await run('git', ['rev-parse', '--short', 'HEAD'], { cwd });
    const { stdout: status } = await run('git', ['status', '--porcelain', '--untracked-files=no'], { cwd });
    return `${head.trim()}${status.trim() === '' ? '' : '+changes'}`;
  } catch {
    return 'unknown';
  }
}

/** Puts each figure's rows (one per server) next to each other, figures in the order first measured. */
function groupedByFigure(rows: Row[]): Row[] {
  const order = new Map<string, number>();
  for (const r of rows) if (!order.has(r.figure)) order.set(r.figure, order.size);
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (order.get(a.r.figure) ?? 0) - (order.get(b.r.figure) ?? 0) || a.i - b.i)
    .map(({ r }) => r);
}

/** The loud line for a PostgreSQL that does not answer: the run goes on without graphile-worker's ceiling. */
function missingPostgresBanner(missing: { url: string; error: string } | null): string[] {
  return missing
    ? [
        `!!! PostgreSQL at ${missing.url} could not be reached (${missing.error}): the graphile-worker ceiling is ` +
          'MISSING from this run, and no drain is compared to it. Start PostgreSQL (or set BENCH_POSTGRES_URL) and run again.',
      ]
    : [];
}

/** PostgreSQL for graphile-worker's ceiling, when a section that needs it runs. */
async function resolvePostgres(
  settings: BenchSettings,
): Promise<{ postgres: PostgresServer | null; missing: { url: string; error: string } | null }> {
  if (!(runs(settings, 'graphile') || runs(settings, 'drain') || runs(settings, 'schedulers'))) {
    return { postgres: null, missing: null };
  }
  const probed = await probePostgres(settings.postgresUrl);
  return 'error' in probed ? { postgres: null, missing: probed } : { postgres: probed, missing: null };
}

async function main(): Promise<void> {
  const settings = readSettings();
  const logger = pino({ name: 'bench', level: 'warn' }, pino.destination(2));
  const { servers, missing } = await resolveServers(settings, logger);
  announceMissing(missing);
  const { postgres, missing: missingPostgres } = await resolvePostgres(settings);
  for (const line of missingPostgresBanner(missingPostgres)) progress(line);
  const redis = new Redis(settings.redisUrl);
  const started = new Date();
  const rows: Row[] = [];
  const peers: PeerRow[] = [];
  const history: HistoryRow[] = [];
  const details: Record<string, unknown> = {};
  try {
    const machine = {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      node: process.version,
      databases: servers.map((s) => s.version),
      redis: /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown',
      bullmq: packageVersion('bullmq'),
      graphileWorker: packageVersion('graphile-worker'),
      postgres: postgres?.version ?? null,
    };
    progress(
      `machine: ${machine.cpus} cpus (${machine.cpuModel}), ${machine.memoryGiB} GiB, node ${machine.node}, ` +
        `redis ${machine.redis}; servers: ${servers.map((s) => `${s.label} (${s.url})`).join(', ')}` +
        `${postgres ? `; graphile-worker ${machine.graphileWorker} on ${postgres.label} (${postgres.url})` : ''}`,
    );
    for (const s of servers) progress(`${s.label} settings: ${JSON.stringify(s.variables)}`);
    if (Object.keys(settings.serviceOverrides).length > 0) {
      progress(`service settings from the environment: ${JSON.stringify(settings.serviceOverrides)}`);
    }
    details.machine = machine;
    details.servers = servers.map((s) => ({ label: s.label, version: s.version, url: s.url, variables: s.variables }));
    details.missingServers = missing;
    details.missingPostgres = missingPostgres;
    details.serviceOverrides = settings.serviceOverrides;

    if (runs(settings, 'redis')) {
      const figures = await measureRedis(settings.redisUrl, settings.keyPrefix);
      details.redis = figures;
      if (figures) {
        rows.push(
          row('Redis LPUSH/RPOP, 50 clients, unpipelined', 'Redis', figures.unpipelined, 'ops/s', null, '—', null),
        );
        rows.push(
          row('Redis LPUSH/RPOP, 50 clients, pipelined ×16', 'Redis', figures.pipelined, 'ops/s', null, '—', null),
        );
      }
    }

    const drains = await drainSection({ settings, logger, redis }, servers, postgres);
    rows.push(...drains.rows);
    peers.push(...drains.peers);
    Object.assign(details, drains.details);

    const inserts: InsertFigures[] = [];
    if (runs(settings, 'insert')) {
      for (const server of servers) {
        const insert = await runInsert(settings, server, logger, redis);
        inserts.push(insert);
        const errors = insert.tasks.errors + insert.noop.errors;
        rows.push(
          row(
            `Insert POST /tasks, ${insert.connections} keep-alive clients`,
            server.label,
            insert.tasks.perSecond,
            'req/s',
            { ceiling: insert.noop.perSecond, label: 'no-op POST' },
            `≥ ${INSERT_TARGET.toFixed(2)}×, 0 errors`,
            (_v, ratio) => ratio !== null && ratio >= INSERT_TARGET && errors === 0,
          ),
        );
        rows.push(row('Insert errors (both routes)', server.label, errors, '', null, '0', (v) => v === 0));
        rows.push(
          row(
            `API peak RSS, ${insert.connections} clients (both apps of api-server.ts)`,
            server.label,
            insert.apiPeakRssMb,
            'MB',
            null,
            '—',
            null,
          ),
        );
      }
      details.insert = inserts;
    }

    if (runs(settings, 'workers')) {
      const all: WorkersFigures[] = [];
      for (const server of servers) {
        const figures = await runApiWorkers(settings, server, logger, redis);
        all.push(...figures);
        const one = figures.find((f) => f.workers === 1);
        const noop = inserts.find((i) => i.server === server.label)?.noop;
        for (const f of figures) {
          const against =
            f.workers === 1
              ? noop
                ? { ceiling: noop.perSecond, label: 'no-op POST' }
                : null
              : one
                ? { ceiling: one.load.perSecond, label: 'API_WORKERS=1' }
                : null;
          const honoured = f.honoured ? '' : ` (ran as ${f.processes} process: API_WORKERS not honoured by this build)`;
          rows.push(
            row(
              `Insert POST /tasks, the API service, API_WORKERS=${f.workers}${honoured}`,
              server.label,
              f.load.perSecond,
              'req/s',
              against,
              'reported, 0 errors',
              () => f.load.errors === 0,
            ),
          );
        }
      }
      details.workers = all;
    }

    if (runs(settings, 'latency')) {
      const all: LatencyFigures[] = [];
      for (const server of servers) {
        const latency = await runLatency(settings, server, logger, redis);
        all.push(latency);
        peers.push(
          drainRow(
            `Latency run: API, scheduler, 1 executor, ${latency.rate.toLocaleString('en-US')} tasks/s offered`,
            { server: server.label, perSecond: latency.rate, cpuMicrosPerTask: latency.cpuMicrosPerTask },
            server.kind,
            null,
          ),
        );
        const offered = `${latency.rate.toLocaleString('en-US')}/s`;
        const percentiles = [
          ['p50', latency.p50Ms, LATENCY_BOUNDS_MS.p50],
          ['p99', latency.p99Ms, LATENCY_BOUNDS_MS.p99],
        ] as const;
        for (const [name, value, bound] of percentiles) {
          rows.push(
            row(
              `Insert-to-completed ${name} at ${offered}`,
              server.label,
              value,
              'ms',
              { ceiling: bound, label: 'bound' },
              `≤ ${bound} ms, 0 errors`,
              (v) => v <= bound && latency.errors === 0,
            ),
          );
        }
        for (const [name, value] of [
          ['p50', latency.wait.p50Ms],
          ['p99', latency.wait.p99Ms],
        ] as const) {
          rows.push(
            row(
              `Final to answered ${name}, POST /tasks?wait=30 at ${latency.wait.rate}/s`,
              server.label,
              value,
              'ms',
              null,
              'reported, 0 errors',
              () => latency.wait.errors === 0,
            ),
          );
        }
        rows.push(
          row(
            `API peak RSS at ${offered} (the service itself)`,
            server.label,
            latency.apiPeakRssMb,
            'MB',
            null,
            '—',
            null,
          ),
        );
      }
      details.latency = all;
    }

    if (runs(settings, 'history')) {
      const all: HistoryFigures[] = [];
      for (const server of servers) {
        const figures = await runHistory({ settings, logger, redis }, server);
        all.push(figures);
        for (const table of [figures.baseline, figures.history]) {
          const on = `on ${table.rows.toLocaleString('en-US')} rows`;
          peers.push(drainRow(`Drain, 1 executor, ${on}`, table.drain, server.kind, drains.ceilings));
          if (table.retention) {
            const { without, with: withRetention, days } = table.retention;
            const tasks = table.retention.rows.toLocaleString('en-US');
            peers.push(drainRow(`Drain of ${tasks}, ${on}, best of 2`, without, server.kind, drains.ceilings));
            peers.push(
              drainRow(
                `Drain of ${tasks}, ${on}, retention ${days} days deleting, best of 2`,
                withRetention,
                server.kind,
                drains.ceilings,
              ),
            );
          }
        }
        history.push(...historyRows(figures));
      }
      details.history = all;
    }

    const grouped = groupedByFigure(rows);
    const banner = [...missingServerBanner(missing), ...missingPostgresBanner(missingPostgres)];
    const tables = [
      ...(banner.length > 0 ? [banner.join('\n')] : []),
      ...(grouped.length > 0 ? [markdownTable(grouped)] : []),
      ...(peers.length > 0 ? [peerTable(peers)] : []),
      ...(history.length > 0
        ? [historyTable(history, Math.min(BASELINE_ROWS, settings.historyRows), settings.historyRows)]
        : []),
    ];
    const table = tables.join('\n\n');
    process.stdout.write(`\n${table}\n\n`);
    const passed = grouped.every((r) => r.pass !== false) && history.every((r) => r.pass !== false);
    announceMissing(missing);
    for (const line of missingPostgresBanner(missingPostgres)) progress(line);
    progress(passed ? 'every target met' : 'some targets missed');
    await mkdir(RESULTS, { recursive: true });
    const file = new URL('latest.json', RESULTS);
    const tmp = new URL('latest.json.tmp', RESULTS);
    const finished = new Date();
    await writeFile(
      tmp,
      `${JSON.stringify(
        {
          startedAt: started.toISOString(),
          commit: await gitCommit(),
          seconds: (finished.getTime() - started.getTime()) / 1000,
          passed,
          rows: grouped,
          peerRows: peers,
          historyRows: history,
          table,
          ...details,
        },
        null,
        2,
      )}\n`,
    );
    await rename(tmp, file);
    progress(
      `results written to bench/results/latest.json (${((finished.getTime() - started.getTime()) / 1000).toFixed(0)} s)`,
    );
    if (!passed) process.exitCode = 1;
  } finally {
    await closeServers(servers);
    redis.disconnect();
  }
}

main().catch((err: unknown) => {
  progress(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
