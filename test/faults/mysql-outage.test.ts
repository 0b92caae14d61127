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

async function post(port: number, body: unknown) {
  const started = Date.now();
  const res = await fetch(`http://127.0.0.1:${port}/tasks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms: Date.now() - started };
}

it('MySQL cut off mid-run: the API answers 503 quickly, and everything recovers when it is back', async () => {
  const api = await f.start('task-insert');
  const port = Number((await api.waitForLog((l) => l.event === EVENTS.started)).port);
  await f.start('scheduler');
  await f.start('dlq-processor');
  const executor = await f.start('executor', { CONCURRENCY: '16' });
  await f.insertTasks(100, 1);
  await executor.waitForLog(() => executor.startedTaskIds().length >= 16);

  await f.mysqlProxy.cut();
  const during = await post(port, { message: 'while MySQL is down', time: 0 });
  expect(during.status).toBe(503);
  expect(during.body).toMatchObject({ error: 'unavailable' });
  expect(during.ms).toBeLessThan(5_000);
  await new Promise((r) => setTimeout(r, 2_000));
  await f.mysqlProxy.restore();

  const after = await post(port, { message: 'after MySQL is back', time: 0 });
  expect(after.status).toBe(201);
  expect(await f.settled(90_000)).toBe(true);
  const counts = await f.counts('MySQL cut for 2 s');
  expect(counts).toMatchObject({
    tasks: 101,
    completed: 101,
    ...NOTHING_LOST,
  });
  expect(api.running).toBe(true);
});

it('every MySQL connection KILLed mid-run: the services reconnect and every task finishes', async () => {
  await f.start('scheduler');
  await f.start('dlq-processor');
  const executor = await f.start('executor', { CONCURRENCY: '16' });
  await f.insertTasks(100, 1);
  await executor.waitForLog(() => executor.startedTaskIds().length >= 16);

  // Every connection of the services, again and again for a second and a half.
  const database = new URL(f.t.config.MYSQL_URL).pathname.slice(1);
  let killed = 0;
  for (let round = 0; round < 6; round++) {
    const [rows] = (await f.sql.query(
      'SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()',
      [database],
    )) as unknown as [{ id: number }[]];
    for (const row of rows) {
      await f.sql
        .query(`KILL ${Number(row.id)}`)
        .then(() => killed++)
        .catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(killed).toBeGreaterThan(1);

  expect(await f.settled(90_000)).toBe(true);
  const counts = await f.counts(`${killed} MySQL connections killed over 1.5 s`);
  expect(counts).toMatchObject({
    tasks: 100,
    completed: 100,
    ...NOTHING_LOST,
  });
});
