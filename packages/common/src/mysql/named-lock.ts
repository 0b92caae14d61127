import type { Pool, RowDataPacket } from 'mysql2/promise';

/** `<name>:<database>` for each pool, as MySQL names a lock (at most 64 characters). */
const lockNames = new WeakMap<Pool, Map<string, Promise<string>>>();

function lockName(pool: Pool, name: string): Promise<string> {
  let names = lockNames.get(pool);
  if (!names) {
    names = new Map();
    lockNames.set(pool, names);
  }
  let lock = names.get(name);
  if (!lock) {
    lock = pool
      .query<RowDataPacket[]>("SELECT LEFT(CONCAT(?, ':', DATABASE()), 64) AS name", [name])
      .then(([[row]]) => String(row?.name));
    lock.catch(() => names?.delete(name));
    names.set(name, lock);
  }
  return lock;
}

/**
 * Runs `work` only if this process can take the named lock `<name>:<database>` at once (MySQL
 * GET_LOCK), and releases it after: among processes that try together, one does the work and
 * the others skip this turn. Returns null when the lock was taken elsewhere. A process that
 * dies holding the lock loses it with its connection.
 */
export async function withNamedLock<T>(pool: Pool, name: string, work: () => Promise<T>): Promise<T | null> {
  const lock = await lockName(pool, name);
  const connection = await pool.getConnection();
  try {
    const [[row]] = await connection.query<RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS locked', [lock]);
    if (Number(row?.locked) !== 1) return null;
    try {
      return await work();
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [lock]);
    }
  } finally {
    connection.release();
  }
}
