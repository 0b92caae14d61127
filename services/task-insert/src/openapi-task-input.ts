import {
  type HandlerRegistry,
  SIMULATED,
  type TaskInputLimits,
  type TypeHandler,
  taskInputSchema,
} from '@tasks/common';
import { z } from 'zod';
import type { Json } from './openapi-components.js';
import { TIMEOUT_MS } from './task-body.js';

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

/** The original's body, read as the original read it (pydantic 2, lax mode). */
export function originalInput(limits: TaskInputLimits): Json {
  const { $schema: _dialect, ...generated } = z.toJSONSchema(taskInputSchema(limits), { io: 'input' }) as Json;
  return {
    ...generated,
    properties: {
      ...(generated.properties as Json),
      type: {
        enum: [SIMULATED, null],
        description: "The original's work (the default): wait `time` seconds, fail at random (FAILURE_RATE).",
      },
    },
    description:
      "The original's task. Read as the original read it (pydantic 2, lax mode). Other fields are ignored and " +
      "named in the answer's ignored_fields; timeout_ms too: this task has no deadline of its own.",
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
      'A task of a type of the HANDLERS module. Its fields but type and timeout_ms are its data, checked by its ' +
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
        properties: { type: { const: type }, timeout_ms: timeoutMs, ...(body?.properties ?? {}) },
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
