import { EVENTS } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { FaultEnv, NOTHING_LOST } from './support/fault-env.js';

/**
 * MySQL refuses writes for a while (a Group Replication member demoted, a server put in
 * read_only for maintenance): error 1290, here raised by triggers on this test's own `tasks`
 * while a flag is set, so the rest of the server is untouched. A refused write is transient:
 * it never turns a run that succeeded into a dead letter, never strands a task `processing`,
 * and the API answers 503 meanwhile.
 */

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create({ FAILURE_RATE: '0.2', MAX_ATTEMPTS: '2', RETRY_BACKOFF_MS: '20' });
  await f.sql.query('CREATE TABLE read_only_window (refusing BOOLEAN NOT NULL)');
  await f.sql.query('INSERT INTO read_only_window VALUES (FALSE)');
  for (const [name, event] of [
    ['refuse_inserts', 'INSERT'],
    ['refuse_updates', 'UPDATE'],
  ]) {
    await f.sql.query(`CREATE TRIGGER ${name} BEFORE ${event} ON tasks FOR EACH ROW
      BEGIN
        IF (SELECT refusing FROM read_only_window) THEN
          SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1290,
            MESSAGE_TEXT = 'The MySQL server is running with the --super-read-only option so it cannot execute this statement';
        END IF;
      END`);
  }
});
afterEach(async () => {
  await f.cleanup();
});

const setRefusing = (on: boolean) => f.sql.query('UPDATE read_only_window SET refusing = ?', [on]);

it('a read-only window under load: every accepted task ends final, no success turned into a failure, 503 meanwhile', async () => {
  const api = await f.start('task-insert');
  const port = Number((await api.waitForLog((l) => l.event === EVENTS.started)).port);
  await f.start('scheduler');
  await f.start('executor', { CONCURRENCY: '20' });
  await f.start('dlq-processor');

  const answers: { status: number; phase: string; id?: number }[] = [];
  let phase = 'before';
  // Four clients, each sending its next insert as soon as the last is answered.
  const client = async (c: number) => {
    for (let i = 0; phase !== 'done'; i++) {
      const sent = phase;
      const res = await fetch(`http://127.0.0.1:${port}/tasks/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ message: `task ${c}.${i}`, time: 0 }),
      });
      const body = (await res.json()) as { id?: number };
      answers.push({ status: res.status, phase: sent, id: body.id });
    }
  };
  const inserting = Promise.all([0, 1, 2, 3].map(client));
  await new Promise((r) => setTimeout(r, 2_000));
  phase = 'read-only';
  await setRefusing(true);
  await new Promise((r) => setTimeout(r, 5_000));
  await setRefusing(false);
  phase = 'after';
  await new Promise((r) => setTimeout(r, 2_000));
  phase = 'done';
  await inserting;

  expect(await f.settled(30_000)).toBe(true);
  const accepted = answers.filter((a) => a.status === 201);
  expect(answers.filter((a) => a.status !== 201 && a.status !== 503)).toEqual([]);
  expect(answers.filter((a) => a.phase === 'read-only' && a.status === 503).length).toBeGreaterThan(0);
  expect(accepted.length).toBeGreaterThan(0);
  const counts = await f.counts('read-only window');
  expect(counts).toMatchObject({ tasks: accepted.length, ...NOTHING_LOST });
  // A failure is only ever the work's own, never a write the database refused.
  const [refused] = await f.sql.query<RowDataPacket[]>(
    "SELECT id, last_error FROM tasks WHERE status = 'failed' AND last_error NOT LIKE 'simulated failure%'",
  );
  expect(refused).toEqual([]);
});
