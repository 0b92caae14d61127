import type { Database } from './mysql/database.js';
import type { Redis } from './redis/client.js';
import type { QueueKeys } from './redis/keys.js';

export type CheckResult = { ok: true; ms: number } | { ok: false; error: string };

export interface ReadinessReport {
  /** True when every dependency answered. */
  ready: boolean;
  checks: { mysql: CheckResult; redis: CheckResult };
}

export interface ReadinessDeps {
  pool: Database;
  redis: Redis;
  queue: { keys: QueueKeys };
}

export const READINESS_TIMEOUT_MS = 2_000;

/** How long a readiness probe key lives. */
export const READINESS_PROBE_TTL_MS = 10_000;

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

/**
 * Writes the probe keys in one transaction, as the queue writes its keys in one script: it
 * fails where the queue would, with the server's own answer (READONLY from a replica, MOVED
 * from a cluster node that does not own the queue's slot, CROSSSLOT when the keys do not
 * share one). Redis reports a refused command inside MULTI as EXECABORT; the cause is thrown.
 */
async function writeProbes(redis: Redis, keys: QueueKeys): Promise<void> {
  const transaction = redis.multi();
  for (const key of keys.readinessProbes) transaction.set(key, '1', 'PX', READINESS_PROBE_TTL_MS);
  let replies: [Error | null, unknown][] | null;
  try {
    replies = await transaction.exec();
  } catch (err) {
    const [cause] = (err as { previousErrors?: Error[] }).previousErrors ?? [];
    throw cause ?? err;
  }
  if (replies === null) throw new Error('the readiness transaction was discarded');
  for (const [err] of replies) if (err) throw err;
}

/**
 * Whether MySQL answers `SELECT 1` and Redis accepts a write to the queue's keys, both within
 * `timeoutMs`, checked at once. A Redis that answers but cannot take the queue's writes (a
 * replica, the wrong cluster node) is not ready, and the check's error says why. So is a
 * MySQL group with no writable primary (a failover under way): the check says
 * `no writable primary among h1:3306, h2:3306, h3:3306` and what each member answered.
 */
export async function checkReadiness(deps: ReadinessDeps, timeoutMs = READINESS_TIMEOUT_MS): Promise<ReadinessReport> {
  const [mysql, redis] = await Promise.all([
    timed('MySQL', () => deps.pool.ping(timeoutMs), timeoutMs),
    timed('Redis', () => writeProbes(deps.redis, deps.queue.keys), timeoutMs),
  ]);
  return { ready: mysql.ok && redis.ok, checks: { mysql, redis } };
}
