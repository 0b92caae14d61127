import type { AddressInfo } from 'node:net';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../services/task-insert/src/app.js';
import { GLOBAL_SQL_MODES, globalSqlMode } from '../support/global-sql-mode.js';
import { createTestEnv, type TestEnv } from '../support/test-env.js';

/**
 * Values are data whatever the server's global `sql_mode`: the services pin their sessions'
 * mode, so a server set to NO_BACKSLASH_ESCAPES (where a backslash no longer escapes a quote),
 * ANSI_QUOTES or no mode at all neither turns a message into SQL nor refuses plain inserts.
 * The global mode is the server's, shared by every client: these tests run among the fault
 * tests, one file at a time, and set it back. That the store's own sessions run in the pinned
 * mode is the store's own test: packages/common/test/faults/session-sql-mode.test.ts.
 */

const CRAFTED_MESSAGES = [
  "' IS NULL,NULL,NULL);DROP TABLE canary;UPDATE tasks SET status=0x6661696c6564,attempts=77 WHERE id=1;" +
    "INSERT INTO tasks (data) SELECT JSON_OBJECT('message', (SELECT GROUP_CONCAT(User) FROM mysql.user), 'time', 0);#",
  "\\' IS NULL,NULL,NULL);DROP TABLE canary;#",
  "\\\\'); DROP TABLE canary; -- ",
  'a message ending in a backslash \\',
  '"; DROP TABLE canary; #',
  "x' OR '1'='1",
];

const CRAFTED_KEYS = ["k' OR '1'='1", "\\'; DROP TABLE canary; #", '"); DROP TABLE canary; --'];

const globalMode = globalSqlMode();

describe.each(GLOBAL_SQL_MODES)('with the global sql_mode %s', (_name, mode) => {
  let t: TestEnv;

  beforeAll(async () => {
    await globalMode.set(mode);
    // New sessions from here on start in that mode.
    t = await createTestEnv();
    await t.sql.query('CREATE TABLE canary (id INT PRIMARY KEY)');
  });
  afterAll(async () => {
    await t.cleanup();
    await globalMode.restore();
  });

  it('stores plain tasks and crafted ones verbatim, and runs nothing else', async () => {
    const server = createApp(t.ctx).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const post = async (body: unknown, headers: Record<string, string> = {}) => {
      const res = await fetch(`${base}/tasks/`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as { id: number } };
    };
    try {
      await insertAndCheck(post);
    } finally {
      server.close();
    }
  });

  async function insertAndCheck(
    post: (body: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: { id: number } }>,
  ) {
    const plain = await post({ message: 'spiderman 3', time: 3 });
    expect(plain.status).toBe(201);
    const sentinel = plain.body.id as number;

    const accepted: { id: number; message: string }[] = [];
    for (const message of CRAFTED_MESSAGES) {
      const res = await post({ message, time: 0 });
      expect([201, 400]).toContain(res.status);
      if (res.status === 201) accepted.push({ id: res.body.id, message });
    }
    for (const [i, key] of CRAFTED_KEYS.entries()) {
      const message = `keyed ${i}`;
      const res = await post({ message, time: 0 }, { 'Idempotency-Key': key });
      expect([201, 400]).toContain(res.status);
      if (res.status === 201) {
        accepted.push({ id: res.body.id, message });
        const [[row]] = await t.sql.query<RowDataPacket[]>('SELECT idempotency_key AS k FROM tasks WHERE id = ?', [
          res.body.id,
        ]);
        expect(row?.k).toBe(key);
      }
    }
    // Plain bodies are never refused for the server's mode: here every crafted one is stored too.
    expect(accepted).toHaveLength(CRAFTED_MESSAGES.length + CRAFTED_KEYS.length);

    for (const { id, message } of accepted) expect((await t.store.getTask(id))?.data).toMatchObject({ message });
    await t.sql.query('SELECT COUNT(*) FROM canary');
    expect(await t.store.getTask(sentinel)).toMatchObject({ status: 'pending', attempts: 0 });
    const [[count]] = await t.sql.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM tasks');
    expect(Number(count?.n)).toBe(1 + accepted.length);
  }
});
