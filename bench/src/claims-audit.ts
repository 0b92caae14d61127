import type { Database } from '@tasks/common/internal';
import type { RowDataPacket } from 'mysql2/promise';

/**
 * Counts every pending → processing transition of `tasks` with a trigger (the claims the
 * database committed, whichever scheduler made them), as the fault tests audit status
 * changes. The trigger adds a write per changed row, so a drain that carries it is not timed
 * against the others.
 */
export async function installClaimsAudit(pool: Database): Promise<void> {
  await pool.query(`CREATE TABLE bench_claims (
    task_id BIGINT UNSIGNED NOT NULL,
    run INT UNSIGNED NOT NULL
  ) ENGINE = InnoDB`);
  await pool.query(`CREATE TRIGGER bench_claims_audit AFTER UPDATE ON tasks FOR EACH ROW
    INSERT INTO bench_claims (task_id, run)
    SELECT NEW.id, NEW.run FROM DUAL WHERE OLD.status = 'pending' AND NEW.status = 'processing'`);
}

export interface ClaimsCount {
  /** pending → processing transitions of the tasks in the range. */
  transitions: number;
  /** Tasks of the range with at least one. */
  tasksClaimed: number;
  /** Tasks of the range claimed more than once. */
  claimedTwice: number;
}

export async function countClaims(pool: Database, firstId: number, lastId: number): Promise<ClaimsCount> {
  const [[row]] = await pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS transitions, COUNT(DISTINCT task_id) AS tasks FROM bench_claims WHERE task_id BETWEEN ? AND ?`,
    [firstId, lastId],
  );
  const [[twice]] = await pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM (SELECT task_id FROM bench_claims WHERE task_id BETWEEN ? AND ?
       GROUP BY task_id HAVING COUNT(*) > 1) AS t`,
    [firstId, lastId],
  );
  return {
    transitions: Number(row?.transitions ?? 0),
    tasksClaimed: Number(row?.tasks ?? 0),
    claimedTwice: Number(twice?.n ?? 0),
  };
}
