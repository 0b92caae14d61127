import { randomInt } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { type Statement, type TransactionOptions, type Trip, transaction } from '../mysql/transaction.js';
import { isFinal, TASK_STATUSES, type TaskStatus } from './task-schema.js';

/**
 * The counts operators read (tasks per status, tasks finished per minute), kept by the
 * transactions that change statuses: exact through crashes (a rolled back transaction counts
 * nothing), and read without scanning `tasks`.
 *
 * The one way to count: a statement that moves tasks between statuses says so (`move`), and
 * the server counts the rows it changed (ROW_COUNT() into a session variable), so the caller
 * needs no round trip to learn the number before it can count it. The count rows are written
 * in the commit's trip: their locks live only while the server runs that trip.
 *
 * Both count tasks by their status now: a redrive (transitions/redrive.ts) moves its tasks out
 * of `failed` and takes their failures out of the minutes they finished in.
 *
 * `task_counts` holds each status's count split over `COUNT_SHARDS` rows; a transaction adds
 * to one shard chosen at random, so writers that commit at the same moment seldom wait for
 * each other's row lock.
 */

export const COUNT_SHARDS = 16;

/** The status change a counted statement makes to every row it changes (`from` null: inserted; `to` null: deleted). */
export interface StatusMove {
  from: TaskStatus | null;
  to: TaskStatus | null;
}

/** A statement of a counted transaction; with `move`, the rows it changes are counted. */
export interface CountedStatement extends Statement {
  move?: StatusMove;
}

/** A round trip of a counted transaction (see countedTransaction); one result per statement given. */
export type CountedTrip = (statements: CountedStatement[], options?: { commit?: boolean }) => Promise<unknown[]>;

/** The session variable a move's rows are counted in. */
function variableOf({ from, to }: StatusMove): string {
  return `@moved_${from ?? 'none'}_${to ?? 'none'}`;
}

/** The statements that add the counted moves to the counts, or none when no move can have changed a row. */
function countStatements(moves: StatusMove[]): Statement[] {
  if (moves.length === 0) return [];
  const delta = new Map<TaskStatus, string[]>();
  const add = (status: TaskStatus, term: string) => delta.set(status, [...(delta.get(status) ?? []), term]);
  for (const move of moves) {
    const v = variableOf(move);
    if (move.from) add(move.from, `- ${v}`);
    if (move.to) add(move.to, `+ ${v}`);
  }
  const sum = (terms: string[]) => (terms.length === 0 ? '0' : terms.join(' ').replace(/^\+ /, ''));
  const finished = (status: TaskStatus) => sum(moves.filter((m) => m.to === status).map((m) => `+ ${variableOf(m)}`));
  const any = moves.map(variableOf).join(' + ');
  const statuses = [...delta.keys()];
  const statements: Statement[] = [
    {
      sql: `UPDATE task_counts SET n = n + CASE status ${statuses.map((s) => `WHEN '${s}' THEN ${sum(delta.get(s) ?? [])}`).join(' ')} END
        WHERE shard = ? AND status IN (${statuses.map((st) => `'${st}'`).join(', ')}) AND ${any} > 0`,
      values: [randomInt(COUNT_SHARDS)],
    },
  ];
  if (moves.some((m) => m.to !== null && isFinal(m.to))) {
    const completed = finished('completed');
    const failed = finished('failed');
    const cancelled = finished('cancelled');
    statements.push({
      sql: `INSERT INTO tasks_finished_per_minute (minute, completed, failed, cancelled)
        SELECT UNIX_TIMESTAMP() DIV 60, ${completed}, ${failed}, ${cancelled} FROM DUAL
        WHERE ${completed} + ${failed} + ${cancelled} > 0
        ON DUPLICATE KEY UPDATE completed = completed + ${completed}, failed = failed + ${failed},
          cancelled = cancelled + ${cancelled}`,
    });
  }
  return statements;
}

/**
 * A counted trip over a transaction's plain trip: it sends each moving statement with the
 * statements that count its rows in a session variable, and the counts' writes with the
 * commit. `settle` sends the counts with a commit when no trip was marked `commit`.
 */
export function countingTrip(trip: Trip): { trip: CountedTrip; settle(): Promise<void> } {
  const moves = new Map<string, StatusMove>();
  let committed = false;
  const countedTrip: CountedTrip = async (statements, options = {}) => {
    const sent: Statement[] = [];
    const positions: number[] = [];
    for (const statement of statements) {
      const { move, ...plain } = statement;
      if (move && !moves.has(variableOf(move))) {
        moves.set(variableOf(move), move);
        sent.push({ sql: `SET ${variableOf(move)} = 0` });
      }
      positions.push(sent.length);
      sent.push(plain);
      if (move) sent.push({ sql: `SET ${variableOf(move)} = ${variableOf(move)} + ROW_COUNT()` });
    }
    if (options.commit) sent.push(...countStatements([...moves.values()]));
    const results = await trip(sent, options);
    committed ||= options.commit === true;
    return positions.map((p) => results[p]);
  };
  return {
    trip: countedTrip,
    async settle() {
      if (!committed) await countedTrip([], { commit: true });
    },
  };
}

/**
 * A transaction (see mysql/transaction.ts) whose statements may carry the status move they
 * make; the moved rows are counted with the commit. Every transaction that changes a task's
 * status runs through here, or, on a caller's own connection, through countingTrip.
 */
export function countedTransaction<T>(
  db: Database,
  work: (trip: CountedTrip) => Promise<T>,
  transactionOptions: TransactionOptions = {},
): Promise<T> {
  return transaction(
    db,
    async (trip: Trip) => {
      const counting = countingTrip(trip);
      const result = await work(counting.trip);
      await counting.settle();
      return result;
    },
    transactionOptions,
  );
}

/** Runs the counted statements as one transaction in one round trip; one result per statement. */
export function countedOneTrip(
  db: Database,
  statements: CountedStatement[],
  options: TransactionOptions = {},
): Promise<unknown[]> {
  return countedTransaction(db, (trip) => trip(statements, { commit: true }), options);
}

function byStatus(rows: RowDataPacket[]): Record<TaskStatus, number> {
  const counts = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
  for (const row of rows) counts[row.status as TaskStatus] = Number(row.n);
  return counts;
}

/** How many tasks have each status (every status present, 0 when none): a read of 64 rows. */
export async function countByStatus(db: Database): Promise<Record<TaskStatus, number>> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT status, SUM(n) AS n FROM task_counts GROUP BY status');
  return byStatus(rows);
}

/**
 * Sets the per-status counts to the table's, exactly, for rows written around the status
 * writes (loaded in bulk, or by hand), in one transaction of one round trip. The count rows
 * are locked first, so a status write that commits meanwhile waits and adds its change after;
 * the table is then counted as of that moment. Takes as long as counting the table (seconds for
 * millions of rows), during which status writes wait (and may time out and be retried).
 */
export async function recountStatuses(db: Database): Promise<Record<TaskStatus, number>> {
  const results = await countedOneTrip(db, [
    { sql: 'SELECT n FROM task_counts FOR UPDATE' },
    { sql: 'UPDATE task_counts SET n = 0 WHERE shard <> 0' },
    {
      sql: `UPDATE task_counts AS c
        LEFT JOIN (SELECT status, COUNT(*) AS n FROM tasks GROUP BY status) AS t ON t.status = c.status
        SET c.n = COALESCE(t.n, 0) WHERE c.shard = 0`,
    },
    { sql: 'SELECT status, n FROM task_counts WHERE shard = 0' },
  ]);
  return byStatus(results[3] as RowDataPacket[]);
}
