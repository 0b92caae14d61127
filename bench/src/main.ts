// `pnpm bench`: runs the real services against the local MySQL and Redis and measures each
// figure beside its ceiling, taken in the same run. Progress goes to stderr; the table (Markdown)
// to stdout; everything to bench/results/latest.json. Exits 1 when a target is missed.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { type BullmqFigures, measureBullmq } from './bullmq-ceiling.js';
import { openPool, resetDatabase, serverVersion } from './database.js';
import { type DrainFigures, runDrain } from './drain.js';
import { runInsert } from './insert.js';
import { runLatency } from './latency.js';
import { progress } from './progress.js';
import { measureRedis } from './redis-ceiling.js';
import { markdownTable, type Row, row } from './report.js';
import { readSettings, runs } from './settings.js';

const run = promisify(execFile);
const RESULTS = new URL('../results/', import.meta.url);
const BULLMQ_JOBS = 20_000;
const BULLMQ_JOBS_C1 = 5_000;
const REPEATS = 3;

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

async function main(): Promise<void> {
  const settings = readSettings();
  const logger = pino({ name: 'bench', level: 'warn' }, pino.destination(2));
  await resetDatabase(settings.mysqlUrl, logger);
  const pool = openPool(settings.mysqlUrl, logger);
  const redis = new Redis(settings.redisUrl);
  const started = new Date();
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  try {
    const machine = {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      node: process.version,
      database: await serverVersion(pool),
      redis: /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? 'unknown',
      bullmq: packageVersion('bullmq'),
    };
    progress(
      `machine: ${machine.cpus} cpus (${machine.cpuModel}), ${machine.memoryGiB} GiB, node ${machine.node}, ` +
        `${machine.database}, redis ${machine.redis}`,
    );
    if (Object.keys(settings.serviceOverrides).length > 0) {
      progress(`service settings from the environment: ${JSON.stringify(settings.serviceOverrides)}`);
    }
    details.machine = machine;
    details.serviceOverrides = settings.serviceOverrides;

    if (runs(settings, 'redis')) {
      const figures = await measureRedis(settings.redisUrl, settings.keyPrefix);
      details.redis = figures;
      if (figures) {
        rows.push(row('Redis LPUSH/RPOP, 50 clients, unpipelined', figures.unpipelined, 'ops/s', null, '—', null));
        rows.push(row('Redis LPUSH/RPOP, 50 clients, pipelined ×16', figures.pipelined, 'ops/s', null, '—', null));
      }
    }

    // BullMQ and the drain take turns, REPEATS times each, and the best of each is kept: a
    // burst of load from elsewhere on the machine then hurts both or is outrun by a repeat.
    const ctx = { settings, logger, pool, redis };
    const drains: DrainFigures[] = [];
    const bullmqRuns: BullmqFigures[] = [];
    const singles: DrainFigures[] = [];
    const bullmqPrefix = `${settings.keyPrefix}bullmq`;
    const measureDrain = runs(settings, 'drain');
    if (runs(settings, 'bullmq') || measureDrain) {
      for (let i = 0; i < (measureDrain ? REPEATS : 1); i++) {
        bullmqRuns.push(await measureBullmq(settings.redisUrl, bullmqPrefix, BULLMQ_JOBS, 16, settings.warmUpRows));
        if (measureDrain) singles.push(await runDrain(ctx, 1, 0));
      }
    }
    const best = <T>(list: T[], by: (item: T) => number): T | null =>
      list.reduce<T | null>((b, item) => (b === null || by(item) > by(b) ? item : b), null);
    const c16 = best(bullmqRuns, (r) => r.processPerSecond);
    let single = best(singles, (d) => d.perSecond);
    drains.push(...singles);
    details.bullmq = { c16: bullmqRuns };
    if (c16) {
      rows.push(
        row(
          `BullMQ no-op jobs, 1 worker, concurrency 16${bullmqRuns.length > 1 ? `, best of ${bullmqRuns.length}` : ''}`,
          c16.processPerSecond,
          'jobs/s',
          null,
          '—',
          null,
        ),
      );
    }
    if (runs(settings, 'bullmq')) {
      const c1 = await measureBullmq(settings.redisUrl, bullmqPrefix, BULLMQ_JOBS_C1, 1, settings.warmUpRows);
      details.bullmq = { c16: bullmqRuns, c1 };
      rows.push(row('BullMQ no-op jobs, 1 worker, concurrency 1', c1.processPerSecond, 'jobs/s', null, '—', null));
      rows.push(row('BullMQ addBulk', c16?.addPerSecond ?? Number.NaN, 'jobs/s', null, '—', null));
    }

    const againstBullmq = { ceiling: c16?.processPerSecond ?? Number.NaN, label: 'BullMQ c=16' };
    if (single) {
      const consistent = singles.every((d) => d.consistent);
      rows.push(
        row(
          `Drain ${settings.drainRows.toLocaleString('en-US')} tasks, 1 executor, FAILURE_RATE=0, best of ${singles.length}`,
          single.perSecond,
          'tasks/s',
          againstBullmq,
          '≥ 2× BullMQ c=16, all completed',
          (_v, ratio) => consistent && ratio !== null && ratio >= 2,
        ),
      );
    }
    if (runs(settings, 'failures')) {
      const failing = await runDrain(ctx, 1, 0.2);
      drains.push(failing);
      const failingConsistent = failing.consistent;
      rows.push(
        row(
          'Drain, 1 executor, FAILURE_RATE=0.2 (immediate retries, dead letters)',
          failing.perSecond,
          'tasks/s',
          c16 ? againstBullmq : null,
          'reported, all final',
          () => failingConsistent,
        ),
      );
    }
    if (runs(settings, 'scaling')) {
      for (const executors of settings.scaling) {
        if (executors === 1 && single) continue;
        const figures = await runDrain(ctx, executors, 0);
        drains.push(figures);
        if (executors === 1) single = figures;
        rows.push(
          row(
            `Drain, ${executors} executor${executors > 1 ? 's' : ''}, FAILURE_RATE=0`,
            figures.perSecond,
            'tasks/s',
            single && executors > 1 ? { ceiling: single.perSecond, label: '1 executor' } : null,
            'reported, all completed',
            () => figures.consistent,
          ),
        );
      }
    }
    details.drains = drains;
    if (drains.length > 0) {
      const peak = Math.max(...drains.flatMap((d) => d.executorPeakRssMb));
      rows.push(
        row(
          'Executor peak RSS during the drains',
          peak,
          'MB',
          { ceiling: 150, label: 'bound' },
          '≤ 150 MB',
          (v) => v <= 150,
        ),
      );
    }

    if (runs(settings, 'insert')) {
      const insert = await runInsert(settings, logger, redis);
      details.insert = insert;
      const errors = insert.tasks.errors + insert.noop.errors;
      rows.push(
        row(
          `Insert POST /tasks, ${insert.connections} keep-alive clients`,
          insert.tasks.perSecond,
          'req/s',
          { ceiling: insert.noop.perSecond, label: 'no-op POST' },
          '≥ 0.60×, 0 errors',
          (_v, ratio) => ratio !== null && ratio >= 0.6 && errors === 0,
        ),
      );
      rows.push(row('Insert errors (both routes)', errors, '', null, '0', (v) => v === 0));
      rows.push(
        row('API peak RSS, 64 clients (both apps of api-server.ts)', insert.apiPeakRssMb, 'MB', null, '—', null),
      );
    }

    if (runs(settings, 'latency')) {
      const latency = await runLatency(settings, logger, pool, redis);
      details.latency = latency;
      const offered = `${latency.rate}/s`;
      const percentiles = [
        ['p50', latency.p50Ms, 20],
        ['p99', latency.p99Ms, 200],
      ] as const;
      for (const [name, value, bound] of percentiles) {
        rows.push(
          row(
            `Insert-to-completed ${name} at ${offered}`,
            value,
            'ms',
            { ceiling: bound, label: 'bound' },
            `≤ ${bound} ms`,
            (v) => v <= bound && latency.errors === 0,
          ),
        );
      }
      rows.push(row(`API peak RSS at ${offered} (the service itself)`, latency.apiPeakRssMb, 'MB', null, '—', null));
    }

    const table = markdownTable(rows);
    process.stdout.write(`\n${table}\n\n`);
    const passed = rows.every((r) => r.pass !== false);
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
          rows,
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
    await pool.end();
    redis.disconnect();
  }
}

main().catch((err: unknown) => {
  progress(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
