import { EVENTS } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

it('SIGKILL of an executor mid-task: another executor finishes its tasks after the lease expires', async () => {
  await f.start('scheduler');
  const victim = await f.start('executor', { CONCURRENCY: '8' });
  await f.insertTasks(40, 1);
  // Let the victim take tasks, then kill it while they run.
  await victim.waitForLog(() => victim.startedTaskIds().length >= 4);
  const started = new Set(victim.startedTaskIds());
  victim.kill('SIGKILL');
  await victim.exited;
  const survivor = await f.start('executor', { CONCURRENCY: '8' });

  expect(await f.settled(60_000)).toBe(true);
  const counts = await f.counts('executor SIGKILL');
  expect(counts).toMatchObject({
    tasks: 40,
    completed: 40,
    ...NOTHING_LOST,
  });
  // The killed runs were counted as attempts, so no run is unaccounted for.
  expect(counts.runsBeyondAttempts).toBe(0);
  const rerun = survivor.startedTaskIds().filter((id) => started.has(id));
  expect(rerun.length).toBeGreaterThan(0);
});

it('SIGTERM of an executor mid-task: it exits 0 within the shutdown timeout and nothing is lost', async () => {
  await f.start('scheduler');
  const executor = await f.start('executor', { CONCURRENCY: '4', SHUTDOWN_TIMEOUT_MS: '1000' });
  await f.insertTasks(8, 3);
  await executor.waitForLog((l) => l.event === EVENTS.taskStarted);
  const signalledAt = Date.now();
  executor.kill('SIGTERM');
  const exit = await executor.exited;
  const tookMs = Date.now() - signalledAt;
  expect(exit).toEqual({ code: 0, signal: null });
  expect(tookMs).toBeLessThan(1_000 + 2_000);
  expect(executor.lines.some((l) => l.event === EVENTS.tasksHandedBack)).toBe(true);

  await f.start('executor', { CONCURRENCY: '8' });
  expect(await f.settled(60_000)).toBe(true);
  const counts = await f.counts('executor SIGTERM');
  expect(counts).toMatchObject({
    tasks: 8,
    completed: 8,
    ...NOTHING_LOST,
  });
});

it('SIGTERM lets running tasks finish when they fit in the shutdown timeout', async () => {
  await f.start('scheduler');
  const executor = await f.start('executor', { CONCURRENCY: '4', SHUTDOWN_TIMEOUT_MS: '5000' });
  await f.insertTasks(4, 1);
  await executor.waitForLog((l) => l.event === EVENTS.taskStarted);
  executor.kill('SIGTERM');
  expect(await executor.exited).toEqual({ code: 0, signal: null });
  const finishedByIt = executor.lines.filter((l) => l.event === EVENTS.taskCompleted).length;
  expect(finishedByIt).toBe(executor.startedTaskIds().length);

  await f.start('executor');
  expect(await f.settled(30_000)).toBe(true);
  const counts = await f.counts('executor SIGTERM, tasks finish');
  expect(counts).toMatchObject({
    completed: 4,
    runMoreThanOnce: 0,
    ...NOTHING_LOST,
  });
});
