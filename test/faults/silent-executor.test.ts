import { afterEach, beforeEach, expect, it } from 'vitest';
import { FAST, FaultEnv, NOTHING_LOST } from './support/fault-env.js';

/**
 * An executor that stops answering (SIGSTOP, a VM pause) right after it sent a completion to
 * MySQL: its session stays open and silent. A completion is one round trip with its commit, so
 * it holds no row lock while the executor is away; its leases run out, another executor runs
 * those tasks again, and every outcome is written within seconds.
 */

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create({ DB_LOCK_WAIT_TIMEOUT_S: '5' });
});
afterEach(async () => {
  await f.cleanup();
});

it('an executor paused mid-completion stalls the other executors for seconds at most', async () => {
  await f.start('scheduler');
  const frozen = f.mysqlProxy.freezeAfter("UPDATE tasks SET status = 'completed'");
  const paused = await f.start('executor', { CONCURRENCY: '50' });
  await f.insertTasks(400, 0);
  await frozen;
  paused.kill('SIGSTOP');
  // Another executor, straight to MySQL (not through the frozen proxy).
  await f.start('executor', { CONCURRENCY: '50', MYSQL_URL: f.t.env.MYSQL_URL as string });
  const settled = await f.settled(Number(FAST.LEASE_MS) + 15_000);
  paused.kill('SIGCONT');
  // The paused executor's frozen connection is cut, as its peer would eventually close it.
  await f.mysqlProxy.cut();
  await f.mysqlProxy.restore();
  expect(settled).toBe(true);
  expect(await f.counts('executor paused mid-completion')).toMatchObject({
    tasks: 400,
    completed: 400,
    ...NOTHING_LOST,
  });
});
