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

it('poison messages pushed by hand are dead-lettered with the reason, and the executor keeps running', async () => {
  const executor = await f.start('executor');
  await f.start('dlq-processor');
  const ready = f.t.keys.tasks.ready;
  await f.t.redis.lpush(ready, 'hello', '{"id":1,"message":"no time"}', '[1,2,3]');
  await f.start('scheduler');
  await f.insertTasks(20, 0);

  expect(await f.settled(30_000)).toBe(true);
  const letters = (await f.t.redis.lrange(f.t.keys.deadLetters, 0, -1)).map((e) => JSON.parse(e));
  expect(letters.map((l) => l.raw).sort()).toEqual(['[1,2,3]', 'hello', '{"id":1,"message":"no time"}'].sort());
  for (const letter of letters) expect(letter.error).toMatch(/^invalid message: /);
  expect(executor.running).toBe(true);
  const counts = await f.counts('poison messages');
  expect(counts).toMatchObject({
    tasks: 20,
    completed: 20,
    ...NOTHING_LOST,
  });
});

it('a message pushed twice runs twice but its task finishes once and never changes after', async () => {
  await f.insertTasks(10, 0);
  // Claimed in MySQL, and every message pushed by hand twice, as a hand-made duplicate would be.
  const messages = (await claimedWithoutPush(f.t, 10)).map((m) => JSON.stringify(m));
  expect(messages).toHaveLength(10);
  await f.t.redis.lpush(f.t.keys.tasks.ready, ...messages, ...messages);
  await f.start('executor', { CONCURRENCY: '4' });
  await f.start('dlq-processor');

  expect(await f.settled(30_000)).toBe(true);
  // Wait for the duplicates to be run too, then check nothing changed.
  const executor = f.services[0]!;
  await executor.waitForLog(() => executor.startedTaskIds().length >= 20);
  await executor.waitForLog(() => executor.lines.filter((l) => l.event === EVENTS.taskCompleted).length >= 20);
  const counts = await f.counts('every message pushed twice');
  expect(counts).toMatchObject({
    tasks: 10,
    completed: 10,
    runMoreThanOnce: 10,
    ...NOTHING_LOST,
  });
  expect(await f.t.store.depths()).toMatchObject({ ready: 0, inflight: 0 });
});
