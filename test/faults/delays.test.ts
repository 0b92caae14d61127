import { fileURLToPath } from 'node:url';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

/**
 * Delayed tasks with real processes: kept in MySQL until due (MySQL's clock), so a scheduler
 * killed meanwhile, a Redis that loses everything, or hosts whose clocks are minutes off never
 * lose one, run one early, or run one twice.
 */

const CLOCK_OFFSET = fileURLToPath(new URL('./support/clock-offset.mjs', import.meta.url));
const FIVE_MINUTES = 5 * 60_000;

function skewed(offsetMs: number): Record<string, string> {
  return { NODE_OPTIONS: `--import=${CLOCK_OFFSET}`, CLOCK_OFFSET_MS: String(offsetMs) };
}

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

/** Per task, by MySQL's clock: how long after its due time it was first claimed (ms; negative: early). */
async function lateness(): Promise<number[]> {
  const [rows] = await f.sql.query<RowDataPacket[]>(
    'SELECT TIMESTAMPDIFF(MICROSECOND, run_at, dispatched_at) DIV 1000 AS ms FROM tasks ORDER BY id',
  );
  return rows.map((r) => Number(r.ms));
}

it('delayed tasks across a scheduler SIGKILL and a Redis FLUSHALL: each runs once, none early', async () => {
  // Due over the next 1 to 4 s; some given as an instant, some as a delay.
  await f.insertTasks(60, 0, (i) =>
    i % 2 === 0 ? { delayMs: 1_000 + 50 * i } : { runAt: new Date(Date.now() + 1_000 + 50 * i) },
  );
  const scheduler = await f.start('scheduler');
  await f.start('executor');
  await new Promise((r) => setTimeout(r, 1_800));
  scheduler.kill('SIGKILL');
  await scheduler.exited;
  await f.redis.flushAll();
  await new Promise((r) => setTimeout(r, 1_000));
  await f.start('scheduler');

  expect(await f.settled(30_000)).toBe(true);
  const counts = await f.counts('delayed tasks across a scheduler SIGKILL and a FLUSHALL');
  expect(counts).toMatchObject({ tasks: 60, completed: 60, ...NOTHING_LOST, runMoreThanOnce: 0 });
  // dispatched_at is the last claim's: a task whose message FLUSHALL took was claimed again, later still.
  const late = await lateness();
  expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
});

it('hosts five minutes ahead and behind: no delayed task is claimed early, each about on time', async () => {
  await f.start('scheduler', skewed(FIVE_MINUTES));
  await f.start('scheduler', skewed(-FIVE_MINUTES));
  await f.start('executor', skewed(FIVE_MINUTES));
  await f.insertTasks(40, 0, (i) => ({ delayMs: 1_500 + 25 * i }));

  expect(await f.settled(30_000)).toBe(true);
  const counts = await f.counts('delayed tasks, hosts five minutes off');
  expect(counts).toMatchObject({ tasks: 40, completed: 40, ...NOTHING_LOST, runMoreThanOnce: 0 });
  const late = await lateness();
  console.log(`[faults] claimed after due (ms): min ${Math.min(...late)}, max ${Math.max(...late)}`);
  expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
  // Within a second of their time (the scheduler waits until the next is due, by MySQL's clock).
  expect(Math.max(...late)).toBeLessThan(1_000);
  // The shift took: the schedulers' log lines carry their own (wrong) times.
  const [ahead, behind] = f.services;
  expect(Number(ahead?.lines.at(-1)?.time) - Number(behind?.lines.at(-1)?.time)).toBeGreaterThan(FIVE_MINUTES);
});
