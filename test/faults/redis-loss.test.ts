import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

it('FLUSHALL in the middle of a run: the sweeper pushes every lost task again', async () => {
  await f.start('scheduler');
  await f.start('dlq-processor');
  const executor = await f.start('executor', { CONCURRENCY: '16' });
  await f.insertTasks(200, 1);
  await executor.waitForLog(() => executor.startedTaskIds().length >= 16);
  await f.redis.flushAll();

  expect(await f.settled(90_000)).toBe(true);
  const counts = await f.counts('FLUSHALL mid-run');
  expect(counts).toMatchObject({
    tasks: 200,
    completed: 200,
    ...NOTHING_LOST,
  });
});

it('Redis restarted without persistence: services reconnect and every task finishes', async () => {
  await f.start('scheduler');
  await f.start('dlq-processor');
  const executor = await f.start('executor', { CONCURRENCY: '16' });
  await f.insertTasks(100, 1);
  await executor.waitForLog(() => executor.startedTaskIds().length >= 16);
  await f.redis.restart(1_000);

  expect(await f.settled(90_000)).toBe(true);
  const counts = await f.counts('Redis restarted, data lost');
  expect(counts).toMatchObject({
    tasks: 100,
    completed: 100,
    ...NOTHING_LOST,
  });
});
