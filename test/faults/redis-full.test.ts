import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

it('Redis full (maxmemory reached, noeviction) mid-run: nothing is lost, and everything finishes once there is room', async () => {
  await f.start('scheduler');
  await f.start('dlq-processor');
  const executor = await f.start('executor', { CONCURRENCY: '16' });
  await f.insertTasks(100, 1);
  await executor.waitForLog(() => executor.startedTaskIds().length >= 16);

  const admin = f.redis.client();
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  await admin.config('SET', 'maxmemory', String(used));
  // While full, writes fail with OOM: more inserts arrive, and the services keep going.
  await f.insertTasks(50, 0);
  await new Promise((r) => setTimeout(r, 3_000));
  const refused = f.services.some((s) => s.lines.some((l) => JSON.stringify(l).includes('OOM')));
  await admin.config('SET', 'maxmemory', '0');
  admin.disconnect();

  expect(refused).toBe(true);
  expect(await f.settled(60_000)).toBe(true);
  const counts = await f.counts('Redis full for 3 s');
  expect(counts).toMatchObject({
    tasks: 150,
    completed: 150,
    ...NOTHING_LOST,
  });
});
