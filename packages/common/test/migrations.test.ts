import { readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@tasks/common';
import mysql, { type RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dropTestDatabase, testDatabaseName, testDatabaseUrl } from '../../../test/support/test-env.js';
import { ensureDatabase } from '../src/mysql/database.js';
import { ALREADY_DONE, MIGRATIONS_DIR, migrate, migrationStatements } from '../src/mysql/migrate.js';
import type { DatabaseSettings } from '../src/mysql/pinned-pool.js';

const logger = createLogger({ LOG_LEVEL: 'silent', LOG_PRETTY: false }, 'test');

let database: string;
let settings: DatabaseSettings;
let connection: mysql.Connection;
let dirs: string[] = [];

/** A fresh, empty database of the test's own. */
beforeEach(async () => {
  database = testDatabaseName('migrate_');
  settings = { url: testDatabaseUrl(database), size: 1, connectTimeoutMs: 5_000, lockWaitTimeoutS: 5 };
  await ensureDatabase(settings);
  connection = await mysql.createConnection({ uri: settings.url });
});
afterEach(async () => {
  await connection.end();
  await dropTestDatabase(database);
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
    await seed(connection);

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

describe('migrationStatements', () => {
  it('splits on ; outside strings and comments, and drops what is empty', () => {
    const sql = [
      '-- a comment; with a semicolon',
      'INSERT INTO t VALUES (\'a;b\', "c;\\"d");',
      '/* block; comment */ UPDATE `odd;name` SET x = 1 ;',
      '',
    ].join('\n');
    const statements = migrationStatements(sql);
    expect(statements).toHaveLength(2);
    expect(statements[0]).toContain('INSERT INTO t VALUES (\'a;b\', "c;\\"d")');
    expect(statements[1]).toContain('UPDATE `odd;name` SET x = 1');
  });
});

/** Every shipped file with its statements, read when the tests are collected. */
const SHIPPED = readdirSync(MIGRATIONS_DIR)
  .filter((f) => /^\d+-.+\.sql$/.test(f))
  .sort()
  .map((file) => ({
    file,
    version: Number.parseInt(file, 10),
    statements: migrationStatements(readFileSync(join(MIGRATIONS_DIR, file), 'utf8')),
  }));

/** A directory holding the shipped files before `version`. */
async function shippedBefore(version: number): Promise<string> {
  const dir = await migrationsDir({});
  for (const m of SHIPPED.filter((s) => s.version < version)) {
    await copyFile(join(MIGRATIONS_DIR, m.file), join(dir, m.file));
  }
  return dir;
}

/** Rows as the shipped 001 defines them, inserted right after it: one of each kind 002-004 care about. */
async function seed(db: mysql.Connection): Promise<void> {
  await db.query("SET time_zone = '+00:00'");
  await db.query(
    `INSERT INTO tasks (data, status, idempotency_key, finished_at) VALUES
      ('{"message":"a","time":0}', 'completed', 'Key-1', NOW(3) - INTERVAL 2 MINUTE),
      ('{"message":"b","time":0}', 'failed', 'clé', NOW(3) - INTERVAL 2 MINUTE),
      ('{"message":"c","time":0}', 'completed', NULL, NOW(3) - INTERVAL 2 DAY),
      ('{"message":"d","time":0}', 'pending', 'key-2', NULL)`,
  );
}

/** What the migrations decide: each table's definition, the recorded files, the seeded rows' outcome. */
async function outcome(db: mysql.Connection) {
  const [tableRows] = await db.query<RowDataPacket[]>('SHOW TABLES');
  const definitions: Record<string, string> = {};
  for (const row of tableRows) {
    const table = String(Object.values(row)[0]);
    const [[created]] = (await db.query(`SHOW CREATE TABLE \`${table}\``)) as unknown as [RowDataPacket[]];
    definitions[table] = String(created?.['Create Table']).replace(/ AUTO_INCREMENT=\d+/, '');
  }
  const [recordedRows] = await db.query<RowDataPacket[]>(
    'SELECT version, name FROM schema_migrations ORDER BY version',
  );
  const [keys] = await db.query<RowDataPacket[]>('SELECT idempotency_key AS k FROM tasks ORDER BY id');
  const [finishes] = await db.query<RowDataPacket[]>(
    'SELECT COUNT(*) AS minutes, SUM(completed) AS completed, SUM(failed) AS failed FROM tasks_finished_per_minute',
  );
  return {
    definitions,
    recorded: recordedRows.map((r) => `${r.version} ${r.name}`),
    keys: keys.map((r) => r.k),
    finishes: finishes.map((r) => [Number(r.minutes), Number(r.completed), Number(r.failed)]),
  };
}

describe('migrations run again after a crash', () => {
  let reference: Awaited<ReturnType<typeof outcome>>;
  let referenceDatabase: string;

  /** The same rows migrated straight through, in a database of its own. */
  beforeAll(async () => {
    referenceDatabase = testDatabaseName('migrate_ref_');
    const ref = { url: testDatabaseUrl(referenceDatabase), size: 1, connectTimeoutMs: 5_000, lockWaitTimeoutS: 5 };
    await ensureDatabase(ref);
    const db = await mysql.createConnection({ uri: ref.url });
    try {
      await migrate(ref, logger, await shippedBefore(2));
      await seed(db);
      await migrate(ref, logger);
      reference = await outcome(db);
    } finally {
      await db.end();
    }
  });
  afterAll(async () => {
    await dropTestDatabase(referenceDatabase);
  });

  it('the reference is the schema the migrations are for', () => {
    expect(reference.recorded).toEqual(SHIPPED.map((m) => `${m.version} ${m.file.replace(/\.sql$/, '')}`));
    expect(reference.keys).toEqual(['Key-1', null, null, 'key-2']);
    expect(reference.finishes).toEqual([[1, 1, 1]]);
    expect(reference.definitions.tasks).toContain('ROW_FORMAT=REDUNDANT');
    expect(reference.definitions.tasks).not.toContain('tasks_finished_at');
  });

  const cases = SHIPPED.flatMap((m) =>
    m.statements.map((_, i) => ({ name: m.file, version: m.version, applied: i + 1, of: m.statements.length })),
  );
  it.each(cases)('$name: its first $applied of $of statements ran, unrecorded; migrate() finishes it', async (c) => {
    const migration = SHIPPED.find((m) => m.version === c.version);
    if (!migration) throw new Error(`no migration ${c.version}`);
    if (c.version > 1) {
      await migrate(settings, logger, await shippedBefore(2));
      await seed(connection);
      await migrate(settings, logger, await shippedBefore(c.version));
    }
    // What the crashed run did: the statements, on a connection of its own, and no record.
    const crashed = await mysql.createConnection({ uri: settings.url });
    for (const statement of migration.statements.slice(0, c.applied)) await crashed.query(statement);
    await crashed.end();
    if (c.version === 1) await seed(connection);

    expect(await migrate(settings, logger)).toBe(SHIPPED.filter((m) => m.version >= c.version).length);
    expect(await outcome(connection)).toEqual(reference);
  });

  it('running every migration a second time changes nothing', async () => {
    await migrate(settings, logger, await shippedBefore(2));
    await seed(connection);
    await migrate(settings, logger);
    const once = await outcome(connection);
    expect(once).toEqual(reference);
    await connection.query('DELETE FROM schema_migrations');
    expect(await migrate(settings, logger)).toBe(SHIPPED.length);
    expect(await outcome(connection)).toEqual(once);
  });

  it('counts an "already done" error as done, and any other error as a failure', async () => {
    expect([...ALREADY_DONE]).toEqual(
      expect.arrayContaining([
        'ER_DUP_KEYNAME',
        'ER_DUP_FIELDNAME',
        'ER_CANT_DROP_FIELD_OR_KEY',
        'ER_TABLE_EXISTS_ERROR',
      ]),
    );
    const dir = await migrationsDir({
      '001-table.sql':
        'CREATE TABLE t (id INT PRIMARY KEY, a INT); ALTER TABLE t ADD COLUMN b INT; CREATE INDEX t_a ON t (a);',
    });
    await connection.query('CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT, KEY t_a (a))');
    expect(await migrate(settings, logger, dir)).toBe(1);

    await writeFile(join(dir, '002-bad.sql'), 'ALTER TABLE t ADD COLUMN c INT; ALTER TABLE missing ADD COLUMN d INT;');
    await expect(migrate(settings, logger, dir)).rejects.toMatchObject({ code: 'ER_NO_SUCH_TABLE' });
    expect((await recorded()).map((r) => r.name)).toEqual(['001-table']);
  });
});
