import type { ReadinessReport } from '@tasks/common';
import type { FaultEnv } from './fault-env.js';
import type { Failover } from './redis-kit.js';
import { freePort } from './redis-server.js';

export interface FailoverDrain {
  /** Tasks completed in MySQL when the kill was sent: more than none, fewer than all. */
  completedAtKill: number;
  /** Tasks completed once the failover was over: still fewer than all, or the kill came too late. */
  completedAfterFailover: number;
  failover: Failover;
  /** From the scheduler's start until no task was pending or processing. */
  drainMs: number;
  /** From the kill until no task was pending or processing. */
  recoveryMs: number;
  settled: boolean;
  /** The executor's HEALTH_PORT. */
  healthPort: number;
  /** The executor's /readyz once everything settled. */
  readiness: { status: number; body: ReadinessReport };
}

async function completed(f: FaultEnv): Promise<number> {
  const [rows] = await f.sql.query("SELECT COUNT(*) AS n FROM tasks WHERE status = 'completed'");
  return Number((rows as { n: number }[])[0]?.n);
}

/**
 * Drains `count` tasks (time 0, inserted beforehand) through the real scheduler, executor and
 * DLQ processor, and calls `kill` (a failover of the Redis the queue lives on) once
 * `killAfter` of them have completed, while the rest are still on their way.
 */
export async function drainThroughFailover(
  f: FaultEnv,
  count: number,
  killAfter: number,
  kill: () => Promise<Failover>,
): Promise<FailoverDrain> {
  const healthPort = await freePort();
  await f.insertTasks(count, 0);
  await f.start('dlq-processor');
  await f.start('executor', { HEALTH_PORT: String(healthPort), HOST: '127.0.0.1' });
  const started = Date.now();
  await f.start('scheduler');
  let completedAtKill = await completed(f);
  while (completedAtKill < killAfter) {
    await new Promise((r) => setTimeout(r, 10));
    completedAtKill = await completed(f);
  }
  const killedAt = Date.now();
  const failover = await kill();
  const completedAfterFailover = await completed(f);
  const settled = await f.settled(120_000);
  const settledAt = Date.now();
  const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
  return {
    completedAtKill,
    completedAfterFailover,
    failover,
    drainMs: settledAt - started,
    recoveryMs: settledAt - killedAt,
    settled,
    healthPort,
    readiness: { status: res.status, body: (await res.json()) as ReadinessReport },
  };
}
