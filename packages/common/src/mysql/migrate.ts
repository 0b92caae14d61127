import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import { createMigrationConnection, type PoolSettings } from './pool.js';

/** `packages/common/migrations`, the same from `src/mysql` and from `dist/mysql`. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

const LOCK_TIMEOUT_S = 60;

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
 * Applies the numbered SQL files not yet recorded in `schema_migrations`, in order. A
 * named lock (`GET_LOCK`) makes services that start together take turns; the later ones
 * find nothing left to do.
 */
export async function migrate(settings: PoolSettings, logger: Logger, dir = MIGRATIONS_DIR): Promise<number> {
  const connection = await createMigrationConnection(settings);
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
        const sql = await readFile(migration.file, 'utf8');
        logger.info({ migration: migration.name }, 'applying migration');
        await connection.query(sql);
        await connection.query('INSERT INTO schema_migrations (version, name) VALUES (?, ?)', [
          migration.version,
          migration.name,
        ]);
        count++;
      }
      return count;
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [lockName]);
    }
  } finally {
    await connection.end();
  }
}
