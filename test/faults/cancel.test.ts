import { fileURLToPath } from 'node:url';
import { EVENTS } from '@tasks/common';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { until } from '../support/wait.js';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

/**
 * A cancel of a task whose executor was SIGKILLed while running it: the task ends cancelled at
 * once, and when the lost lease is reaped and its message fetched again, the run is dismissed:
 * its handler never runs again, and nothing is left behind in Redis.
 */

const HANDLERS = fileURLToPath(new URL('../support/fixtures/handlers.mjs', import.meta.url));

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create({ HANDLERS });
});
afterEach(async () => {
  await f.cleanup();
});

it('a cancel while the executor holding the task is SIGKILLed: cancelled, never run again, nothing left', async () => {
  await f.start('scheduler');
  const holder = await f.start('executor');
  const [inserted] = await f.sql.query<ResultSetHeader>('INSERT INTO tasks (type, data) VALUES (?, ?)', [
    'echo',
    JSON.stringify({ ms: 60_000, result: 'never' }),
  ]);
  const id = inserted.insertId;
  await f.t.store.recount();
  await f.t.store.announceInserted();
  await holder.waitForLog((l) => l.event === EVENTS.taskStarted && l.taskId === id, 20_000);
  holder.kill('SIGKILL');
  await holder.exited;

  expect(await f.t.store.cancel(id)).toEqual({ cancelled: true, id, was: 'processing' });
  const survivor = await f.start('executor');
  // The lease runs out, the sweeper returns the message, the survivor fetches it and dismisses it.
  await survivor.waitForLog((l) => l.event === EVENTS.runDismissed, 30_000);
  await until(async () => {
    const { queue } = await f.t.store.stats();
    return queue.ready + queue.inflight + queue.delayed === 0;
  }, 10_000);
  expect(survivor.startedTaskIds()).not.toContain(id);
  const [[row]] = await f.sql.query<RowDataPacket[]>('SELECT status, result, attempts FROM tasks WHERE id = ?', [id]);
  expect(row).toMatchObject({ status: 'cancelled', result: null });
  // Its presence went with its message: nothing looks for it any more.
  expect(await f.t.redis.sismember(f.t.keys.present, String(id))).toBe(0);
  expect(await f.counts('cancel while the executor is SIGKILLed')).toMatchObject({
    tasks: 1,
    cancelled: 1,
    ...NOTHING_LOST,
  });
});
