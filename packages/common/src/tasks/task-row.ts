import type { RowDataPacket } from 'mysql2/promise';
import type { TaskData, TaskStatus } from './task-schema.js';

/** A row of `tasks` as the code sees it, and how it is read. */

export interface Task {
  id: number;
  status: TaskStatus;
  data: TaskData;
  attempts: number;
  lastError: string | null;
  idempotencyKey: string | null;
  createdAt: Date;
  updatedAt: Date;
  dispatchedAt: Date | null;
  finishedAt: Date | null;
}

export interface TaskRow extends RowDataPacket {
  id: number;
  status: TaskStatus;
  data: TaskData | string;
  attempts: number;
  last_error: string | null;
  idempotency_key: string | null;
  created_at: Date;
  updated_at: Date;
  dispatched_at: Date | null;
  finished_at: Date | null;
}

/** MySQL returns JSON columns parsed; MariaDB (where JSON is LONGTEXT) returns the text. */
export function parseData(data: TaskData | string): TaskData {
  return typeof data === 'string' ? (JSON.parse(data) as TaskData) : data;
}

export function toTask(row: TaskRow): Task {
  return {
    id: Number(row.id),
    status: row.status,
    data: parseData(row.data),
    attempts: row.attempts,
    lastError: row.last_error,
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    dispatchedAt: row.dispatched_at,
    finishedAt: row.finished_at,
  };
}
