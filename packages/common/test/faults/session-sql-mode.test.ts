import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../support/store-env.js';

/**
 * The store's sessions run in the SQL mode they pin (see SESSION_SQL_MODE), whatever the
 * server's global `sql_mode`: a server set to NO_BACKSLASH_ESCAPES, ANSI_QUOTES or no mode at
 * all does not reach them. (That values stay data under such a server, through the API, is
 * test/faults/sql-mode.test.ts.) The global mode is the server's, shared by every client:
 * these tests run among the fault tests, one file at a time, and set it back.
 */

async function adminConnection(): Promise<mysql.Connection> {
  const url = new URL(inject('mysqlUrl'));
  url.pathname = '/';
  return mysql.createConnection({ uri: url.toString() });
}

let admin: mysql.Connection;
let originalMode: string;

beforeAll(async () => {
  admin = await adminConnection();
  const [[row]] = await admin.query<RowDataPacket[]>('SELECT @@GLOBAL.sql_mode AS mode');
  originalMode = String(row?.mode);
});
afterAll(async () => {
  await admin.query('SET GLOBAL sql_mode = ?', [originalMode]);
  await admin.end();
});

describe.each([
  ['NO_BACKSLASH_ESCAPES', (mode: string) => [mode, 'NO_BACKSLASH_ESCAPES'].filter(Boolean).join(',')],
  ['ANSI_QUOTES', (mode: string) => [mode, 'ANSI_QUOTES'].filter(Boolean).join(',')],
  ["''", () => ''],
])('with the global sql_mode %s', (_name, globalMode) => {
  let t: TestEnv;

  beforeAll(async () => {
    await admin.query('SET GLOBAL sql_mode = ?', [globalMode(originalMode)]);
    // New sessions from here on start in that mode.
    t = await createTestEnv();
  });
  afterAll(async () => {
    await t.cleanup();
    await admin.query('SET GLOBAL sql_mode = ?', [originalMode]);
  });

  it('runs every session of the store in the pinned mode', async () => {
    const [[row]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT @@SESSION.sql_mode AS mode');
    expect(String(row?.mode)).not.toMatch(/NO_BACKSLASH_ESCAPES|ANSI_QUOTES/);
    expect(String(row?.mode)).toMatch(/STRICT_TRANS_TABLES/);
  });
});
