import { z } from 'zod';
import type { HandlerRegistry } from '../handlers.js';
import { MESSAGE_LIMITS, SIMULATED } from '../wire/message-codec.js';
import type { NewTask } from './insert-tasks.js';
import { decodeTaskData } from './task-data.js';
import { ignoredFields, type TaskInputLimits, taskInputSchema } from './task-input.js';
import type { Task } from './task-row.js';
import { GROUP_NAME, type TaskData } from './task-schema.js';

/**
 * The body of `POST /tasks` (and of an enqueue in a caller's transaction), read into the task
 * to insert.
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
 *
 * Any body, the original's too, may say when, in what order and in which group its task runs
 * (SCHEDULING_FIELDS): `run_at` (an ISO 8601 instant with its offset) or `delay_ms`, up to a
 * year ahead; `priority`, a whole number from -1000 to 1000, higher first (0 by default);
 * `group`, a name of up to 64 letters, digits and `_.:@-`. These are new fields, read strictly
 * (a JSON number is a number, not a string of one); none of them changes the task's message.
 */

/** One field of a body at fault, and why. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** The fields of any body that say when, in what order and in which group its task runs. */
export const SCHEDULING_FIELDS = ['run_at', 'delay_ms', 'priority', 'group'] as const;

/** The fields of a typed task's body that steer the task rather than being its data. */
export const CONTROL_FIELDS = ['type', 'timeout_ms', ...SCHEDULING_FIELDS] as const;

/** The range of `priority`: higher is claimed first. */
export const PRIORITY = { min: -1000, max: 1000 } as const;

/** The furthest ahead a task may be due (ms): a year. */
export const MAX_DELAY_MS = 365 * 86_400_000;

const schedulingSchema = z
  .object({
    run_at: z.iso
      .datetime({ offset: true, error: 'must be an ISO 8601 instant with its offset, as 2026-12-03T14:00:00Z' })
      .nullish(),
    delay_ms: z
      .int({ error: `must be a whole number of milliseconds from 0 to ${MAX_DELAY_MS} (a year)` })
      .min(0, { error: `must be a whole number of milliseconds from 0 to ${MAX_DELAY_MS} (a year)` })
      .max(MAX_DELAY_MS, { error: `must be a whole number of milliseconds from 0 to ${MAX_DELAY_MS} (a year)` })
      .nullish(),
    priority: z
      .int({ error: `must be a whole number from ${PRIORITY.min} to ${PRIORITY.max}` })
      .min(PRIORITY.min, { error: `must be a whole number from ${PRIORITY.min} to ${PRIORITY.max}` })
      .max(PRIORITY.max, { error: `must be a whole number from ${PRIORITY.min} to ${PRIORITY.max}` })
      .nullish(),
    group: z
      .string({ error: 'must be a string' })
      .regex(GROUP_NAME, { error: 'must be 1 to 64 letters, digits and _.:@- (starting with a letter or digit)' })
      .nullish(),
  })
  .superRefine((fields, ctx) => {
    if (fields.run_at != null && fields.delay_ms != null) {
      ctx.addIssue({ code: 'custom', path: ['delay_ms'], message: 'give run_at or delay_ms, not both' });
    }
  });

type Scheduling = Pick<NewTask, 'runAt' | 'delayMs' | 'priority' | 'group'>;

/**
 * The scheduling fields of a body, or what is wrong with them. `now` bounds `run_at` to a year
 * ahead of this host's clock: a bound only; when the task is due is MySQL's clock's to say.
 */
function readScheduling(
  body: unknown,
  now: number,
): { ok: true; fields: Scheduling } | { ok: false; problems: FieldProblem[] } {
  const parsed = schedulingSchema.safeParse(isObject(body) ? body : {});
  if (!parsed.success) return { ok: false, problems: issuesOf(parsed.error.issues) };
  const { run_at, delay_ms, priority, group } = parsed.data;
  const fields: Scheduling = {};
  if (run_at != null) {
    const at = new Date(run_at);
    if (at.getTime() > now + MAX_DELAY_MS) {
      return { ok: false, problems: [{ field: 'run_at', message: 'must be at most a year ahead' }] };
    }
    fields.runAt = at;
  }
  if (delay_ms != null && delay_ms > 0) fields.delayMs = delay_ms;
  if (priority != null) fields.priority = priority;
  if (group != null) fields.group = group;
  return { ok: true, fields };
}

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
    private readonly now: () => number = Date.now,
  ) {
    this.original = taskInputSchema(limits);
  }

  /** Every type a body may name. */
  get types(): string[] {
    return this.handlers.types;
  }

  read(body: unknown): ReadBody {
    const type = isObject(body) ? body.type : undefined;
    const read =
      type === undefined || type === null
        ? this.readOriginal(body, [])
        : type === SIMULATED
          ? this.readOriginal(body, ['type'])
          : this.readTyped(body as JsonObject, type);
    const scheduling = readScheduling(body, this.now());
    if (!scheduling.ok) return { ok: false, problems: [...(read.ok ? [] : read.problems), ...scheduling.problems] };
    if (!read.ok) return read;
    return { ...read, task: { ...read.task, ...scheduling.fields } };
  }

  private readOriginal(body: unknown, read: string[]): ReadBody {
    const parsed = this.original.safeParse(body);
    if (!parsed.success) return { ok: false, problems: issuesOf(parsed.error.issues) };
    const known = [...read, ...SCHEDULING_FIELDS];
    return { ok: true, task: { data: parsed.data }, ignored: ignoredFields(body).filter((f) => !known.includes(f)) };
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
 * of equal value), deadline, priority and group (not its due time, which a `delay_ms` makes
 * relative to the first insert). How an Idempotency-Key replay knows its body is the first one's.
 */
export function sameTask(stored: Task, task: Omit<NewTask, 'idempotencyKey'>): boolean {
  const type = task.type ?? SIMULATED;
  if (stored.type !== type) return false;
  if (stored.priority !== (task.priority ?? 0) || stored.group !== (task.group ?? null)) return false;
  if (type === SIMULATED) {
    // The original's data, read as a row is read to run it: a time stored as "3" is 3.
    const original = decodeTaskData(stored.data);
    const wanted = task.data as TaskData;
    return original.ok && original.value.message === wanted.message && original.value.time === wanted.time;
  }
  if (stored.timeoutMs !== (task.timeoutMs ?? null)) return false;
  return canonical(stored.data) === canonical(JSON.parse(JSON.stringify(task.data)));
}
