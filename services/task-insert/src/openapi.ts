import { type Config, TASK_STATUSES, taskInputSchema } from '@tasks/common';
import { z } from 'zod';
import { LIST_LIMIT, THROUGHPUT_MINUTES } from './routes/limits.js';

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonContent = (schema: Json) => ({ 'application/json': { schema } });
const errorResponse = (description: string) => ({ description, content: jsonContent(ref('Error')) });

/** Routes that need the bearer token when API_TOKEN is set (the empty alternative: when it is not). */
const tokenWhenSet = [{ bearerToken: [] }, {}];

const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Task id.',
  schema: { type: 'integer', minimum: 1 },
};

/**
 * The OpenAPI 3.1 description of the API, served at /openapi.json. The body of `POST /tasks`
 * is generated from the zod schema that validates it, with this configuration's limits; the
 * query bounds come from the same constants the routes validate with.
 */
export function openApiDocument(config: Pick<Config, 'MAX_MESSAGE_LENGTH' | 'MAX_TASK_TIME_S'>): Json {
  const { $schema: _dialect, ...taskInput } = z.toJSONSchema(
    taskInputSchema({ maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S }),
  ) as Json;

  return {
    openapi: '3.1.0',
    info: {
      title: 'Task processing API',
      version: '1.0.0',
      description:
        'Tasks are inserted here, run by executors with retries, and dead-lettered when they keep failing. ' +
        'Reads are open; when API_TOKEN is set, every write needs `Authorization: Bearer <API_TOKEN>`.',
    },
    components: {
      securitySchemes: { bearerToken: { type: 'http', scheme: 'bearer', description: 'The API_TOKEN setting.' } },
      schemas: {
        TaskInput: taskInput,
        Created: {
          type: 'object',
          required: ['id', 'message', 'status'],
          properties: {
            id: { type: 'integer' },
            message: { type: 'string', const: 'Task created successfully' },
            status: { type: 'string', const: 'pending' },
          },
        },
        Task: {
          type: 'object',
          required: ['id', 'status', 'data', 'attempts', 'last_error', 'created_at', 'updated_at'],
          properties: {
            id: { type: 'integer' },
            status: { type: 'string', enum: [...TASK_STATUSES] },
            data: ref('TaskInput'),
            attempts: { type: 'integer', description: 'Runs so far (reset to 0 by a retry).' },
            last_error: { type: ['string', 'null'], description: 'The error of the last failed run, if any.' },
            created_at: { type: 'string', format: 'date-time' },
            updated_at: { type: 'string', format: 'date-time' },
            dispatched_at: { type: ['string', 'null'], format: 'date-time' },
            finished_at: { type: ['string', 'null'], format: 'date-time' },
          },
        },
        TaskList: {
          type: 'object',
          required: ['tasks', 'next_after'],
          properties: {
            tasks: { type: 'array', items: ref('Task') },
            next_after: {
              type: ['integer', 'null'],
              description: 'Pass as `after` for the next page; null on the last page.',
            },
          },
        },
        Retried: {
          type: 'object',
          required: ['task', 'removed_dead_letters'],
          properties: {
            task: ref('Task'),
            removed_dead_letters: { type: 'integer', description: 'Its entries removed from dead-letter-queue.' },
          },
        },
        Stats: {
          type: 'object',
          required: ['tasks', 'queue'],
          properties: {
            tasks: {
              type: 'object',
              description: 'Tasks per status.',
              required: [...TASK_STATUSES],
              properties: Object.fromEntries(TASK_STATUSES.map((s) => [s, { type: 'integer' }])),
            },
            queue: {
              type: 'object',
              description: 'Messages in each Redis structure.',
              required: ['ready', 'delayed', 'inflight', 'dead_letters', 'dead_letter_inbox'],
              properties: {
                ready: { type: 'integer', description: 'task_queue: waiting for an executor.' },
                delayed: { type: 'integer', description: 'Retries waiting out their backoff.' },
                inflight: { type: 'integer', description: 'Leased by an executor, running.' },
                dead_letters: { type: 'integer', description: 'dead-letter-queue: kept for inspection.' },
                dead_letter_inbox: {
                  type: 'integer',
                  description: 'Dead letters the DLQ processor has yet to record.',
                },
              },
            },
          },
        },
        Throughput: {
          type: 'object',
          required: ['minutes'],
          properties: {
            minutes: {
              type: 'array',
              description: 'Oldest first, one entry per minute, the current minute last.',
              items: {
                type: 'object',
                required: ['minute', 'completed', 'failed'],
                properties: {
                  minute: { type: 'string', format: 'date-time' },
                  completed: { type: 'integer' },
                  failed: { type: 'integer' },
                },
              },
            },
          },
        },
        Readiness: {
          type: 'object',
          required: ['ready', 'checks'],
          properties: {
            ready: { type: 'boolean' },
            checks: {
              type: 'object',
              properties: { mysql: ref('Check'), redis: ref('Check') },
            },
          },
        },
        Check: {
          type: 'object',
          required: ['ok'],
          properties: { ok: { type: 'boolean' }, ms: { type: 'integer' }, error: { type: 'string' } },
        },
        Error: {
          type: 'object',
          required: ['error', 'message'],
          properties: {
            error: { type: 'string', description: 'A stable code, e.g. invalid_task.' },
            message: { type: 'string' },
            details: {
              type: 'array',
              items: {
                type: 'object',
                required: ['field', 'message'],
                properties: { field: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    paths: {
      '/tasks': {
        post: {
          summary: 'Insert a task',
          security: tokenWhenSet,
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              description:
                'A repeated key returns the first task instead of creating another. Keys compare exactly, case included.',
              schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7e]+$' },
            },
          ],
          requestBody: { required: true, content: jsonContent(ref('TaskInput')) },
          responses: {
            '201': {
              description: 'Created (or replayed for a known Idempotency-Key).',
              content: jsonContent(ref('Created')),
            },
            '400': errorResponse('The body or a header is not valid.'),
            '401': errorResponse('API_TOKEN is set and the bearer token is missing or wrong.'),
            '413': errorResponse('The body is larger than BODY_LIMIT_BYTES.'),
            '415': errorResponse('The body is not declared application/json.'),
            '422': errorResponse('The Idempotency-Key was used with a different body.'),
            '429': errorResponse('More than RATE_LIMIT_PER_MINUTE requests from this address; see Retry-After.'),
          },
        },
        get: {
          summary: 'List tasks, newest first',
          parameters: [
            {
              name: 'status',
              in: 'query',
              required: false,
              schema: { type: 'string', enum: [...TASK_STATUSES] },
            },
            {
              name: 'limit',
              in: 'query',
              required: false,
              schema: {
                type: 'integer',
                minimum: LIST_LIMIT.min,
                maximum: LIST_LIMIT.max,
                default: LIST_LIMIT.default,
              },
            },
            {
              name: 'after',
              in: 'query',
              required: false,
              description: 'Keyset cursor: tasks with an id below this one (`next_after` of the previous page).',
              schema: { type: 'integer', minimum: 1 },
            },
          ],
          responses: {
            '200': { description: 'A page of tasks.', content: jsonContent(ref('TaskList')) },
            '400': errorResponse('A query parameter is not valid.'),
          },
        },
      },
      '/tasks/{id}': {
        get: {
          summary: 'Read a task',
          parameters: [idParameter],
          responses: {
            '200': { description: 'The task.', content: jsonContent(ref('Task')) },
            '400': errorResponse('The id is not a positive integer.'),
            '404': errorResponse('No such task.'),
          },
        },
      },
      '/tasks/{id}/retry': {
        post: {
          summary: 'Run a failed task again',
          description:
            'The task goes back to pending with its attempts reset, and its entries leave dead-letter-queue. ' +
            'Only a failed task can be retried.',
          security: tokenWhenSet,
          parameters: [idParameter],
          responses: {
            '200': { description: 'The task, now pending.', content: jsonContent(ref('Retried')) },
            '400': errorResponse('The id is not a positive integer.'),
            '401': errorResponse('API_TOKEN is set and the bearer token is missing or wrong.'),
            '404': errorResponse('No such task.'),
            '409': errorResponse('The task is not failed.'),
          },
        },
      },
      '/stats': {
        get: {
          summary: 'Tasks per status and queue depths',
          responses: { '200': { description: 'Counts.', content: jsonContent(ref('Stats')) } },
        },
      },
      '/stats/throughput': {
        get: {
          summary: 'Tasks finished per minute',
          parameters: [
            {
              name: 'minutes',
              in: 'query',
              required: false,
              schema: {
                type: 'integer',
                minimum: THROUGHPUT_MINUTES.min,
                maximum: THROUGHPUT_MINUTES.max,
                default: THROUGHPUT_MINUTES.default,
              },
            },
          ],
          responses: {
            '200': { description: 'Completed and failed per minute.', content: jsonContent(ref('Throughput')) },
            '400': errorResponse('A query parameter is not valid.'),
          },
        },
      },
      '/healthz': {
        get: {
          summary: 'Liveness: the process answers',
          responses: {
            '200': {
              description: 'Alive.',
              content: jsonContent({ type: 'object', properties: { status: { const: 'ok' } } }),
            },
          },
        },
      },
      '/readyz': {
        get: {
          summary: "Readiness: MySQL answers and Redis takes a write to the queue's keys",
          responses: {
            '200': { description: 'Ready.', content: jsonContent(ref('Readiness')) },
            '503': {
              description:
                "MySQL does not answer, or Redis does not take the write (its answer, e.g. READONLY or MOVED, is in the redis check's error).",
              content: jsonContent(ref('Readiness')),
            },
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics',
          responses: { '200': { description: 'Text exposition format.', content: { 'text/plain': {} } } },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1.', content: { 'application/json': {} } } },
        },
      },
      '/': {
        get: {
          summary: 'The dashboard (HTML)',
          responses: { '200': { description: 'The page.', content: { 'text/html': {} } } },
        },
      },
    },
  };
}
