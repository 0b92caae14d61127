import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GLOBAL_SQL_MODES, globalSqlMode } from '../../../../test/support/global-sql-mode.js';
import { createTestEnv, type TestEnv } from '../support/store-env.js';

/**
 * The store's sessions run in the SQL mode they pin (see SESSION_SQL_MODE), whatever the
 * server's global `sql_mode`: a server set to NO_BACKSLASH_ESCAPES, ANSI_QUOTES or no mode at
 * all does not reach them. (That values stay data under such a server, through the API, is
 * test/faults/sql-mode.test.ts.) The global mode is the server's, shared by every client:
 * these tests run among the fault tests, one file at a time, and set it back.
 */

const globalMode = globalSqlMode();

describe.each(GLOBAL_SQL_MODES)('with the global sql_mode %s', (_name, mode) => {
  let t: TestEnv;

  beforeAll(async () => {
    await globalMode.set(mode);
    // New sessions from here on start in that mode.
    t = await createTestEnv();
  });
  afterAll(async () => {
    await t.cleanup();
    await globalMode.restore();
  });

  it('runs every session of the store in the pinned mode', async () => {
    const [[row]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT @@SESSION.sql_mode AS mode');
    expect(String(row?.mode)).not.toMatch(/NO_BACKSLASH_ESCAPES|ANSI_QUOTES/);
    expect(String(row?.mode)).toMatch(/STRICT_TRANS_TABLES/);
  });
});
