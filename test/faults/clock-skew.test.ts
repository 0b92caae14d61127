import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

const CLOCK_OFFSET = fileURLToPath(new URL('./support/clock-offset.mjs', import.meta.url));
const FIVE_MINUTES = 5 * 60_000;

/** The environment of a service whose host clock is `offsetMs` off. */
function skewed(offsetMs: number): Record<string, string> {
  return { NODE_OPTIONS: `--import=${CLOCK_OFFSET}`, CLOCK_OFFSET_MS: String(offsetMs) };
}

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create({ LEASE_MS: '1500' });
});
afterEach(async () => {
  await f.cleanup();
});

it('hosts whose clocks are minutes apart agree on every lease: each task runs once', async () => {
  // Tasks of 3 s: each lease (1.5 s) must be renewed twice while the task runs.
  await f.insertTasks(20, 3);
  await f.start('scheduler', skewed(-FIVE_MINUTES));
  await f.start('executor', { ...skewed(FIVE_MINUTES), CONCURRENCY: '10' });
  await f.start('executor', { ...skewed(-FIVE_MINUTES), CONCURRENCY: '10' });
  await f.start('dlq-processor', skewed(FIVE_MINUTES));

  expect(await f.settled(60_000)).toBe(true);
  const counts = await f.counts('executors and sweeper 5 minutes apart');
  expect(counts).toMatchObject({ tasks: 20, completed: 20, ...NOTHING_LOST, runMoreThanOnce: 0 });
  const [rows] = await f.sql.query('SELECT DISTINCT attempts FROM tasks');
  expect(rows).toEqual([{ attempts: 1 }]);
  // The shift took: the services' log lines carry their own (wrong) time.
  const executor = f.services[1]!;
  expect(Math.abs(Number(executor.lines.at(-1)?.time) - Date.now())).toBeGreaterThan(FIVE_MINUTES - 60_000);
});
