import type { TaskStatus } from '../tasks/task-schema.js';
import { namedTaskId } from './message-codec.js';

/**
 * An entry of the dead-letter list as operators see it (the API's `GET /dead-letters`, the
 * CLI's `dlq list`): read once from what is stored, each field only when of the right type (an
 * entry pushed by hand may hold anything). Recording a dead letter in MySQL reads it strictly
 * instead (decodeDeadLetter).
 */
export interface DeadLetterEntry {
  /** The entry exactly as it is in Redis (what `LREM` needs to remove it). */
  raw: string;
  /** The task it names, or null for an entry that names none (an invalid message). */
  id: number | null;
  message: string | null;
  /** Tries of the run that was given up. */
  tries: number | null;
  error: string | null;
  failed_at: string | null;
  /** For an entry that names no task: the text that was not a valid message (or the entry itself). */
  kept: string | null;
}

const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const whole = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) ? value : null;

function fieldsOf(raw: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

export function readDeadLetter(raw: string): DeadLetterEntry {
  const fields = fieldsOf(raw);
  const id = namedTaskId(raw);
  return {
    raw,
    id,
    message: text(fields.message),
    tries: whole(fields.tries),
    error: text(fields.error),
    failed_at: text(fields.failed_at),
    kept: id === null ? (text(fields.raw) ?? raw) : null,
  };
}

/** One entry of the dead-letter list as shown, with its task's status now. */
export interface DeadLetterView {
  /** The task the entry names; null for an entry that names none (an invalid message). */
  id: number | null;
  /** The task's status in MySQL now; null when the entry names no task or its task is gone. */
  status: TaskStatus | null;
  message: string | null;
  tries: number | null;
  error: string | null;
  failed_at: string | null;
  /** For an entry that names no task: the text that was not a valid message (or the entry itself). */
  raw: string | null;
}

export function deadLetterView(entry: DeadLetterEntry, status: TaskStatus | null): DeadLetterView {
  return {
    id: entry.id,
    status: entry.id === null ? null : status,
    message: entry.message,
    tries: entry.tries,
    error: entry.error,
    failed_at: entry.failed_at,
    raw: entry.kept,
  };
}
