import type { PoolConnection } from 'mysql2/promise';

/**
 * Counts `n` tasks finished now in `tasks_finished_per_minute`, in the transaction that
 * finished them. Last in the transaction, so the minute's row is locked only until its commit.
 */
export async function countFinished(
  connection: PoolConnection,
  status: 'completed' | 'failed',
  n: number,
): Promise<void> {
  if (n === 0) return;
  await connection.query(
    `INSERT INTO tasks_finished_per_minute (minute, ${status}) VALUES (UNIX_TIMESTAMP() DIV 60, ?)
      ON DUPLICATE KEY UPDATE ${status} = ${status} + ?`,
    [n, n],
  );
}
