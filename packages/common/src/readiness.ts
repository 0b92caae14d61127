import type { Pool } from './mysql/pool.js';
import type { TaskQueue } from './redis/task-queue.js';

export type CheckResult = { ok: true; ms: number } | { ok: false; error: string };

export interface ReadinessReport {
  /** True when every dependency answered. */
  ready: boolean;
  checks: { mysql: CheckResult; redis: CheckResult };
}

export const READINESS_TIMEOUT_MS = 2_000;

async function timed(what: string, check: () => Promise<unknown>, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Math.round(performance.now() - started) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

/** Whether MySQL (`SELECT 1`) and Redis (`PING`) both answer within `timeoutMs`, checked at once. */
export async function checkReadiness(
  deps: { pool: Pool; queue: TaskQueue },
  timeoutMs = READINESS_TIMEOUT_MS,
): Promise<ReadinessReport> {
  const [mysql, redis] = await Promise.all([
    timed('MySQL', () => deps.pool.query({ sql: 'SELECT 1', timeout: timeoutMs }), timeoutMs),
    timed('Redis', () => deps.queue.ping(), timeoutMs),
  ]);
  return { ready: mysql.ok && redis.ok, checks: { mysql, redis } };
}
