import { type Decoded, MESSAGE_LIMITS, type QueueMessage, SIMULATED, TYPE_NAME } from '../wire/message-codec.js';
import { laxWholeNumber } from './task-input.js';
import type { TaskData } from './task-schema.js';

/**
 * The `data` of a row as a task to run, or why it cannot become one (`invalid task data: …`):
 * `message` a string and `time` a whole number of seconds, read as the API reads a body, so a
 * row an older client or a hand wrote is run when it means the same. MySQL hands JSON columns
 * over parsed, MariaDB as text.
 */
export function decodeTaskData(data: unknown): Decoded<TaskData> {
  let value = data;
  if (typeof data === 'string') {
    try {
      value = JSON.parse(data);
    } catch {
      return { ok: false, reason: 'invalid task data: not JSON' };
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, reason: 'invalid task data: not a JSON object' };
  }
  const { message, time } = value as Record<string, unknown>;
  if (typeof message !== 'string') return { ok: false, reason: 'invalid task data: message must be a string' };
  const seconds = laxWholeNumber(time);
  if (seconds === null || seconds < 0 || seconds > MESSAGE_LIMITS.maxTimeS) {
    return {
      ok: false,
      reason: `invalid task data: time must be a whole number of seconds from 0 to ${MESSAGE_LIMITS.maxTimeS}`,
    };
  }
  return { ok: true, value: { message, time: seconds } };
}

/** The columns of a row that its message is built from. */
export interface MessageColumns {
  id: number;
  type: string;
  data: unknown;
  attempts: number;
  timeout_ms: number | null;
  max_attempts: number | null;
}

/** The columns a message is built from, for the SELECT of a claim or a recovery. */
export const MESSAGE_COLUMNS = 'id, type, data, attempts, timeout_ms, max_attempts';

/**
 * The message of a row's task in `run`, or why it cannot have one. A task of the original's
 * work carries its data (read as decodeTaskData reads it); a task of another type carries its
 * type, its data staying in MySQL.
 */
export function messageOf(row: MessageColumns, run: number): Decoded<QueueMessage> {
  // Built field by field (a message per claimed task: no intermediate objects).
  let message: QueueMessage;
  if (row.type === SIMULATED) {
    const data = decodeTaskData(row.data);
    if (!data.ok) return data;
    message = {
      id: Number(row.id),
      message: data.value.message,
      time: data.value.time,
      tries: Number(row.attempts),
      run,
    };
  } else {
    if (!TYPE_NAME.test(row.type))
      return { ok: false, reason: `invalid task data: ${JSON.stringify(row.type)} is not a type name` };
    message = { id: Number(row.id), type: row.type, tries: Number(row.attempts), run };
  }
  if (row.timeout_ms !== null) message.timeout_ms = Number(row.timeout_ms);
  if (row.max_attempts !== null) message.max_attempts = Number(row.max_attempts);
  return { ok: true, value: message };
}
