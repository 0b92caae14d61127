import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, ensureDatabase, MIGRATIONS_DIR, migrate, type PoolSettings } from '@tasks/common';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';

const logger = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');

let database: string;
let settings: PoolSettings;
let connection: mysql.Connection;
let dirs: string[] = [];

/** A fresh, empty database of the test's own. */
beforeEach(async () => {
  database = `test_migrate_${randomBytes(4).toString('hex')}`;
  const url = new URL(inject('mysqlUrl'));
  url.pathname = `/${database}`;
  settings = { url: url.toString(), size: 1, connectTimeoutMs: 5_000 };
  await ensureDatabase(settings.url, settings.connectTimeoutMs);
  connection = await mysql.createConnection({ uri: settings.url });
});
afterEach(async () => {
  await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await connection.end();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  dirs = [];
});

async function recorded(): Promise<{ version: number; name: string }[]> {
  const [rows] = await connection.query<RowDataPacket[]>(
    'SELECT version, name FROM schema_migrations ORDER BY version',
  );
  return rows.map((r) => ({ version: r.version, name: r.name }));
}

async function tables(): Promise<string[]> {
  const [rows] = await connection.query<RowDataPacket[]>('SHOW TABLES');
  return rows.map((r) => String(Object.values(r)[0])).sort();
}

async function migrationsDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
  dirs.push(dir);
  for (const [name, sql] of Object.entries(files)) await writeFile(join(dir, name), sql);
  return dir;
}

/** What migrating the shipped files records: one row per numbered SQL file. */
async function shipped(): Promise<{ version: number; name: string }[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+-.+\.sql$/.test(f)).sort();
  return files.map((f) => ({ version: Number.parseInt(f, 10), name: f.replace(/\.sql$/, '') }));
}

describe('migrate', () => {
  it('creates the tasks table on an empty database and records each migration', async () => {
    const expected = await shipped();
    expect(expected[0]).toEqual({ version: 1, name: '001-create-tasks' });
    expect(await migrate(settings, logger)).toBe(expected.length);
    expect(await tables()).toContain('tasks');
    expect(await recorded()).toEqual(expected);
  });

  it('does nothing the second time', async () => {
    await migrate(settings, logger);
    expect(await migrate(settings, logger)).toBe(0);
    expect(await recorded()).toEqual(await shipped());
  });

  it('applies each migration once when several services migrate at once', async () => {
    const expected = await shipped();
    const applied = await Promise.all([1, 2, 3, 4].map(() => migrate(settings, logger)));
    expect(applied.reduce((a, b) => a + b, 0)).toBe(expected.length);
    expect(applied.filter((n) => n > 0)).toHaveLength(1);
    expect(await recorded()).toEqual(expected);
  });

  it('applies only the files not yet recorded, in order', async () => {
    const files: Record<string, string> = {
      '001-first.sql': 'CREATE TABLE first_table (id INT PRIMARY KEY)',
      '002-second.sql': 'CREATE TABLE second_table (id INT PRIMARY KEY); INSERT INTO first_table VALUES (1)',
      'README.md': 'not a migration',
    };
    const dir = await migrationsDir(files);
    expect(await migrate(settings, logger, dir)).toBe(2);

    await writeFile(join(dir, '003-third.sql'), 'INSERT INTO first_table VALUES (3)');
    expect(await migrate(settings, logger, dir)).toBe(1);
    expect((await recorded()).map((r) => r.name)).toEqual(['001-first', '002-second', '003-third']);
    const [rows] = await connection.query<RowDataPacket[]>('SELECT id FROM first_table ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual([1, 3]);
  });

  it('records nothing for a migration that fails, and releases its lock', async () => {
    const dir = await migrationsDir({
      '001-good.sql': 'CREATE TABLE good_table (id INT PRIMARY KEY)',
      '002-bad.sql': 'CREATE TABLE nonsense (',
    });
    await expect(migrate(settings, logger, dir)).rejects.toThrow();
    expect((await recorded()).map((r) => r.name)).toEqual(['001-good']);

    await writeFile(join(dir, '002-bad.sql'), 'CREATE TABLE fixed_table (id INT PRIMARY KEY)');
    expect(await migrate(settings, logger, dir)).toBe(1);
    expect((await recorded()).map((r) => r.name)).toEqual(['001-good', '002-bad']);
  });

  it('upgrades a database in use: keys kept where they fit, the last day of throughput carried over', async () => {
    // The database as the first two migrations left it, with tasks in it.
    const before = (await shipped()).filter((m) => m.version <= 2);
    const dir = await migrationsDir({});
    for (const m of before) await copyFile(join(MIGRATIONS_DIR, `${m.name}.sql`), join(dir, `${m.name}.sql`));
    await migrate(settings, logger, dir);
    await connection.query("SET time_zone = '+00:00'");
    await connection.query(
      `INSERT INTO tasks (data, status, idempotency_key, finished_at) VALUES
        ('{"message":"a","time":0}', 'completed', 'Key-1', NOW(3) - INTERVAL 2 MINUTE),
        ('{"message":"b","time":0}', 'failed', 'clé', NOW(3) - INTERVAL 2 MINUTE),
        ('{"message":"c","time":0}', 'completed', NULL, NOW(3) - INTERVAL 2 DAY),
        ('{"message":"d","time":0}', 'pending', 'key-2', NULL)`,
    );

    expect(await migrate(settings, logger)).toBe((await shipped()).length - before.length);

    const [keys] = await connection.query<RowDataPacket[]>('SELECT idempotency_key AS k FROM tasks ORDER BY id');
    expect(keys.map((r) => r.k)).toEqual(['Key-1', null, null, 'key-2']);
    const [counts] = await connection.query<RowDataPacket[]>(
      'SELECT SUM(completed) AS completed, SUM(failed) AS failed FROM tasks_finished_per_minute',
    );
    expect(counts.map((r) => [Number(r.completed), Number(r.failed)])).toEqual([[1, 1]]);
    const [format] = await connection.query<RowDataPacket[]>(
      "SELECT row_format FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tasks'",
    );
    expect(String(format[0]?.row_format ?? format[0]?.ROW_FORMAT)).toBe('Redundant');
  });
});
