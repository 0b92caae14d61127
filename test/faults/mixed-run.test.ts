import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create({ FAILURE_RATE: '0.2' });
});
afterEach(async () => {
  await f.cleanup();
});

it('two executors, 300 tasks of 1 s at FAILURE_RATE=0.2, one executor SIGKILLed, Redis flushed once', async () => {
  await f.start('scheduler');
  await f.start('dlq-processor');
  const victim = await f.start('executor', { CONCURRENCY: '16' });
  await f.start('executor', { CONCURRENCY: '16' });
  await f.insertTasks(300, 1);

  await victim.waitForLog(() => victim.startedTaskIds().length >= 40);
  victim.kill('SIGKILL');
  await victim.exited;

  // The flush takes the dead-letter list with it: keep what it held, as an operator's copy would.
  await new Promise((r) => setTimeout(r, 2_000));
  const beforeFlush = await f.deadLetterIds();
  await f.redis.flushAll();

  expect(await f.settled(120_000)).toBe(true);
  const counts = await f.counts('mixed run: SIGKILL + FLUSHALL at FAILURE_RATE=0.2');
  expect(counts).toMatchObject({
    tasks: 300,
    ...NOTHING_LOST,
  });
  expect(counts.completed + counts.failed).toBe(300);

  const [failed] = (await f.sql.query(
    "SELECT id, attempts FROM tasks WHERE status = 'failed' ORDER BY id",
  )) as unknown as [{ id: number; attempts: number }[]];
  const deadLetters = new Set([...beforeFlush, ...(await f.deadLetterIds())]);
  expect(failed.map((r) => Number(r.id))).toEqual([...deadLetters].sort((a, b) => a - b));
  for (const row of failed) expect(row.attempts).toBeGreaterThanOrEqual(3);
});
