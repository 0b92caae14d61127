import type { RowDataPacket } from 'mysql2/promise';
import type { TaskStatus } from './task-schema.js';

/** A row of `tasks` as the code sees it, and how it is read. */

export interface Task {
  id: number;
  status: TaskStatus;
  /** `simulated` (the original's work) or a type of the handlers module. */
  type: string;
  /**
   * What the task asks for: the original's `{message, time}` for a `simulated` task (see
   * decodeTaskData), what its type's schema made of its body for any other.
   */
  data: unknown;
  /** What its handler returned (any JSON value), once it completed with one; null otherwise. */
  result: unknown;
  attempts: number;
  /** A try's deadline (ms) of the task's own; null: its type's, or none. */
  timeoutMs: number | null;
  /** The tries of the task's own before it is dead-lettered; null: MAX_ATTEMPTS. */
  maxAttempts: number | null;
  lastError: string | null;
  idempotencyKey: string | null;
  /** When a delayed task is (or was) due; null for a task due when inserted. */
  runAt: Date | null;
  /** Claimed before lower priorities (see claim-plan.ts); 0 by default. */
  priority: number;
  /** The group it is claimed fairly with and limited in; null: none. */
  group: string | null;
  createdAt: Date;
  updatedAt: Date;
  dispatchedAt: Date | null;
  finishedAt: Date | null;
}

/**
 * The columns a Task is read from. The JSON columns are read as their text (MySQL hands a JSON
 * column over parsed, MariaDB, where JSON is LONGTEXT, as text; a result that is a JSON string
 * would be ambiguous), and parsed here.
 */
export const TASK_COLUMNS = `id, status, type, CAST(data AS CHAR) AS data, CAST(result AS CHAR) AS result,
  attempts, timeout_ms, max_attempts, last_error, idempotency_key, run_at, priority, group_key,
  created_at, updated_at, dispatched_at, finished_at`;

export interface TaskRow extends RowDataPacket {
  id: number;
  status: TaskStatus;
  type: string;
  data: string;
  result: string | null;
  attempts: number;
  timeout_ms: number | null;
  max_attempts: number | null;
  last_error: string | null;
  idempotency_key: string | null;
  run_at: Date | null;
  priority: number;
  group_key: string | null;
  created_at: Date;
  updated_at: Date;
  dispatched_at: Date | null;
  finished_at: Date | null;
}

/** A JSON column's text as its value (a value already parsed stays as it is). */
export function parseJsonColumn(text: unknown): unknown {
  return typeof text === 'string' ? JSON.parse(text) : text;
}

const orNull = (value: number | null) => (value === null ? null : Number(value));

export function toTask(row: TaskRow): Task {
  return {
    id: Number(row.id),
    status: row.status,
    type: row.type,
    data: parseJsonColumn(row.data),
    result: row.result === null ? null : parseJsonColumn(row.result),
    attempts: row.attempts,
    timeoutMs: orNull(row.timeout_ms),
    maxAttempts: orNull(row.max_attempts),
    lastError: row.last_error,
    idempotencyKey: row.idempotency_key,
    runAt: row.run_at,
    priority: Number(row.priority),
    group: row.group_key,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    dispatchedAt: row.dispatched_at,
    finishedAt: row.finished_at,
  };
}
