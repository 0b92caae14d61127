import { EVENTS } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

/**
 * Groups with real processes: a group's backlog does not hold back another group's few tasks,
 * and a group's limit holds across every executor, through a killed one, counted in MySQL.
 */

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

/** Counts of a group's tasks by status, from MySQL. */
async function statusesOf(group: string): Promise<Record<string, number>> {
  const [rows] = await f.sql.query<RowDataPacket[]>(
    'SELECT status, COUNT(*) AS n FROM tasks WHERE group_key = ? GROUP BY status',
    [group],
  );
  return Object.fromEntries(rows.map((r) => [String(r.status), Number(r.n)]));
}

/**
 * Samples, every 10 ms until stopped, how many of each group's tasks are `processing` in MySQL
 * (a consistent read each time): a task runs only while its row is, so the most of a group
 * running at once is at most the most sampled here.
 */
function sampleProcessing(groups: string[]): { stop(): Promise<Map<string, number>> } {
  const most = new Map(groups.map((g) => [g, 0]));
  let running = true;
  const sampling = (async () => {
    while (running) {
      const [rows] = await f.sql.query<RowDataPacket[]>(
        `SELECT group_key AS g, COUNT(*) AS n FROM tasks WHERE status = 'processing' AND group_key IN (?) GROUP BY group_key`,
        [groups],
      );
      for (const row of rows) most.set(String(row.g), Math.max(most.get(String(row.g)) ?? 0, Number(row.n)));
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await sampling;
      return most;
    },
  };
}

it('group A enqueues 50,000 tasks, then group B 100: B’s hundred complete within seconds, not after A’s backlog', async () => {
  await f.insertTasks(50_000, 1, () => ({ group: 'tenant-a' }));
  await f.start('scheduler');
  await f.start('executor', { CONCURRENCY: '100' });
  // A's backlog is being worked through: 100 tasks of a second at once.
  const warmUp = Date.now() + 2_000;
  while (Date.now() < warmUp || ((await statusesOf('tenant-a')).completed ?? 0) === 0) {
    await new Promise((r) => setTimeout(r, 100));
  }

  const posted = Date.now();
  await f.insertTasks(100, 1, () => ({ group: 'tenant-b' }));
  let b = await statusesOf('tenant-b');
  while ((b.completed ?? 0) < 100 && Date.now() - posted < 60_000) {
    await new Promise((r) => setTimeout(r, 100));
    b = await statusesOf('tenant-b');
  }
  const seconds = (Date.now() - posted) / 1000;
  const a = await statusesOf('tenant-a');
  const aLeft = 50_000 - (a.completed ?? 0);
  console.log(`[faults] B's 100 tasks completed in ${seconds.toFixed(1)} s; A's backlog then: ${aLeft} of 50,000 left`);
  expect(b).toEqual({ completed: 100 });
  // At A's pace (100 a second) its backlog takes over eight minutes: B did not wait for it.
  expect(aLeft).toBeGreaterThan(45_000);
});

it('a limit of 5 is never exceeded across executors, one of them SIGKILLed, and every task completes', async () => {
  await f.insertTasks(40, 1, () => ({ group: 'limited' }));
  await f.insertTasks(60, 1, () => ({ group: 'free' }));
  const sampler = sampleProcessing(['limited', 'free']);
  await f.start('scheduler', { GROUP_LIMITS: 'limited=5' });
  const doomed = await f.start('executor', { CONCURRENCY: '20' });
  await f.start('executor', { CONCURRENCY: '20' });
  // Killed while it runs tasks: their leases are reaped and they run again elsewhere.
  const running = () =>
    doomed.startedTaskIds().length - doomed.lines.filter((l) => l.event === EVENTS.taskCompleted).length;
  const deadline = Date.now() + 30_000;
  while (running() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  doomed.kill('SIGKILL');
  await doomed.exited;
  const lostRuns = running();

  expect(await f.settled(90_000)).toBe(true);
  const most = await sampler.stop();
  const counts = await f.counts('a group limited to 5, an executor SIGKILLed');
  console.log(
    `[faults] most processing at once: ${JSON.stringify(Object.fromEntries(most))}; runs the SIGKILL cut short: ${lostRuns}`,
  );
  expect(lostRuns).toBeGreaterThan(0);
  expect(counts).toMatchObject({ tasks: 100, completed: 100, ...NOTHING_LOST });
  expect(most.get('limited')).toBe(5);
  // The group without a limit was not held to one.
  expect(most.get('free')).toBeGreaterThan(5);
});
