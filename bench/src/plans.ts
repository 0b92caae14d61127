import { CLAIM_READS } from '@tasks/common/internal';
import type { RowDataPacket } from 'mysql2/promise';
import type { DatabaseServer } from './servers.js';

/** The claim's read of the tasks without a group or a priority, as the scheduler sends it (claim-plan.ts). */
export const CLAIM_SELECT = { sql: CLAIM_READS.laneRows, values: ['', 0, 0, 1000] };

/**
 * The server's plan for `sql`, one line per table it reads: access type, index, estimated
 * rows, extra. MySQL 9 explains in its tree format by default, which an UPDATE does not have,
 * so it is asked for the traditional one.
 */
export async function explain(
  server: DatabaseServer,
  { sql, values = [] }: { sql: string; values?: unknown[] },
): Promise<string[]> {
  const statement = server.kind === 'mysql' ? 'EXPLAIN FORMAT=TRADITIONAL' : 'EXPLAIN';
  const [rows] = await server.pool.query<RowDataPacket[]>(`${statement} ${sql}`, values);
  return rows.map((r) => `type ${r.type}, key ${r.key}, rows ${r.rows}, ${r.Extra ?? ''}`.replace(/\s+/g, ' ').trim());
}
