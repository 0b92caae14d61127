import type { RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { countByStatus } from './status-counts.js';
import { TASK_COLUMNS, type Task, type TaskRow, toTask } from './task-row.js';
import type { TaskStatus } from './task-schema.js';

/** The reads of `tasks`: one task, a page of tasks, counts, the throughput series. */

export async function getTask(pool: Database, id: number): Promise<Task | null> {
  const [rows] = await pool.execute<TaskRow[]>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id = ?`, [id]);
  return rows[0] ? toTask(rows[0]) : null;
}

/** The tasks of `ids` that exist, in one read. */
export async function getTasks(pool: Database, ids: number[]): Promise<Task[]> {
  if (ids.length === 0) return [];
  const [rows] = await pool.query<TaskRow[]>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE id IN (?)`, [ids]);
  return rows.map(toTask);
}

export async function getTaskByIdempotencyKey(pool: Database, key: string): Promise<Task | null> {
  const [rows] = await pool.execute<TaskRow[]>(`SELECT ${TASK_COLUMNS} FROM tasks WHERE idempotency_key = ?`, [key]);
  return rows[0] ? toTask(rows[0]) : null;
}

/* ---- Operators: listing, counting, redriving ---- */

export interface ListTasksOptions {
  status?: TaskStatus;
  limit: number;
  /** Keyset cursor: only tasks with an id below this one (the listing is newest first). */
  after?: number;
}

/** Tasks newest first (by id), optionally of one status; a page of `limit` after the cursor. */
export async function listTasks(pool: Database, { status, limit, after }: ListTasksOptions): Promise<Task[]> {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (status !== undefined) {
    where.push('status = ?');
    params.push(status);
  }
  if (after !== undefined) {
    where.push('id < ?');
    params.push(after);
  }
  const index = status === undefined ? 'PRIMARY' : await listingIndex(pool, status, limit);
  const [rows] = await pool.query<TaskRow[]>(
    `SELECT ${TASK_COLUMNS} FROM tasks FORCE INDEX (${index})
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
    [...params, limit],
  );
  return rows.map(toTask);
}

/**
 * The cheaper way to a page of one status, newest first, from the per-status counts: through
 * `tasks_lanes`, a page costs every task of that status (the index orders them by group and
 * priority, so they are sorted by id after); through the primary key, newest first, it costs
 * about `limit` × all tasks / the tasks of that status. So a rare status is read through its
 * index, and a common one (completed, most of the table) along the primary key.
 */
export async function listingIndex(
  pool: Database,
  status: TaskStatus,
  limit: number,
): Promise<'PRIMARY' | 'tasks_lanes'> {
  const counts = await countByStatus(pool);
  const all = Object.values(counts).reduce((sum, n) => sum + n, 0);
  const ofStatus = counts[status];
  return ofStatus * ofStatus <= limit * all ? 'tasks_lanes' : 'PRIMARY';
}

/** The status of each of `ids` that exists. */
export async function getStatuses(pool: Database, ids: number[]): Promise<Map<number, TaskStatus>> {
  if (ids.length === 0) return new Map();
  const [rows] = await pool.query<RowDataPacket[]>('SELECT id, status FROM tasks WHERE id IN (?)', [ids]);
  return new Map(rows.map((r) => [Number(r.id), r.status as TaskStatus]));
}

export interface MinuteCounts {
  /** Start of the minute (UTC). */
  minute: Date;
  completed: number;
  failed: number;
  cancelled: number;
}

/**
 * Tasks that finished (completed, or recorded failed) in each of the `minutes` minutes up to
 * and including the one holding `now`, oldest first; minutes without any count 0. Counted by
 * their status now, as /stats counts them: a failure redriven since is no longer counted (the
 * task counts again in the minute it finishes again).
 */
export async function finishedPerMinute(pool: Database, minutes: number, now: number): Promise<MinuteCounts[]> {
  const last = Math.floor(now / 60_000);
  const first = last - minutes + 1;
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT minute, completed, failed, cancelled FROM tasks_finished_per_minute WHERE minute BETWEEN ? AND ?',
    [first, last],
  );
  const series: MinuteCounts[] = [];
  for (let m = first; m <= last; m++)
    series.push({ minute: new Date(m * 60_000), completed: 0, failed: 0, cancelled: 0 });
  for (const row of rows) {
    const bucket = series[Number(row.minute) - first];
    if (bucket) {
      bucket.completed = Number(row.completed);
      bucket.failed = Number(row.failed);
      bucket.cancelled = Number(row.cancelled);
    }
  }
  return series;
}
