import {
  decodeTaskData,
  type HandlerRegistry,
  ignoredFields,
  MESSAGE_LIMITS,
  type NewTask,
  SIMULATED,
  type Task,
  type TaskData,
  type TaskInputLimits,
  taskInputSchema,
} from '@tasks/common';
import type { FieldProblem } from './http-errors.js';

/**
 * The body of `POST /tasks`, read into the task to insert.
 *
 * Without `type` (or with `"type":"simulated"`, or `"type":null` as the original ignored it)
 * the body is the original's, read exactly as before: pydantic's lax rules for `message` and
 * `time`, and every other field ignored and named (`timeout_ms` too: the original's work has
 * no deadline of its own, so its message stays the original's, byte for byte).
 *
 * With another type, `type` must name a type of the handlers module; the body without its
 * control fields (`type`, `timeout_ms`) is checked with that type's schema, and what the schema
 * makes of it is the task's data (no schema: the body as it is). `timeout_ms`, a whole number of
 * ms from 1 to a day, is the task's own deadline per try; without it the type's `timeoutMs`
 * (or none). The type's `maxAttempts` is stored with the task.
 */

/** The fields of a typed task's body that steer the task rather than being its data. */
export const CONTROL_FIELDS = ['type', 'timeout_ms'] as const;

/** A task's own deadline per try: 1 ms to a day (what a timer can wait). */
export const TIMEOUT_MS = { min: 1, max: MESSAGE_LIMITS.maxTimeoutMs } as const;

/** What a body is read into: the task (but its Idempotency-Key) and the fields it ignored. */
export type ReadBody =
  | { ok: true; task: Omit<NewTask, 'idempotencyKey'>; ignored: string[] }
  | { ok: false; problems: FieldProblem[] };

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const issuesOf = (issues: { path: PropertyKey[]; message: string }[]): FieldProblem[] =>
  issues.map((issue) => ({ field: issue.path.map(String).join('.') || 'body', message: issue.message }));

export class TaskBodyReader {
  private readonly original: ReturnType<typeof taskInputSchema>;

  constructor(
    limits: TaskInputLimits,
    private readonly handlers: HandlerRegistry,
  ) {
    this.original = taskInputSchema(limits);
  }

  /** Every type a body may name. */
  get types(): string[] {
    return this.handlers.types;
  }

  read(body: unknown): ReadBody {
    const type = isObject(body) ? body.type : undefined;
    if (type === undefined || type === null) return this.readOriginal(body, []);
    if (type === SIMULATED) return this.readOriginal(body, ['type']);
    return this.readTyped(body as JsonObject, type);
  }

  private readOriginal(body: unknown, read: string[]): ReadBody {
    const parsed = this.original.safeParse(body);
    if (!parsed.success) return { ok: false, problems: issuesOf(parsed.error.issues) };
    return { ok: true, task: { data: parsed.data }, ignored: ignoredFields(body).filter((f) => !read.includes(f)) };
  }

  private readTyped(body: JsonObject, type: unknown): ReadBody {
    const handler = typeof type === 'string' ? this.handlers.get(type) : undefined;
    if (typeof type !== 'string' || !handler) {
      const got = typeof type === 'string' ? JSON.stringify(type.slice(0, 100)) : `a ${typeof type}`;
      return {
        ok: false,
        problems: [{ field: 'type', message: `must be one of ${this.types.join(', ')} (got ${got})` }],
      };
    }
    const problems: FieldProblem[] = [];
    const timeout = body.timeout_ms;
    const timeoutOk =
      timeout === undefined ||
      timeout === null ||
      (typeof timeout === 'number' &&
        Number.isInteger(timeout) &&
        timeout >= TIMEOUT_MS.min &&
        timeout <= TIMEOUT_MS.max);
    if (!timeoutOk) {
      problems.push({
        field: 'timeout_ms',
        message: `must be a whole number of milliseconds from ${TIMEOUT_MS.min} to ${TIMEOUT_MS.max}`,
      });
    }
    const rest = Object.fromEntries(
      Object.entries(body).filter(([key]) => !(CONTROL_FIELDS as readonly string[]).includes(key)),
    );
    let data: unknown = rest;
    if (handler.schema) {
      const parsed = handler.schema.safeParse(rest);
      if (parsed.success) data = parsed.data;
      else problems.push(...issuesOf(parsed.error.issues));
    }
    if (problems.length > 0) return { ok: false, problems };
    if (JSON.stringify(data) === undefined) {
      return { ok: false, problems: [{ field: 'body', message: `is no JSON value once read by the ${type} schema` }] };
    }
    const ignored = isObject(data) ? Object.keys(rest).filter((key) => !(key in data)) : [];
    return {
      ok: true,
      task: {
        type,
        data,
        timeoutMs: typeof timeout === 'number' ? timeout : (handler.timeoutMs ?? null),
        maxAttempts: handler.maxAttempts ?? null,
      },
      ignored,
    };
  }
}

/** `value` as JSON text with every object's keys in order: equal texts, equal values (MySQL reorders keys). */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    isObject(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

/**
 * Whether a stored task is the one `task` would insert: the same type, data (as stored: JSON
 * of equal value) and deadline. How an Idempotency-Key replay knows its body is the first one's.
 */
export function sameTask(stored: Task, task: Omit<NewTask, 'idempotencyKey'>): boolean {
  const type = task.type ?? SIMULATED;
  if (stored.type !== type) return false;
  if (type === SIMULATED) {
    // The original's data, read as a row is read to run it: a time stored as "3" is 3.
    const original = decodeTaskData(stored.data);
    const wanted = task.data as TaskData;
    return original.ok && original.value.message === wanted.message && original.value.time === wanted.time;
  }
  if (stored.timeoutMs !== (task.timeoutMs ?? null)) return false;
  return canonical(stored.data) === canonical(JSON.parse(JSON.stringify(task.data)));
}
