/**
 * The wire format: the one place that writes and reads the messages on `task_queue` and the
 * entries of `dead-letter-queue`. The Lua scripts that must build a message (reap.lua) use
 * `lua/includes/message.lua`, which writes the same bytes and is handed MESSAGE_LIMITS; a test
 * pins both.
 *
 * A message of the original's work (the `simulated` type) is the original's
 * `{"id","message","time","tries"}` plus `run`: the run of the task it belongs to (each claim of
 * a task starts a new run, see the claim transition), so a stale or duplicate message changes
 * nothing. A message without `run` is of run 0, as tasks were before runs were counted. A task
 * of another type is carried as `{"id","type","tries","run"}`: its data stays in MySQL, read
 * when it runs. Either carries `timeout_ms` and `max_attempts` when its task has its own.
 */

/** What every message carries. `tries` counts the failed tries of its run so far. */
interface MessageFields {
  id: number;
  tries: number;
  run: number;
  /** The task's own deadline per try (ms), when it has one. */
  timeout_ms?: number;
  /** The task's own number of tries, when it has one. */
  max_attempts?: number;
}

/** A message of the original's work: its data travels with it. */
export interface SimulatedMessage extends MessageFields {
  type?: undefined;
  message: string;
  time: number;
}

/** A message of a task of another type: its data is in MySQL. */
export interface TypedMessage extends MessageFields {
  type: string;
}

/** A message on `task_queue`. */
export type QueueMessage = SimulatedMessage | TypedMessage;

/** The name of the original's work, the type of every task posted without one. */
export const SIMULATED = 'simulated';

/** A type's name: ASCII letters, digits and `_ . : -`, starting with a letter, at most 64 characters. */
export const TYPE_NAME = /^[A-Za-z][A-Za-z0-9_.:-]{0,63}$/;

/** An entry of `dead-letter-queue` for a task: its last message plus why and when it was given up. */
export type DeadLetter = QueueMessage & {
  error: string;
  failed_at: string;
};

/** An entry of `dead-letter-queue` for something that was not a valid message (pushed by hand, say). */
export interface InvalidEntry {
  error: string;
  raw: string;
  failed_at: string;
}

/**
 * The bounds every message field is checked against, so nothing the database would reject gets
 * that far. Written here only: the Lua scripts are handed them (see redis/scripts.ts), and the
 * settings that feed these fields are bounded by them (config.ts).
 */
export const MESSAGE_LIMITS = {
  /** The largest `time` (s) of any message; MAX_TASK_TIME_S cannot be set above it. */
  maxTimeS: 86_400,
  /** The most tries a message may count; MAX_ATTEMPTS cannot be set above it. */
  maxTries: 1_000,
  /** `run` is an INT UNSIGNED column. */
  maxRun: 4_294_967_295,
  /** The longest deadline of one try (ms): a day, and what a timer can wait. */
  maxTimeoutMs: 86_400_000,
  /** UTF-8 bytes of an error kept in a dead letter and in `last_error`; longer ones are cut, marked with `…`. */
  maxErrorBytes: 2_000,
  /** UTF-8 bytes of an invalid entry kept in its dead letter. */
  maxRawBytes: 10_000,
} as const;

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const ELLIPSIS = '…';
/** The ellipsis's length in UTF-8. */
const ELLIPSIS_BYTES = 3;

/**
 * `text` cut to at most `maxBytes` bytes of UTF-8, at a character boundary, marked with `…`
 * when cut: the same bytes as cut_text in lua/includes/message.lua.
 */
export function cutText(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes - ELLIPSIS_BYTES;
  // Back off the continuation bytes (10xxxxxx) of a character cut in the middle.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}${ELLIPSIS}`;
}

/** An error text as it is kept: at most `MESSAGE_LIMITS.maxErrorBytes` bytes. */
export function errorText(error: string): string {
  return cutText(error, MESSAGE_LIMITS.maxErrorBytes);
}

export function encodeMessage(m: QueueMessage): string {
  const head =
    m.type === undefined
      ? `{"id":${m.id},"message":${JSON.stringify(m.message)},"time":${m.time}`
      : `{"id":${m.id},"type":"${m.type}"`;
  const own =
    (m.timeout_ms === undefined ? '' : `,"timeout_ms":${m.timeout_ms}`) +
    (m.max_attempts === undefined ? '' : `,"max_attempts":${m.max_attempts}`);
  return `${head},"tries":${m.tries},"run":${m.run}${own}}`;
}

export function encodeDeadLetter(letter: DeadLetter): string {
  const message = encodeMessage(letter).slice(0, -1);
  return `${message},"error":${JSON.stringify(errorText(letter.error))},"failed_at":${JSON.stringify(letter.failed_at)}}`;
}

export function encodeInvalidEntry(entry: InvalidEntry): string {
  return JSON.stringify({
    error: errorText(entry.error),
    raw: cutText(entry.raw, MESSAGE_LIMITS.maxRawBytes),
    failed_at: entry.failed_at,
  });
}

const isWhole = (v: unknown, min: number, max: number): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

function object(raw: string): Decoded<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json))
    return { ok: false, reason: 'not a JSON object' };
  return { ok: true, value: json as Record<string, unknown> };
}

/** The fields every message and dead letter of a task carries, checked; the first problem is named. */
function taskFields(o: Record<string, unknown>): Decoded<QueueMessage> {
  const { id, type, message, time, tries, timeout_ms, max_attempts } = o;
  const run = o.run ?? 0;
  if (!isWhole(id, 1, Number.MAX_SAFE_INTEGER)) return { ok: false, reason: 'id must be a positive integer' };
  if (type !== undefined && (typeof type !== 'string' || !TYPE_NAME.test(type) || type === SIMULATED)) {
    return { ok: false, reason: 'type must be the name of a type other than simulated' };
  }
  if (type === undefined && typeof message !== 'string') return { ok: false, reason: 'message must be a string' };
  if (type === undefined && !isWhole(time, 0, MESSAGE_LIMITS.maxTimeS)) {
    return { ok: false, reason: `time must be a whole number of seconds from 0 to ${MESSAGE_LIMITS.maxTimeS}` };
  }
  if (!isWhole(tries, 0, MESSAGE_LIMITS.maxTries)) {
    return { ok: false, reason: `tries must be a whole number from 0 to ${MESSAGE_LIMITS.maxTries}` };
  }
  if (!isWhole(run, 0, MESSAGE_LIMITS.maxRun)) {
    return { ok: false, reason: `run must be a whole number from 0 to ${MESSAGE_LIMITS.maxRun}` };
  }
  if (timeout_ms !== undefined && !isWhole(timeout_ms, 1, MESSAGE_LIMITS.maxTimeoutMs)) {
    return { ok: false, reason: `timeout_ms must be a whole number from 1 to ${MESSAGE_LIMITS.maxTimeoutMs}` };
  }
  if (max_attempts !== undefined && !isWhole(max_attempts, 1, MESSAGE_LIMITS.maxTries)) {
    return { ok: false, reason: `max_attempts must be a whole number from 1 to ${MESSAGE_LIMITS.maxTries}` };
  }
  const own = {
    ...(timeout_ms === undefined ? {} : { timeout_ms }),
    ...(max_attempts === undefined ? {} : { max_attempts }),
  };
  return {
    ok: true,
    value:
      type === undefined
        ? { id, message: message as string, time: time as number, tries, run, ...own }
        : { id, type: type as string, tries, run, ...own },
  };
}

/** A message from `task_queue`, or why it is not one (`invalid message: …`). */
export function decodeMessage(raw: string): Decoded<QueueMessage> {
  const parsed = object(raw);
  const fields = parsed.ok ? taskFields(parsed.value) : parsed;
  return fields.ok ? fields : { ok: false, reason: `invalid message: ${fields.reason}` };
}

/**
 * What the DLQ processor records of a dead letter: its task, run, tries and error. `tries` is
 * null, with the reason in `problem`, when it is not a valid count: the letter still names its
 * run, so its task is still failed, without trusting the count. An entry without a valid id
 * and run names no task.
 */
export interface DeadLetterRecord {
  id: number;
  run: number;
  tries: number | null;
  error: string;
  problem: string | null;
}

export function decodeDeadLetter(raw: string): Decoded<DeadLetterRecord> {
  const parsed = object(raw);
  if (!parsed.ok) return { ok: false, reason: `invalid dead letter: ${parsed.reason}` };
  const { id, tries, error } = parsed.value;
  const run = parsed.value.run ?? 0;
  if (!isWhole(id, 1, Number.MAX_SAFE_INTEGER))
    return { ok: false, reason: 'invalid dead letter: id must be a positive integer' };
  if (!isWhole(run, 0, MESSAGE_LIMITS.maxRun)) {
    return { ok: false, reason: `invalid dead letter: run must be a whole number from 0 to ${MESSAGE_LIMITS.maxRun}` };
  }
  const valid = isWhole(tries, 0, MESSAGE_LIMITS.maxTries);
  return {
    ok: true,
    value: {
      id,
      run,
      tries: valid ? tries : null,
      error: errorText(typeof error === 'string' ? error : 'dead-lettered'),
      problem: valid ? null : `invalid dead letter: tries must be a whole number from 0 to ${MESSAGE_LIMITS.maxTries}`,
    },
  };
}

/**
 * The task id an entry names, read as leniently as possible, or null. Only for undoing what
 * an entry may have stood for (its task's presence in Redis), never for writing to a task.
 */
export function namedTaskId(raw: string): number | null {
  const match = /"id"\s*:\s*(\d{1,16})[,}\s]/.exec(raw);
  const id = match ? Number(match[1]) : Number.NaN;
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}
