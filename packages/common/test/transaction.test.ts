import { isCommitOutcomeUnknown, TransactionStoppedError } from '@tasks/common';
import mysql, { type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test/support/wait.js';
import { databaseSettings } from '../src/context.js';
import { Database } from '../src/mysql/database.js';
import { oneTrip, transaction } from '../src/mysql/transaction.js';
import { insertTask } from '../src/tasks/insert-tasks.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;
beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

/** The attempts of the tasks `ids`, in id order, as another connection reads them. */
async function attemptsOf(...ids: number[]): Promise<number[]> {
  const [rows] = await t.ctx.pool.query<RowDataPacket[]>('SELECT attempts FROM tasks WHERE id IN (?) ORDER BY id', [
    ids,
  ]);
  return rows.map((r) => Number(r.attempts));
}

describe('transaction', () => {
  it('runs again a transaction the server rolled back for a deadlock, so both sides commit', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const b = await insertTask(t.ctx.pool, { message: 'b', time: 0 });
    let bothLockedFirst: () => void = () => undefined;
    const firstLocks = new Promise<void>((resolve) => {
      let n = 0;
      bothLockedFirst = () => {
        if (++n === 2) resolve();
      };
    });
    const runs = { ab: 0, ba: 0 };
    // Each locks one row, waits until the other has locked its own, then wants the other's.
    const crossing = (first: number, second: number, key: 'ab' | 'ba') =>
      transaction(t.ctx.pool, async (trip) => {
        runs[key]++;
        await trip([{ sql: 'UPDATE tasks SET attempts = attempts + 1 WHERE id = ?', values: [first] }]);
        if (runs[key] === 1) {
          bothLockedFirst();
          await firstLocks;
        }
        await trip([{ sql: 'UPDATE tasks SET attempts = attempts + 1 WHERE id = ?', values: [second] }]);
      });
    await Promise.all([crossing(a, b, 'ab'), crossing(b, a, 'ba')]);
    // One of them was chosen as the deadlock's victim and ran twice; both committed once.
    expect(runs.ab + runs.ba).toBe(3);
    expect(await attemptsOf(a, b)).toEqual([2, 2]);
  });
});

describe('oneTrip', () => {
  it('commits every statement together and answers each one', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const b = await insertTask(t.ctx.pool, { message: 'b', time: 0 });
    const [first, second, read] = await oneTrip(t.ctx.pool, [
      { sql: 'UPDATE tasks SET attempts = ? WHERE id = ?', values: [5, a] },
      { sql: 'UPDATE tasks SET attempts = ? WHERE id IN (?)', values: [7, [b]] },
      { sql: 'SELECT id FROM tasks WHERE attempts = ?', values: [7] },
    ]);
    expect((first as ResultSetHeader).affectedRows).toBe(1);
    expect((second as ResultSetHeader).affectedRows).toBe(1);
    expect((read as RowDataPacket[]).map((r) => Number(r.id))).toContain(b);
    expect(await attemptsOf(a, b)).toEqual([5, 7]);
  });

  it('rolls back the statements before the one that fails, throws its error, and leaves the connection clean', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const failing = oneTrip(t.ctx.pool, [
      { sql: 'UPDATE tasks SET attempts = 9 WHERE id = ?', values: [a] },
      { sql: 'INSERT INTO tasks (id, data) VALUES (?, ?)', values: [a, '{}'] },
      { sql: 'UPDATE tasks SET attempts = 10 WHERE id = ?', values: [a] },
    ]);
    await expect(failing).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });
    expect(await attemptsOf(a)).toEqual([0]);
    // No session of this test's database is left inside the transaction (which holds the row's lock).
    const [[row]] = await t.ctx.pool.query<RowDataPacket[]>(
      `SELECT COUNT(*) AS open FROM information_schema.innodb_trx AS x
         JOIN information_schema.PROCESSLIST AS p ON p.ID = x.trx_mysql_thread_id
        WHERE p.DB = DATABASE() AND p.ID <> CONNECTION_ID()`,
    );
    expect(Number(row?.open)).toBe(0);
  });

  it('is values, never text: a value with quotes, semicolons and newlines is stored as given', async () => {
    const message = "x'; DROP TABLE tasks; --\n;\nSELECT 1";
    const [inserted] = await oneTrip(t.ctx.pool, [
      { sql: 'INSERT INTO tasks (data) VALUES (?)', values: [JSON.stringify({ message, time: 0 })] },
    ]);
    const id = (inserted as ResultSetHeader).insertId;
    const [[row]] = await t.ctx.pool.query<RowDataPacket[]>('SELECT data FROM tasks WHERE id = ?', [id]);
    const data = typeof row?.data === 'string' ? JSON.parse(row.data) : row?.data;
    expect(data.message).toBe(message);
  });
});

describe('transaction trips', () => {
  it('sends trips on one transaction, each seeing the ones before, and commits after work when no trip did', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const seen = await transaction(t.ctx.pool, async (trip) => {
      await trip([{ sql: 'UPDATE tasks SET attempts = attempts + 1 WHERE id = ?', values: [a] }]);
      const [rows] = (await trip([{ sql: 'SELECT attempts FROM tasks WHERE id = ?', values: [a] }])) as [
        RowDataPacket[],
      ];
      // Not committed yet: another connection still reads the old value.
      expect(await attemptsOf(a)).toEqual([0]);
      return Number(rows[0]?.attempts);
    });
    expect(seen).toBe(1);
    expect(await attemptsOf(a)).toEqual([1]);
  });

  it('rolls back what earlier trips sent when work throws between trips', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const refused = transaction(t.ctx.pool, async (trip) => {
      await trip([{ sql: 'UPDATE tasks SET attempts = 4 WHERE id = ?', values: [a] }]);
      throw new Error('changed my mind');
    });
    await expect(refused).rejects.toThrow('changed my mind');
    expect(await attemptsOf(a)).toEqual([0]);
  });

  it('refuses a trip after the one that committed', async () => {
    const late = transaction(t.ctx.pool, async (trip) => {
      await trip([{ sql: 'SELECT 1' }], { commit: true });
      await trip([{ sql: 'SELECT 2' }]);
    });
    await expect(late).rejects.toThrow('committed already');
  });
});

describe('a transaction stopped by its signal', () => {
  /** The statements of this test's database on the server now that start with `prefix`. */
  async function onServer(prefix: string): Promise<number> {
    const [[row]] = await t.ctx.pool.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE ?',
      [`${prefix}%`],
    );
    return Number(row?.n);
  }

  it('stops its statement on the server while it waits for a lock, throws TransactionStoppedError, and writes nothing', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const locker = await mysql.createConnection({ uri: t.config.MYSQL_URL });
    try {
      await locker.query('LOCK TABLES tasks WRITE');
      const stop = new AbortController();
      const running = oneTrip(t.ctx.pool, [{ sql: 'UPDATE tasks SET attempts = 9 WHERE id = ?', values: [a] }], {
        signal: stop.signal,
      });
      await until(async () => (await onServer('UPDATE tasks SET attempts = 9')) === 1);
      stop.abort();
      const err = await running.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TransactionStoppedError);
      expect(isCommitOutcomeUnknown(err)).toBe(false);
      // Nothing is left on the server that could commit once the lock is gone.
      expect(await onServer('UPDATE tasks SET attempts = 9')).toBe(0);
    } finally {
      await locker.query('UNLOCK TABLES');
      await locker.end();
    }
    expect(await attemptsOf(a)).toEqual([0]);
    // The connection went back to the pool clean: the next transaction commits.
    await oneTrip(t.ctx.pool, [{ sql: 'UPDATE tasks SET attempts = 1 WHERE id = ?', values: [a] }]);
    expect(await attemptsOf(a)).toEqual([1]);
  });

  it('answers as the statement ended when it ended before the KILL came, and keeps the session until the KILL is done', async () => {
    // The KILL is held back until the statement has ended and another transaction waits for
    // the pool's one connection: it must not stop that one.
    let letKillGo: () => void = () => undefined;
    const killMayGo = new Promise<void>((resolve) => {
      letKillGo = resolve;
    });
    class HeldKill extends Database {
      override async stopStatement(threadId: number, timeoutMs: number): Promise<void> {
        await killMayGo;
        return super.stopStatement(threadId, timeoutMs);
      }
    }
    const db = new HeldKill({ ...databaseSettings(t.config), size: 1 }, t.ctx.logger);
    try {
      const stop = new AbortController();
      const first = oneTrip(db, [{ sql: 'DO SLEEP(0.2)' }], { signal: stop.signal });
      await until(async () => (await onServer('DO SLEEP(0.2)')) === 1);
      stop.abort();
      await until(async () => (await onServer('DO SLEEP(0.2)')) === 0);
      const second = oneTrip(db, [{ sql: 'SELECT SLEEP(0.3) AS slept' }]);
      letKillGo();
      await expect(first).resolves.toHaveLength(1);
      const [rows] = await second;
      expect((rows as RowDataPacket[])[0]?.slept).toBe(0);
    } finally {
      await db.end();
    }
  });

  it('sends nothing when stopped before it starts', async () => {
    const stop = new AbortController();
    stop.abort();
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    const never = oneTrip(t.ctx.pool, [{ sql: 'UPDATE tasks SET attempts = 5 WHERE id = ?', values: [a] }], {
      signal: stop.signal,
    });
    await expect(never).rejects.toBeInstanceOf(TransactionStoppedError);
    expect(await attemptsOf(a)).toEqual([0]);
  });

  it('commits as usual when the signal never aborts', async () => {
    const a = await insertTask(t.ctx.pool, { message: 'a', time: 0 });
    await oneTrip(t.ctx.pool, [{ sql: 'UPDATE tasks SET attempts = 2 WHERE id = ?', values: [a] }], {
      signal: new AbortController().signal,
    });
    expect(await attemptsOf(a)).toEqual([2]);
  });
});
