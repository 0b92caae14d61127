import { type Decoded, MESSAGE_LIMITS } from './message-codec.js';
import type { TaskData } from './task-schema.js';

/**
 * A whole number as pydantic 2 reads an `int` in lax mode: an integral number, a string of
 * one with surrounding whitespace, or a boolean. Null when it is none of those.
 */
export function laxWholeNumber(value: unknown): number | null {
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string') {
    const text = value.trim();
    if (!/^[+-]?\d+(\.0*)?$/.test(text)) return null;
    return Number(text);
  }
  return typeof value === 'number' && Number.isInteger(value) ? value : null;
}

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
