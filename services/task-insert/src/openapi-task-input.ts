import {
  type HandlerRegistry,
  MAX_DELAY_MS,
  PRIORITY,
  SIMULATED,
  type TaskInputLimits,
  TIMEOUT_MS,
  type TypeHandler,
  taskInputSchema,
} from '@tasks/common';
import { z } from 'zod';
import type { Json } from './openapi-components.js';

/**
 * The request body of `POST /tasks` in the OpenAPI document: the original's body (generated
 * from the validator that reads it), and one body per type of the handlers module (generated
 * from the type's zod schema when it has one), with the control fields `type` and `timeout_ms`.
 */

const timeoutMs = {
  type: ['integer', 'null'],
  minimum: TIMEOUT_MS.min,
  maximum: TIMEOUT_MS.max,
  description:
    "A try's deadline (ms) for this task: its handler's signal aborts then, and the try fails (it is retried " +
    "as a failure is). A JSON integer; left out or null: the type's timeoutMs, or none.",
};

/** The fields of any body that say when, in what order and in which group its task runs. */
const scheduling: Json = {
  run_at: {
    type: ['string', 'null'],
    format: 'date-time',
    description:
      'When the task is due: an ISO 8601 instant with its offset (2026-12-03T14:00:00Z), at most a year ahead. It is ' +
      "delayed until then by MySQL's clock, then claimed within about a second; an instant past is due at once. " +
      'Not with delay_ms.',
  },
  delay_ms: {
    type: ['integer', 'null'],
    minimum: 0,
    maximum: MAX_DELAY_MS,
    description: "The task is due this long after it is stored, by MySQL's clock. Not with run_at.",
  },
  priority: {
    type: ['integer', 'null'],
    minimum: PRIORITY.min,
    maximum: PRIORITY.max,
    description:
      'Higher is claimed first, oldest first within a priority (0 by default). No priority starves: each claim also ' +
      'takes the oldest task of each lower priority.',
  },
  group: {
    type: ['string', 'null'],
    pattern: '^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$',
    description:
      "A group (a tenant): groups' tasks are claimed in turn, so one group's backlog does not hold back another's " +
      'tasks, and GROUP_CONCURRENCY / GROUP_LIMITS bound how many of a group run at once.',
  },
};

/** The original's body, read as the original read it (pydantic 2, lax mode). */
export function originalInput(limits: TaskInputLimits): Json {
  const { $schema: _dialect, ...generated } = z.toJSONSchema(taskInputSchema(limits), { io: 'input' }) as Json;
  return {
    ...generated,
    properties: {
      ...(generated.properties as Json),
      ...scheduling,
      type: {
        enum: [SIMULATED, null],
        description: "The original's work (the default): wait `time` seconds, fail at random (FAILURE_RATE).",
      },
    },
    description:
      "The original's task. Read as the original read it (pydantic 2, lax mode). Other fields are ignored and " +
      "named in the answer's ignored_fields; timeout_ms too: this task has no deadline of its own. run_at, " +
      'delay_ms, priority and group apply to it as to any task.',
  };
}

/** What a type's schema says of the body, as JSON Schema: its properties and required fields, when it can be told. */
function bodyOf(handler: TypeHandler): { properties: Json; required: string[] } | null {
  const schema = handler.schema as unknown as { _zod?: unknown } | undefined;
  if (!schema?._zod) return null;
  try {
    const generated = z.toJSONSchema(schema as z.ZodType, { io: 'input', unrepresentable: 'any' }) as Json;
    if (generated.type !== 'object') return null;
    return { properties: (generated.properties as Json) ?? {}, required: (generated.required as string[]) ?? [] };
  } catch {
    return null;
  }
}

/** The body of a task of each type of the handlers module; null when there is none. */
export function typedInputs(handlers: HandlerRegistry): Json | null {
  const types = handlers.types.filter((type) => type !== SIMULATED);
  if (types.length === 0) return null;
  return {
    description:
      'A task of a type of the HANDLERS module. Its fields but type, timeout_ms, run_at, delay_ms, priority and ' +
      'group are its data, checked by its ' +
      "type's schema and stored as the schema reads them (fields the schema drops are named in ignored_fields); " +
      'a type without a schema takes any fields.',
    oneOf: types.map((type) => {
      const handler = handlers.get(type) as TypeHandler;
      const body = bodyOf(handler);
      const defaults = [
        handler.timeoutMs === undefined ? null : `timeout ${handler.timeoutMs} ms`,
        handler.maxAttempts === undefined ? null : `${handler.maxAttempts} tries`,
      ].filter((d) => d !== null);
      return {
        title: type,
        type: 'object',
        required: ['type', ...(body?.required ?? [])],
        properties: { type: { const: type }, timeout_ms: timeoutMs, ...scheduling, ...(body?.properties ?? {}) },
        description:
          `The type ${type}${defaults.length > 0 ? ` (its defaults: ${defaults.join(', ')})` : ''}: ` +
          (body
            ? 'its fields as its schema describes them.'
            : handler.schema
              ? 'its fields are checked by its schema, which this document cannot show.'
              : 'any fields (it has no schema).'),
      };
    }),
  };
}
