import { Agent } from 'node:http';
import type { Logger } from '@tasks/common';
import { countByStatus } from '@tasks/common/internal';
import type { Redis } from 'ioredis';
import { resetDatabase } from './database.js';
import { type DrainFigures, runDrain } from './drain.js';
import { type FillFigures, fillHistory, waitForFlush } from './history-fill.js';
import { freePort, get, waitForReady } from './http.js';
import { CLAIM_SELECT, explain } from './plans.js';
import { percentile, progress } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import type { DatabaseServer } from './servers.js';
import { ServiceProcess, serviceEnv } from './services.js';
import type { BenchSettings } from './settings.js';

/**
 * The operator's reads and a drain on a table of `historyRows` finished tasks, beside the same
 * on a table of BASELINE_ROWS: whether a read still costs a page, and a drain the same, once
 * the table holds a long history.
 */

/** The rows of the small table the history is compared with: enough for every page read to be full. */
export const BASELINE_ROWS = 2_000;
/** Requests of each route sent before the measured ones. */
const WARM_UP_REQUESTS = 5;

export interface ReadFigures {
  route: string;
  requests: number;
  /** Answers other than 200. */
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Whether the route's budget of seconds ran out before its number of requests. */
  cutShort: boolean;
}

export interface TableFigures {
  rows: number;
  fill: FillFigures;
  /** Seconds waited for the buffer pool to write out what the fill left dirty. */
  flushSeconds: number;
  reads: ReadFigures[];
  /**
   * Whether GET /stats counted the table's rows as the fill wrote them (completed, failed). A
   * per-status count kept apart from `tasks` does not see a fill that writes `tasks` directly.
   */
  statsMatchTable: boolean;
  /** The server's plan for the claim's read on this table. */
  claimPlan: string[];
  drain: DrainFigures;
  /** On the long history: drains taking turns without and with retention deleting meanwhile. */
  retention: RetentionFigures | null;
}

export interface RetentionFigures {
  days: number;
  rows: number;
  /** The best of each. */
  without: DrainFigures;
  with: DrainFigures;
  /** Tasks retention deleted while the drains with it ran. */
  deleted: number;
}

/** Days of retention in the retention figure: most of the history (30 days) is older. */
const RETENTION_DAYS = 7;
/** Tasks of each retention drain: long enough for retention to delete pages meanwhile. */
const RETENTION_DRAIN_ROWS = 100_000;

/**
 * Drains on top of the history, without and then with RETENTION_DAYS (the scheduler deleting a
 * page of old tasks a second meanwhile), twice each: whether retention slows the drain.
 */
async function measureRetention(
  ctx: { settings: BenchSettings; logger: Logger; redis: Redis },
  server: DatabaseServer,
): Promise<RetentionFigures> {
  // The kept per-status counts (64 rows) rather than COUNT(*) over the ten million.
  const count = async () => Object.values(await countByStatus(server.pool)).reduce((sum, n) => sum + n, 0);
  const without: DrainFigures[] = [];
  const withRetention: DrainFigures[] = [];
  let deleted = 0;
  for (let i = 0; i < 2; i++) {
    without.push(
      await runDrain(ctx, server, { executors: 1, failureRate: 0, keepRows: true, rows: RETENTION_DRAIN_ROWS }),
    );
    const before = await count();
    const drain = await runDrain(ctx, server, {
      executors: 1,
      failureRate: 0,
      keepRows: true,
      rows: RETENTION_DRAIN_ROWS,
      serviceSettings: { RETENTION_DAYS: String(RETENTION_DAYS) },
    });
    withRetention.push(drain);
    // The drain added its tasks (and its warm-up's); what is missing was deleted.
    deleted += before + RETENTION_DRAIN_ROWS + ctx.settings.warmUpRows - (await count());
  }
  const best = (list: DrainFigures[]) => list.reduce((b, d) => (d.perSecond > b.perSecond ? d : b));
  return {
    days: RETENTION_DAYS,
    rows: RETENTION_DRAIN_ROWS,
    without: best(without),
    with: best(withRetention),
    deleted,
  };
}

export interface HistoryFigures {
  server: string;
  baseline: TableFigures;
  history: TableFigures;
}

/** The read routes measured, each with how to build its path. */
function routes(rows: number): { route: string; path: () => string }[] {
  return [
    { route: 'GET /stats', path: () => '/stats' },
    { route: 'GET /tasks?status=failed&limit=50', path: () => '/tasks?status=failed&limit=50' },
    { route: 'GET /tasks?limit=50', path: () => '/tasks?limit=50' },
    { route: 'GET /tasks/:id (a random id)', path: () => `/tasks/${1 + Math.floor(Math.random() * rows)}` },
  ];
}

/** Each route one request at a time (the latency of a read alone): up to `count` requests or `seconds`. */
async function measureReads(
  port: number,
  rows: number,
  count: number,
  seconds: number,
  label: string,
): Promise<ReadFigures[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const figures: ReadFigures[] = [];
  try {
    for (const { route, path } of routes(rows)) {
      const deadline = performance.now() + seconds * 1000;
      for (let i = 0; i < WARM_UP_REQUESTS && performance.now() < deadline; i++) await get(port, path(), agent);
      const times: number[] = [];
      let errors = 0;
      while (times.length < count && performance.now() < deadline) {
        const answer = await get(port, path(), agent);
        times.push(answer.ms);
        if (answer.status !== 200) errors++;
      }
      times.sort((a, b) => a - b);
      const read: ReadFigures = {
        route,
        requests: times.length,
        errors,
        p50Ms: percentile(times, 50),
        p99Ms: percentile(times, 99),
        maxMs: times.at(-1) ?? Number.NaN,
        cutShort: times.length < count,
      };
      figures.push(read);
      progress(
        `${label}: ${route}: p50 ${read.p50Ms.toFixed(1)} ms, p99 ${read.p99Ms.toFixed(1)} ms, max ` +
          `${read.maxMs.toFixed(1)} ms over ${read.requests} requests${read.cutShort ? ` (the ${seconds} s budget ran out)` : ''}` +
          `${errors > 0 ? `, ${errors} errors` : ''}`,
      );
    }
  } finally {
    agent.destroy();
  }
  return figures;
}

async function statsCounts(port: number): Promise<{ completed: number; failed: number } | null> {
  const answer = await get(port, '/stats');
  if (answer.status !== 200) return null;
  const body = JSON.parse(answer.body) as { tasks?: { completed?: number; failed?: number } };
  return { completed: Number(body.tasks?.completed), failed: Number(body.tasks?.failed) };
}

async function measureTable(
  ctx: { settings: BenchSettings; logger: Logger; redis: Redis },
  server: DatabaseServer,
  rows: number,
): Promise<TableFigures> {
  const { settings, logger, redis } = ctx;
  const label = `${server.label} history (${rows.toLocaleString('en-US')} rows)`;
  progress(`${label}: filling`);
  await resetDatabase(server.url, logger);
  await deleteKeys(redis, settings.keyPrefix);
  const fill = await fillHistory(server, rows);
  const flushSeconds = await waitForFlush(server);
  progress(
    `${label}: filled in ${fill.insertSeconds.toFixed(1)} s (${(rows / fill.insertSeconds).toFixed(0)} rows/s; ` +
      `${fill.completed} completed, ${fill.failed} failed${fill.binlogSkipped ? '; binary log skipped for the fill' : ''}), ` +
      `ANALYZE TABLE ${fill.analyzeSeconds.toFixed(1)} s, recount ${fill.recountSeconds.toFixed(1)} s, dirty pages written out in ${flushSeconds.toFixed(1)} s`,
  );
  const claimPlan = await explain(server, CLAIM_SELECT);
  progress(`${label}: the claim's read: ${claimPlan.join('; ')}`);
  const port = await freePort();
  const api = ServiceProcess.service(
    'task-insert',
    serviceEnv(settings, server.url, { HOST: '127.0.0.1', PORT: String(port) }),
    'api',
  );
  let reads: ReadFigures[];
  let statsMatchTable: boolean;
  try {
    await waitForReady(port, api);
    const counted = await statsCounts(port);
    statsMatchTable = counted?.completed === fill.completed && counted?.failed === fill.failed;
    if (!statsMatchTable) {
      progress(
        `!!! ${label}: GET /stats counts ${JSON.stringify(counted)} where the table holds ${fill.completed} completed ` +
          `and ${fill.failed} failed: the fill wrote \`tasks\` behind the back of the per-status counts`,
      );
    }
    reads = await measureReads(port, rows, settings.historyReads, settings.historyReadSeconds, label);
    if (api.logLines > 0) progress(`${label}: api logged: ${api.logSummary()}`);
  } finally {
    await api.stop();
  }
  const drain = await runDrain(ctx, server, { executors: 1, failureRate: 0, keepRows: true });
  const retention = rows > BASELINE_ROWS ? await measureRetention(ctx, server) : null;
  return { rows, fill, flushSeconds, reads, statsMatchTable, claimPlan, drain, retention };
}

/**
 * On `server`: a table of BASELINE_ROWS finished tasks, then one of `historyRows`: each filled,
 * its reads measured through the API service, then a drain on top of it. The bench database
 * is emptied afterwards (ten million rows take gigabytes).
 */
export async function runHistory(
  ctx: { settings: BenchSettings; logger: Logger; redis: Redis },
  server: DatabaseServer,
): Promise<HistoryFigures> {
  try {
    const baseline = await measureTable(ctx, server, Math.min(BASELINE_ROWS, ctx.settings.historyRows));
    const history = await measureTable(ctx, server, ctx.settings.historyRows);
    return { server: server.label, baseline, history };
  } finally {
    await resetDatabase(server.url, ctx.logger);
  }
}
