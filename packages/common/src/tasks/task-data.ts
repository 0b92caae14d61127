import { type Decoded, MESSAGE_LIMITS } from '../wire/message-codec.js';
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
