import { EVENTS } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { claimedWithoutPush } from '../support/runs.js';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

it('a scheduler that died between committing a claim and pushing it: the sweeper pushes the tasks again', async () => {
  await f.insertTasks(50, 0);
  // Exactly the state such a crash leaves: the claim committed, nothing pushed.
  const claimed = await claimedWithoutPush(f.t, 50);
  expect(claimed).toHaveLength(50);
  expect(await f.t.redis.llen(f.t.keys.tasks.ready)).toBe(0);

  const scheduler = await f.start('scheduler');
  await f.start('executor');
  expect(await f.settled(30_000)).toBe(true);
  expect(scheduler.lines.some((l) => l.event === EVENTS.tasksRecovered)).toBe(true);
  const counts = await f.counts('scheduler died between commit and push');
  expect(counts).toMatchObject({
    tasks: 50,
    completed: 50,
    ...NOTHING_LOST,
  });
  expect(counts.runMoreThanOnce).toBe(0);
});

it('SIGKILL of the scheduler at random moments over several rounds loses nothing', async () => {
  await f.start('executor', { CONCURRENCY: '32' });
  for (let round = 0; round < 6; round++) {
    const scheduler = await f.start('scheduler', { SCHEDULER_BATCH_SIZE: '20' });
    await f.insertTasks(100, 0);
    await new Promise((r) => setTimeout(r, Math.random() * 150));
    scheduler.kill('SIGKILL');
    await scheduler.exited;
  }
  await f.start('scheduler');
  expect(await f.settled(60_000)).toBe(true);
  const counts = await f.counts('scheduler SIGKILLed at random, 6 rounds');
  expect(counts).toMatchObject({
    tasks: 600,
    completed: 600,
    ...NOTHING_LOST,
  });
});
