import { EVENTS } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create({ SCHEDULER_BATCH_SIZE: '50' });
});
afterEach(async () => {
  await f.cleanup();
});

async function post(port: number, i: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/tasks/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: `task ${i}`, time: 0 }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

it('three schedulers, two APIs and three executors on one database: every task claimed exactly once', async () => {
  for (let i = 0; i < 3; i++) await f.start('scheduler');
  for (let i = 0; i < 3; i++) await f.start('executor', { CONCURRENCY: '64' });
  await f.start('dlq-processor');
  const apis = [await f.start('task-insert'), await f.start('task-insert')];
  const ports = apis.map((api) => Number(api.lines.find((l) => l.event === EVENTS.started)?.port));

  // 1,500 tasks through both APIs, 30 requests at a time, while the schedulers claim them.
  const total = 1_500;
  const ids: number[] = [];
  for (let i = 0; i < total; i += 30) {
    ids.push(...(await Promise.all(Array.from({ length: 30 }, (_, j) => post(ports[(i + j) % 2]!, i + j)))));
  }
  expect(new Set(ids).size).toBe(total);

  expect(await f.settled(60_000)).toBe(true);
  const counts = await f.counts('3 schedulers, 2 APIs, 3 executors');
  expect(counts).toMatchObject({ tasks: total, completed: total, ...NOTHING_LOST });

  // Every task was claimed once: one pending → processing change each, all in their first run.
  const [claims] = (await f.sql.query(
    `SELECT COUNT(*) AS changes, COUNT(DISTINCT task_id) AS tasks FROM task_status_changes
      WHERE old_status = 'pending' AND new_status = 'processing'`,
  )) as unknown as [{ changes: number; tasks: number }[]];
  expect(claims[0]).toEqual({ changes: total, tasks: total });
  const [runs] = (await f.sql.query('SELECT DISTINCT run FROM tasks')) as unknown as [{ run: number }[]];
  expect(runs).toEqual([{ run: 1 }]);
  // The claims were shared: more than one scheduler dispatched tasks.
  const claimed = f.services
    .filter((s) => s.name === 'scheduler')
    .map((s) => s.lines.filter((l) => l.event === EVENTS.tasksDispatched).length);
  expect(claimed.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
});
