import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { mysqlSplitterOptions, splitQuery } from 'dbgate-query-splitter';
import type { Logger } from '../logger.js';
import { type DatabaseSettings, openConnection } from './database.js';
import { isConnectionError } from './errors.js';

/** `packages/common/migrations`, the same from `src/mysql` and from `dist/mysql`. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const LOCK_TIMEOUT_S = 60;

/**
 * How a migration file is applied, and so how one is written.
 *
 * A file's statements run one at a time, each committed on its own (MySQL commits DDL
 * implicitly, so a file could not be one transaction anyway), and the file is recorded in
 * `schema_migrations` after its last statement. A crash (or a lost connection, or a
 * killed server) between two statements leaves the file unrecorded, and the next start
 * runs it again from its first statement. So every statement must be safe to run again
 * after itself and everything before it have run, on MySQL 8.4+ and MariaDB 10.6+:
 *
 * - Either it is idempotent by itself: `CREATE TABLE IF NOT EXISTS`, `DROP TABLE IF
 *   EXISTS`, an `ALTER TABLE … MODIFY` to the final definition, an `UPDATE` whose result
 *   is the same when it runs twice, `SET` of a session variable.
 * - Or, once done, it fails with one of ALREADY_DONE, which counts as done: `ADD COLUMN`
 *   (duplicate column), `CREATE INDEX`/`ADD INDEX` (duplicate key name), `DROP INDEX`/
 *   `DROP COLUMN` (cannot drop what is not there), `CREATE TABLE` (table exists). MySQL has
 *   no `ADD COLUMN IF NOT EXISTS` or `CREATE INDEX IF NOT EXISTS`; write these plainly.
 *   Make one such change per statement, so "already done" is true of the whole statement.
 * - Data written from other data sets values rather than adding to them: an
 *   `INSERT … SELECT … ON DUPLICATE KEY UPDATE c = s.c` recomputes a row on a second run,
 *   where `c = c + s.c` would count it twice and a plain `INSERT` would fail.
 *
 * Statements end with `;` (outside strings and comments); there is no `DELIMITER`, so no
 * stored programs. A session setting made by a statement (`SET time_zone`) holds for the
 * rest of the run on the same connection. A file already recorded never runs again: fix a
 * mistake with a new file.
 */

/** MySQL errors (the same codes on MariaDB) that mean a statement's change is already there. */
export const ALREADY_DONE: ReadonlySet<string> = new Set([
  'ER_TABLE_EXISTS_ERROR', // 1050: CREATE TABLE of a table that exists
  'ER_BAD_TABLE_ERROR', // 1051: DROP TABLE of a table that is gone
  'ER_DUP_FIELDNAME', // 1060: ADD COLUMN of a column that exists
  'ER_DUP_KEYNAME', // 1061: CREATE INDEX / ADD INDEX of an index that exists
  'ER_CANT_DROP_FIELD_OR_KEY', // 1091: DROP COLUMN / DROP INDEX of one that is gone
]);

/** A migration file's statements, in order: split on `;`, except within strings and comments. */
export function migrationStatements(sql: string): string[] {
  return splitQuery(sql, mysqlSplitterOptions)
    .map((item) => (typeof item === 'string' ? item : item.text))
    .filter((statement) => statement.trim() !== '');
}

interface Migration {
  version: number;
  name: string;
  file: string;
}

async function listMigrations(dir: string): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d+-.+\.sql$/.test(f)).sort();
  return files.map((file) => ({
    version: Number.parseInt(file, 10),
    name: file.replace(/\.sql$/, ''),
    file: `${dir}/${file}`,
  }));
}

/**
 * Applies the numbered SQL files not yet recorded in `schema_migrations`, in order, one
 * statement at a time (see the rules above), on the primary (openConnection finds it when
 * MYSQL_URL lists a group's members). A named lock (`GET_LOCK`) makes services that start
 * together take turns; the later ones find nothing left to do.
 *
 * The lock is an optimisation here too. It lives on one member and does not survive a
 * failover or a switchover: a migrator on the new primary can take it while the old holder
 * still has a statement in flight on the old one (a switchover lets it finish; a dead primary
 * may have sent it to the group or not). The old holder's next statement then fails (its
 * server is gone or read-only) and its service starts over, migrating on the new primary. So
 * two runs can overlap by at most a statement, interleaved with the other's, and the rules
 * above make that safe: every statement is idempotent or already done by the other run, and a
 * file recorded twice is recorded once (the record is an upsert).
 */
export async function migrate(settings: DatabaseSettings, logger: Logger, dir = MIGRATIONS_DIR): Promise<number> {
  const connection = await openConnection(settings);
  try {
    const [[{ db }]] = (await connection.query('SELECT DATABASE() AS db')) as unknown as [[{ db: string }]];
    const lockName = `migrate:${db}`.slice(0, 64);
    const [[{ locked }]] = (await connection.query('SELECT GET_LOCK(?, ?) AS locked', [
      lockName,
      LOCK_TIMEOUT_S,
    ])) as unknown as [[{ locked: number | null }]];
    if (locked !== 1) throw new Error(`could not take the migration lock ${lockName} within ${LOCK_TIMEOUT_S} s`);
    try {
      await connection.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT UNSIGNED NOT NULL PRIMARY KEY,
        name VARCHAR(255) NOT NULL,
        applied_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
      ) ENGINE = InnoDB`);
      const [rows] = (await connection.query('SELECT version FROM schema_migrations')) as unknown as [
        { version: number }[],
      ];
      const applied = new Set(rows.map((r) => r.version));
      let count = 0;
      for (const migration of await listMigrations(dir)) {
        if (applied.has(migration.version)) continue;
        const statements = migrationStatements(await readFile(migration.file, 'utf8'));
        logger.info({ migration: migration.name }, 'applying migration');
        for (const [index, statement] of statements.entries()) {
          try {
            await connection.query(statement);
          } catch (err) {
            const code = (err as { code?: string }).code;
            if (code === undefined || !ALREADY_DONE.has(code)) throw err;
            logger.info(
              { migration: migration.name, statement: index + 1, code },
              'migration statement already applied',
            );
          }
        }
        await connection.query(
          'INSERT INTO schema_migrations (version, name) VALUES (?, ?) ON DUPLICATE KEY UPDATE version = version',
          [migration.version, migration.name],
        );
        count++;
      }
      return count;
    } finally {
      // A lost connection has lost the lock with its session.
      await connection.query('SELECT RELEASE_LOCK(?)', [lockName]).catch((err: unknown) => {
        if (!isConnectionError(err)) throw err;
      });
    }
  } finally {
    await connection.end().catch(() => connection.destroy());
  }
}
