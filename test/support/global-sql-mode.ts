import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, inject } from 'vitest';

/**
 * The server's global `sql_mode` for the fault tests that set it: it is the server's, shared by
 * every client, so those tests run among the fault tests, one file at a time, and set it back.
 */

/** The global modes a session must not depend on, each made from the server's own mode. */
export const GLOBAL_SQL_MODES: [name: string, mode: (original: string) => string][] = [
  ['NO_BACKSLASH_ESCAPES', (mode) => [mode, 'NO_BACKSLASH_ESCAPES'].filter(Boolean).join(',')],
  ['ANSI_QUOTES', (mode) => [mode, 'ANSI_QUOTES'].filter(Boolean).join(',')],
  ["''", () => ''],
];

/**
 * Keeps an admin connection on TEST_MYSQL_URL's server for the file, and sets the global mode
 * back to what it was after it. `set` applies one of GLOBAL_SQL_MODES (sessions opened after it
 * start in that mode); `restore` sets the server's own back.
 */
export function globalSqlMode(): {
  set(mode: (original: string) => string): Promise<void>;
  restore(): Promise<void>;
} {
  let admin: mysql.Connection;
  let original: string;
  beforeAll(async () => {
    const url = new URL(inject('mysqlUrl'));
    url.pathname = '/';
    admin = await mysql.createConnection({ uri: url.toString() });
    const [[row]] = await admin.query<RowDataPacket[]>('SELECT @@GLOBAL.sql_mode AS mode');
    original = String(row?.mode);
  });
  afterAll(async () => {
    await admin.query('SET GLOBAL sql_mode = ?', [original]);
    await admin.end();
  });
  return {
    async set(mode) {
      await admin.query('SET GLOBAL sql_mode = ?', [mode(original)]);
    },
    async restore() {
      await admin.query('SET GLOBAL sql_mode = ?', [original]);
    },
  };
}
