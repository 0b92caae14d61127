import type { Pool, RowDataPacket } from 'mysql2/promise';

/**
 * Runs `work` only if this process can take the named lock `<name>:<database>` at once (MySQL
 * GET_LOCK), and releases it after: among processes that try together, one does the work and
 * the others skip this turn. Returns null when the lock was taken elsewhere.
 */
export async function withNamedLock<T>(pool: Pool, name: string, work: () => Promise<T>): Promise<T | null> {
  const connection = await pool.getConnection();
  try {
    const [[named]] = await connection.query<RowDataPacket[]>("SELECT LEFT(CONCAT(?, ':', DATABASE()), 64) AS name", [
      name,
    ]);
    const lock = String(named?.name);
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
