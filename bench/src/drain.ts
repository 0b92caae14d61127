import type { Logger, NewTask } from '@tasks/common';
import type { Redis } from 'ioredis';
import { type ClaimsCount, countClaims, installClaimsAudit } from './claims-audit.js';
import {
  allFinished,
  historyListLength,
  resetDatabase,
  seedPending,
  summarizeRange,
  unfinished,
  waitForPurge,
} from './database.js';
import { fillDelayed } from './history-fill.js';
import { counterValue, freePort } from './http.js';
import { cpuSeconds, pidFromRedisInfo } from './processes.js';
import { progress, waitFor } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import { describeCounters, type ServerCounters, serverCounters, snapshotServer } from './server-counters.js';
import type { DatabaseServer } from './servers.js';
import { ServiceProcess, serviceEnv, stopAll } from './services.js';
import type { BenchSettings } from './settings.js';
import { openStore } from './task-store.js';

export interface DrainFigures {
  server: string;
  executors: number;
  schedulers: number;
  failureRate: number;
  /** Whether `tasks` held rows before the drain (the history section's drains). */
  onExistingRows: boolean;
  rows: number;
  seconds: number;
  perSecond: number;
  completed: number;
  failed: number;
  /** Runs over all tasks: `rows` when nothing failed. */
  attempts: number;
  /** Tasks whose `run` is not 1 (claimed twice, or never). */
  runNotOne: number;
  /** Tasks the schedulers say they claimed (their tasks_claimed_total over the drain). */
  claimsCounted: number;
  /** pending → processing transitions counted by a trigger, when the drain carried one. */
  claimsAudit: ClaimsCount | null;
  executorPeakRssMb: number[];
  schedulerPeakRssMb: number[];
  /** Warning lines the services logged. */
  warnings: number;
  /** CPU time each process used during the drain, in microseconds per task. */
  cpuMicrosPerTask: Record<string, number>;
  /** Where the database server spent the drain. */
  serverCounters: ServerCounters;
  /** Whether every task reached the final status the run expects (each `completed` in one run without failures). */
  consistent: boolean;
}

const TASK = { message: 'bench', time: 0 };

export interface DrainContext {
  settings: BenchSettings;
  logger: Logger;
  redis: Redis;
}

export interface DrainOptions {
  executors: number;
  failureRate: number;
  /** Scheduler processes (1 by default). */
  schedulers?: number;
  /** Start from the table as it is rather than an empty database (the history section's drains). */
  keepRows?: boolean;
  /** Count the claims with a trigger (see claims-audit.ts). */
  auditClaims?: boolean;
  /** Tasks drained (settings.drainRows by default). */
  rows?: number;
  /** Settings given to every service of this drain, e.g. RETENTION_DAYS. */
  serviceSettings?: Record<string, string>;
  /** The type, priority and group of the drained task `i` (none by default). */
  fields?: (i: number) => Pick<NewTask, 'type' | 'priority' | 'group'>;
  /** What the fields make of the tasks, for the label (e.g. "5 priorities, 20 groups"). */
  fieldsLabel?: string;
  /** Delayed tasks, due a day later, put in the table before the drain: none may run. */
  delayedRows?: number;
}

function labelOf(server: DatabaseServer, o: DrainOptions): string {
  const parts = [
    `${o.executors} executor${o.executors > 1 ? 's' : ''}`,
    ...((o.schedulers ?? 1) > 1 ? [`${o.schedulers} schedulers`] : []),
    `FAILURE_RATE=${o.failureRate}`,
    ...(o.keepRows ? ['on the rows already there'] : []),
    ...(o.auditClaims ? ['claims audited'] : []),
    ...(o.fieldsLabel ? [o.fieldsLabel] : []),
    ...(o.delayedRows ? [`${o.delayedRows.toLocaleString('en-US')} delayed tasks not due`] : []),
    ...Object.entries(o.serviceSettings ?? {}).map(([k, v]) => `${k}=${v}`),
  ];
  return `${server.label} drain (${parts.join(', ')})`;
}

/**
 * One drain: the scheduler(s), the executor process(es) (and the DLQ processor when tasks can
 * fail) start on an empty database (or the rows already there) and take `warmUpRows` tasks
 * through the whole pipeline; then `drainRows` pending tasks are committed at once and the
 * schedulers are told. The figure runs from that commit to the last `finished_at`, both read
 * from the database's clock.
 */
export async function runDrain(
  { settings, logger, redis }: DrainContext,
  server: DatabaseServer,
  options: DrainOptions,
): Promise<DrainFigures> {
  const { executors, failureRate } = options;
  const schedulers = options.schedulers ?? 1;
  const pool = server.pool;
  const rows = options.rows ?? settings.drainRows;
  const label = labelOf(server, options);
  progress(`${label}: preparing`);
  const purgeBaseline = await historyListLength(pool);
  if (!options.keepRows) await resetDatabase(server.url, logger);
  if (options.auditClaims) await installClaimsAudit(pool);
  await deleteKeys(redis, settings.keyPrefix);
  const env = serviceEnv(settings, server.url, {
    FAILURE_RATE: String(failureRate),
    ...(failureRate > 0 ? { RETRY_BACKOFF_MS: '0' } : {}),
    ...options.serviceSettings,
  });
  // The bench seeds, tells the schedulers and watches the counts through the services' own store.
  const { store, close: closeStore } = openStore(settings, server.url, logger);
  if (options.delayedRows) {
    const filled = await fillDelayed(server, store, options.delayedRows);
    progress(`${label}: ${options.delayedRows} delayed rows added in ${filled.seconds.toFixed(1)} s`);
  }

  // Each scheduler serves its metrics on a port of its own: their tasks_claimed_total count the claims.
  const metricsPorts: number[] = [];
  for (let i = 0; i < schedulers; i++) metricsPorts.push(await freePort());
  const schedulerProcesses = metricsPorts.map((port, i) =>
    ServiceProcess.service(
      'scheduler',
      { ...env, HEALTH_PORT: String(port) },
      schedulers > 1 ? `scheduler#${i + 1}` : 'scheduler',
    ),
  );
  const executorProcesses = Array.from({ length: executors }, (_, i) =>
    ServiceProcess.service('executor', env, `executor#${i + 1}`),
  );
  const others = failureRate > 0 ? [ServiceProcess.service('dlq-processor', env)] : [];
  const all = [...schedulerProcesses, ...executorProcesses, ...others];
  const running = () => {
    for (const p of all) p.assertRunning();
  };
  const claimed = async () => {
    let sum = 0;
    for (const port of metricsPorts) sum += await counterValue(port, 'tasks_claimed_total');
    return sum;
  };
  try {
    await seedPending(store, pool, settings.warmUpRows, TASK);
    await store.announceInserted();
    await waitFor(
      'the warm-up tasks to finish',
      async () => {
        running();
        return allFinished(store);
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // The measured drain starts once the server has purged the warm-up's old row versions.
    await waitForPurge(pool, purgeBaseline);

    const processes: Record<string, number | null> = {
      [server.kind]: server.pid,
      redis: pidFromRedisInfo(await redis.info('server')),
    };
    const cpuOf = (): Record<string, number> => {
      const cpu: Record<string, number> = {};
      for (const p of all) cpu[p.label] = p.cpuSeconds() ?? Number.NaN;
      for (const [name, pid] of Object.entries(processes)) {
        cpu[name] = cpuSeconds(pid) ?? Number.NaN;
        cpu[`${name} (system)`] = cpuSeconds(pid, 'system') ?? Number.NaN;
      }
      return cpu;
    };
    // Counted from the seed's commit: what the drain costs, not the bench's INSERT. (The
    // schedulers poll, so one may claim a batch before they are told; the snapshots are quick.)
    const claimedBefore = await claimed();
    const seeded = await seedPending(store, pool, rows, TASK, options.fields);
    const cpuBefore = cpuOf();
    const serverBefore = await snapshotServer(server);
    await store.announceInserted();
    progress(`${label}: ${rows} pending rows committed, draining`);
    let lastReport = performance.now();
    await waitFor(
      'the drain to finish',
      async () => {
        running();
        if (await allFinished(store)) return true;
        if (performance.now() - lastReport > 2_000) {
          progress(`${label}: ${await unfinished(store)} left`);
          lastReport = performance.now();
        }
        return false;
      },
      { timeoutMs: 180_000, intervalMs: 50 },
    );
    const cpuAfter = cpuOf();
    const serverAfter = await snapshotServer(server);
    const claimsCounted = (await claimed()) - claimedBefore;
    const cpuMicrosPerTask = Object.fromEntries(
      Object.entries(cpuAfter).map(([name, after]) => [name, ((after - (cpuBefore[name] ?? 0)) * 1e6) / rows]),
    );
    const summary = await summarizeRange(pool, seeded.firstId, seeded.lastId);
    // The store inserts a seed larger than one packet (max_allowed_packet) in several
    // transactions, and the schedulers claim the first before the last commits: such a drain
    // would be timed from a later start than its own.
    if (summary.firstDispatchedAt < seeded.committedAt) {
      throw new Error(
        `${label}: tasks were claimed before the last of the ${rows} seeded tasks was committed (the store inserted them in several transactions, each within max_allowed_packet); seed fewer rows (BENCH_DRAIN_ROWS) or raise the server's max_allowed_packet`,
      );
    }
    const delayedLeft = options.delayedRows ? (await store.stats()).tasks.delayed : 0;
    const claimsAudit = options.auditClaims ? await countClaims(pool, seeded.firstId, seeded.lastId) : null;
    const seconds = (summary.lastFinishedAt - seeded.committedAt) / 1000;
    const figures: DrainFigures = {
      server: server.label,
      executors,
      schedulers,
      failureRate,
      onExistingRows: options.keepRows === true,
      rows,
      seconds,
      perSecond: rows / seconds,
      completed: summary.completed,
      failed: summary.failed,
      attempts: summary.attempts,
      runNotOne: summary.runNotOne,
      claimsCounted,
      claimsAudit,
      executorPeakRssMb: executorProcesses.map((c) => c.peakRssMb() ?? Number.NaN),
      schedulerPeakRssMb: schedulerProcesses.map((s) => s.peakRssMb() ?? Number.NaN),
      cpuMicrosPerTask,
      serverCounters: serverCounters(serverBefore, serverAfter, rows),
      warnings: all.reduce((sum, p) => sum + p.logLines, 0),
      consistent:
        summary.unfinished === 0 &&
        delayedLeft === (options.delayedRows ?? 0) &&
        summary.completed + summary.failed === rows &&
        (failureRate > 0 || (summary.completed === rows && summary.attempts === rows && summary.runNotOne === 0)),
    };
    progress(
      `${label}: ${figures.perSecond.toFixed(0)} tasks/s (${seconds.toFixed(2)} s; ${figures.completed} completed, ` +
        `${figures.failed} failed, ${figures.attempts} runs, ${figures.runNotOne} with run ≠ 1, ` +
        `${claimsCounted} claims counted by the scheduler${schedulers > 1 ? 's' : ''}` +
        `${claimsAudit ? `, ${claimsAudit.transitions} pending→processing transitions (${claimsAudit.claimedTwice} tasks twice)` : ''}` +
        `; executor peak RSS ${figures.executorPeakRssMb.map((m) => m.toFixed(0)).join('/')} MB; ` +
        `${figures.warnings} warning lines)`,
    );
    progress(
      `${label}: CPU µs per task: ${Object.entries(cpuMicrosPerTask)
        .map(([name, us]) => `${name} ${us.toFixed(0)}`)
        .join(', ')}`,
    );
    for (const line of describeCounters(figures.serverCounters)) progress(`${label}: ${line}`);
    for (const p of all) if (p.logLines > 0) progress(`${p.label} logged: ${p.logSummary()}`);
    return figures;
  } finally {
    await stopAll(all);
    await closeStore();
    await deleteKeys(redis, settings.keyPrefix);
  }
}
