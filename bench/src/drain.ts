import { type Logger, loadConfig, type Pool, queueKeys } from '@tasks/common';
import type { Redis } from 'ioredis';
import { allFinished, resetDatabase, seedPending, summarizeRange, unfinished, waitForPurge } from './database.js';
import { progress, waitFor } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import { cpuSeconds, ServiceProcess, serverPids, serviceEnv, stopAll } from './services.js';
import type { BenchSettings } from './settings.js';

export interface DrainFigures {
  executors: number;
  failureRate: number;
  rows: number;
  seconds: number;
  perSecond: number;
  completed: number;
  failed: number;
  /** Runs over all tasks: `rows` when nothing failed. */
  attempts: number;
  executorPeakRssMb: number[];
  schedulerPeakRssMb: number;
  /** Warning lines the services logged. */
  warnings: number;
  /** CPU time each process used during the drain, in microseconds per task. */
  cpuMicrosPerTask: Record<string, number>;
  /** Whether every task reached the final status the run expects (each `completed` once without failures). */
  consistent: boolean;
}

const TASK = { message: 'bench', time: 0 };

export interface DrainContext {
  settings: BenchSettings;
  logger: Logger;
  pool: Pool;
  redis: Redis;
}

/**
 * One drain: the scheduler, `executors` executor processes (and the DLQ processor when tasks
 * can fail) start on an empty database and take `warmUpRows` tasks through the whole pipeline;
 * then `rows` pending tasks are committed at once and the scheduler is told. The figure runs
 * from that commit to the last `finished_at`, both read from the database's clock.
 */
export async function runDrain(
  { settings, logger, pool, redis }: DrainContext,
  executors: number,
  failureRate: number,
): Promise<DrainFigures> {
  const rows = settings.drainRows;
  const label = `drain (${executors} executor${executors > 1 ? 's' : ''}, FAILURE_RATE=${failureRate})`;
  progress(`${label}: preparing`);
  await resetDatabase(settings.mysqlUrl, logger);
  await deleteKeys(redis, settings.keyPrefix);
  const env = serviceEnv(settings, {
    FAILURE_RATE: String(failureRate),
    ...(failureRate > 0 ? { RETRY_BACKOFF_MS: '0' } : {}),
  });
  const config = loadConfig(env);
  const channel = queueKeys({
    prefix: config.KEY_PREFIX,
    queue: config.QUEUE_KEY,
    deadLetter: config.DEAD_LETTER_KEY,
  }).insertedChannel;

  const scheduler = ServiceProcess.service('scheduler', env);
  const consumers = Array.from({ length: executors }, (_, i) =>
    ServiceProcess.service('consumer', env, `consumer#${i + 1}`),
  );
  const others = failureRate > 0 ? [ServiceProcess.service('dlq-processor', env)] : [];
  const all = [scheduler, ...consumers, ...others];
  const running = () => {
    for (const p of all) p.assertRunning();
  };
  try {
    await seedPending(pool, settings.warmUpRows, TASK);
    await redis.publish(channel, '1');
    await waitFor(
      'the warm-up tasks to finish',
      async () => {
        running();
        return allFinished(pool);
      },
      { timeoutMs: 60_000, intervalMs: 100 },
    );
    // The measured drain starts once the server has purged the warm-up's old row versions.
    await waitForPurge(pool);

    const servers = serverPids(Number(new URL(settings.redisUrl).port || 6379));
    const cpuOf = (): Record<string, number> => {
      const cpu: Record<string, number> = {};
      for (const p of all) cpu[p.label] = p.cpuSeconds() ?? Number.NaN;
      for (const [name, pid] of Object.entries(servers)) {
        cpu[name] = cpuSeconds(pid) ?? Number.NaN;
        cpu[`${name} (system)`] = cpuSeconds(pid, 'system') ?? Number.NaN;
      }
      return cpu;
    };
    const cpuBefore = cpuOf();
    progress(`${label}: ${rows} pending rows committed, draining`);
    const seeded = await seedPending(pool, rows, TASK);
    await redis.publish(channel, '1');
    let lastReport = performance.now();
    await waitFor(
      'the drain to finish',
      async () => {
        running();
        if (await allFinished(pool)) return true;
        if (performance.now() - lastReport > 2_000) {
          progress(`${label}: ${await unfinished(pool)} left`);
          lastReport = performance.now();
        }
        return false;
      },
      { timeoutMs: 180_000, intervalMs: 50 },
    );
    const cpuAfter = cpuOf();
    const cpuMicrosPerTask = Object.fromEntries(
      Object.entries(cpuAfter).map(([name, after]) => [name, ((after - (cpuBefore[name] ?? 0)) * 1e6) / rows]),
    );
    const summary = await summarizeRange(pool, seeded.firstId, seeded.lastId);
    const seconds = (summary.lastFinishedAt - seeded.committedAt) / 1000;
    const figures: DrainFigures = {
      executors,
      failureRate,
      rows,
      seconds,
      perSecond: rows / seconds,
      completed: summary.completed,
      failed: summary.failed,
      attempts: summary.attempts,
      executorPeakRssMb: consumers.map((c) => c.peakRssMb() ?? Number.NaN),
      schedulerPeakRssMb: scheduler.peakRssMb() ?? Number.NaN,
      cpuMicrosPerTask,
      warnings: all.reduce((sum, p) => sum + p.logLines, 0),
      consistent:
        summary.unfinished === 0 &&
        summary.completed + summary.failed === rows &&
        (failureRate > 0 || (summary.completed === rows && summary.attempts === rows)),
    };
    progress(
      `${label}: ${figures.perSecond.toFixed(0)} tasks/s (${seconds.toFixed(2)} s; ${figures.completed} completed, ` +
        `${figures.failed} failed, ${figures.attempts} runs; executor peak RSS ` +
        `${figures.executorPeakRssMb.map((m) => m.toFixed(0)).join('/')} MB; ${figures.warnings} warning lines)`,
    );
    progress(
      `${label}: CPU µs per task: ${Object.entries(cpuMicrosPerTask)
        .map(([name, us]) => `${name} ${us.toFixed(0)}`)
        .join(', ')}`,
    );
    for (const p of all) if (p.logLines > 0) progress(`${p.label} logged: ${p.logSummary()}`);
    return figures;
  } finally {
    await stopAll(all);
    await deleteKeys(redis, settings.keyPrefix);
  }
}
