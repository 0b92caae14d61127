import { type Config, type HandlerRegistry, TASK_STATUSES } from '@tasks/common';
import { errorResponse, headers, type Json, jsonContent, ref, response, schemas } from './openapi-components.js';
import { originalInput, typedInputs } from './openapi-task-input.js';
import { DEAD_LETTER_OFFSET, DEAD_LETTER_PAGE } from './routes/dead-letters.js';
import { LIST_LIMIT, THROUGHPUT_MINUTES } from './routes/limits.js';

/** Routes that need the bearer token when API_TOKEN is set (the empty alternative: when it is not). */
const tokenWhenSet = [{ bearerToken: [] }, {}];
/** Routes open to anyone. */
const open: unknown[] = [];

const idParameter = {
  name: 'id',
  in: 'path',
  required: true,
  description: 'Task id.',
  schema: { type: 'integer', minimum: 1 },
};

const requestIdParameter = { $ref: '#/components/parameters/X-Request-Id' };

const unavailable = errorResponse(
  'MySQL or Redis cannot be reached, MySQL refuses writes for now (read-only, a lock wait timed out, a ' +
    'transaction rolled back), does not answer within REQUEST_TIMEOUT_MS, or the database is still being prepared ' +
    'after a start; try again shortly.',
);
const unauthorized = errorResponse('API_TOKEN is set and the bearer token is missing or wrong.');
const crossOrigin = errorResponse(
  'A write without a body and without a JSON Content-Type or the bearer token came from another origin (its ' +
    "Origin header is not this API's own).",
);
const badId = errorResponse('The id is not a positive integer, or the path is not percent-encoded properly.');
const bodyWithoutJson = errorResponse(
  'A body was sent with neither the bearer token nor Content-Type: application/json.',
);

/** `?wait=`, of the routes that can wait for their task to be final. */
function waitParameter(maxS: number, what: string): Json {
  return {
    name: 'wait',
    in: 'query',
    required: false,
    description:
      `Seconds to wait for the task to be final (completed, failed or cancelled): ${what} as soon as it is, or ` +
      'with the task as it is when the wait is over. Read from MySQL either way. 0: no wait. At most MAX_WAIT_S.',
    schema: { type: 'integer', minimum: 0, maximum: maxS },
  };
}

/** An operation: every one accepts X-Request-Id, and states its security (empty when open). */
function operation(fields: Json & { operationId: string; security: unknown[]; responses: Json }): Json {
  const parameters = (fields.parameters as unknown[] | undefined) ?? [];
  return { ...fields, parameters: [...parameters, requestIdParameter] };
}

/**
 * An operation's first name, kept for the clients that use it: the operation as it is, under
 * its old operationId, marked deprecated.
 */
function firstName(operation: Json, operationId: string, current: string): Json {
  return {
    ...operation,
    operationId,
    summary: `The first name of ${current}`,
    description: `The same as ${current}, kept for the clients that use this name.`,
    deprecated: true,
  };
}

/**
 * The OpenAPI 3.1 description of the API, served at /openapi.json; `redocly lint` passes it
 * with its recommended rules. The body of `POST /tasks` is generated from the zod schema that
 * validates the original's body (what a client may send), with this configuration's limits,
 * and from the schemas of the types of the handlers module; the query bounds come from the
 * same constants and settings the routes validate with.
 */
export function openApiDocument(
  config: Pick<Config, 'MAX_MESSAGE_LENGTH' | 'MAX_TASK_TIME_S' | 'MAX_WAIT_S'>,
  handlers: HandlerRegistry,
): Json {
  const taskInput = originalInput({ maxMessageLength: config.MAX_MESSAGE_LENGTH, maxTimeS: config.MAX_TASK_TIME_S });
  const typedInput = typedInputs(handlers);

  const redriveTask = operation({
    operationId: 'redriveTask',
    summary: 'Redrive a failed task: run it again from its first attempt',
    description:
      'The task goes back to pending with its attempts reset, and its entries leave dead-letter-queue. ' +
      'Only a failed task can be redriven. There is no body: no Content-Type is needed.',
    security: tokenWhenSet,
    parameters: [idParameter],
    responses: {
      '200': response('The task, now pending.', jsonContent(ref('Retried'))),
      '400': badId,
      '401': unauthorized,
      '404': errorResponse('No such task.'),
      '409': errorResponse('The task is not failed.'),
      '403': crossOrigin,
      '415': errorResponse('A body was sent with neither the bearer token nor Content-Type: application/json.'),
      '503': unavailable,
    },
  });
  const redriveAll = operation({
    operationId: 'redriveAllDeadLetters',
    summary: 'Redrive every failed task of the dead letters',
    description:
      'Every task named in dead-letter-queue that is failed in MySQL goes back to pending with its attempts ' +
      'reset, and its entries leave the list; the other entries stay. The list is read first: when Redis ' +
      'cannot be reached, nothing changes. There is no body: no Content-Type is needed.',
    security: tokenWhenSet,
    responses: {
      '200': response('What was redriven and what stays.', jsonContent(ref('RetriedAll'))),
      '401': unauthorized,
      '403': crossOrigin,
      '415': errorResponse('A body was sent with neither the bearer token nor Content-Type: application/json.'),
      '503': unavailable,
    },
  });
  return {
    openapi: '3.1.0',
    info: {
      title: 'Task processing API',
      version: '1.0.0',
      license: { name: 'MIT', identifier: 'MIT' },
      description:
        'Tasks are inserted here, run by executors with retries, and dead-lettered when they keep failing. ' +
        'Reads are open; when API_TOKEN is set, every write needs `Authorization: Bearer <API_TOKEN>`. ' +
        'A write with a body and without that token must be declared `Content-Type: application/json`, and one ' +
        'without a body is refused from another origin (its `Origin` header), so that no other site can send ' +
        "one through a user's browser.",
    },
    servers: [{ url: '/', description: 'The API that serves this document.' }],
    components: {
      securitySchemes: { bearerToken: { type: 'http', scheme: 'bearer', description: 'The API_TOKEN setting.' } },
      parameters: {
        'X-Request-Id': {
          name: 'X-Request-Id',
          in: 'header',
          required: false,
          description: 'An id of the request for the logs; echoed in the answer. At most 128 characters are kept.',
          schema: { type: 'string' },
        },
      },
      headers,
      schemas: {
        TaskInput: taskInput,
        ...(typedInput ? { TypedTaskInput: typedInput } : {}),
        ...schemas,
      },
    },
    paths: {
      '/tasks': {
        post: operation({
          operationId: 'createTask',
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
            waitParameter(config.MAX_WAIT_S, 'answers 201'),
          ],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: typedInput ? { oneOf: [ref('TaskInput'), ref('TypedTaskInput')] } : ref('TaskInput'),
              },
            },
          },
          responses: {
            '201': response(
              'Created (or replayed for a known Idempotency-Key, with the task as it is now). With wait, once the ' +
                'task is final or the wait is over, with the task.',
              jsonContent(ref('Created')),
              ['Location', 'Idempotent-Replayed', 'RateLimit-Policy', 'RateLimit'],
            ),
            '400': errorResponse(
              'The body, a header or wait is not valid (an unknown type: the message names the known ones); ' +
                'details names each field.',
            ),
            '401': unauthorized,
            '413': errorResponse('The body is larger than BODY_LIMIT_BYTES.'),
            '403': crossOrigin,
            '415': errorResponse('The body is not declared application/json.'),
            '422': errorResponse('The Idempotency-Key was used with a different body.'),
            '429': errorResponse('More than RATE_LIMIT_PER_MINUTE requests from this address.', [
              'Retry-After',
              'RateLimit-Policy',
              'RateLimit',
            ]),
            '503': errorResponse(
              'The task was not stored: MySQL cannot be reached, is still being prepared after a start or refuses ' +
                'writes for now, INSERT_QUEUE_LIMIT inserts ' +
                'wait already, MySQL has answered no insert for half of REQUEST_TIMEOUT_MS, or this one had no answer ' +
                'within REQUEST_TIMEOUT_MS (it was withdrawn, or stopped on the server), or, with wait, MAX_WAITERS ' +
                'requests wait already. Except when the message says the outcome is unknown (the connection was lost ' +
                'during the commit): retry with the same Idempotency-Key.',
              ['Retry-After'],
            ),
          },
        }),
        get: operation({
          operationId: 'listTasks',
          summary: 'List tasks, newest first',
          security: open,
          parameters: [
            { name: 'status', in: 'query', required: false, schema: { type: 'string', enum: [...TASK_STATUSES] } },
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
            '200': response('A page of tasks.', jsonContent(ref('TaskList'))),
            '400': errorResponse('A query parameter is not valid.'),
            '503': unavailable,
          },
        }),
      },
      '/tasks/{id}': {
        get: operation({
          operationId: 'getTask',
          summary: 'Read a task',
          security: open,
          parameters: [idParameter, waitParameter(config.MAX_WAIT_S, 'answers')],
          responses: {
            '200': response(
              'The task (with wait: once it is final, or as it is when the wait is over).',
              jsonContent(ref('Task')),
            ),
            '400': errorResponse('The id is not a positive integer, or wait is not valid.'),
            '404': errorResponse('No such task.'),
            '503': errorResponse(
              'MySQL or Redis cannot be reached or does not answer within REQUEST_TIMEOUT_MS (each read of a ' +
                'waiting request), the database is still being prepared, or, with wait, MAX_WAITERS requests wait ' +
                'already; try again shortly.',
              ['Retry-After'],
            ),
          },
        }),
      },
      '/tasks/{id}/cancel': {
        post: operation({
          operationId: 'cancelTask',
          summary: 'Cancel a task that has not finished',
          description:
            'A delayed, pending or processing task becomes cancelled at once, a final status: the executor running it, if ' +
            "one does, is told to stop it (its handler's signal aborts), and whatever its run does later changes " +
            'nothing. Cancelling a cancelled task again is harmless. There is no body: no Content-Type is needed.',
          security: tokenWhenSet,
          parameters: [idParameter],
          responses: {
            '200': response('The task, cancelled (now or before).', jsonContent(ref('Task'))),
            '400': badId,
            '401': unauthorized,
            '403': crossOrigin,
            '404': errorResponse('No such task.'),
            '409': response('The task is completed or failed: it stays so.', jsonContent(ref('CancelRefused'))),
            '415': bodyWithoutJson,
            '503': errorResponse(
              'MySQL or Redis cannot be reached or does not answer within REQUEST_TIMEOUT_MS: the task may or may not ' +
                'be cancelled; a retry is harmless.',
            ),
          },
        }),
      },
      '/tasks/{id}/redrive': { post: redriveTask },
      '/tasks/{id}/retry': { post: firstName(redriveTask, 'retryTask', 'POST /tasks/{id}/redrive') },
      '/dead-letters': {
        get: operation({
          operationId: 'listDeadLetters',
          summary: 'Dead letters, newest first (the order in which tasks failed)',
          description:
            "A page of dead-letter-queue with the status of each entry's task in MySQL now, and the number of " +
            'entries in the list. Pages are by position: entries that fail meanwhile push the others down.',
          security: open,
          parameters: [
            {
              name: 'offset',
              in: 'query',
              required: false,
              description: 'Entries to skip from the newest (`next_offset` of the previous page).',
              schema: {
                type: 'integer',
                minimum: DEAD_LETTER_OFFSET.min,
                maximum: DEAD_LETTER_OFFSET.max,
                default: DEAD_LETTER_OFFSET.min,
              },
            },
            {
              name: 'limit',
              in: 'query',
              required: false,
              schema: {
                type: 'integer',
                minimum: DEAD_LETTER_PAGE.min,
                maximum: DEAD_LETTER_PAGE.max,
                default: DEAD_LETTER_PAGE.default,
              },
            },
          ],
          responses: {
            '200': response('A page of dead letters.', jsonContent(ref('DeadLetterPage'))),
            '400': errorResponse('A query parameter is not valid.'),
            '503': unavailable,
          },
        }),
      },
      '/dead-letters/redrive': { post: redriveAll },
      '/dead-letters/retry': { post: firstName(redriveAll, 'retryAllDeadLetters', 'POST /dead-letters/redrive') },
      '/stats': {
        get: operation({
          operationId: 'getStats',
          summary: 'Tasks per status and queue depths',
          security: open,
          responses: { '200': response('Counts.', jsonContent(ref('Stats'))), '503': unavailable },
        }),
      },
      '/stats/throughput': {
        get: operation({
          operationId: 'getThroughput',
          summary: 'Tasks finished per minute',
          security: open,
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
            '200': response('Completed, failed and cancelled per minute.', jsonContent(ref('Throughput'))),
            '400': errorResponse('A query parameter is not valid.'),
            '503': unavailable,
          },
        }),
      },
      '/services': {
        get: operation({
          operationId: 'listLiveServices',
          summary: 'The services alive now: API processes, schedulers, executors, DLQ processors',
          description:
            'Every service process reports itself alive in Redis every report_interval_ms, with what it runs; ' +
            "Redis's clock records when. A process that stops reporting leaves the list forgotten_after_ms after " +
            'its last report; one that stops gracefully leaves it at once. Answers while the database is still ' +
            'being prepared (it reads Redis only).',
          security: open,
          responses: {
            '200': response('The live services.', jsonContent(ref('LiveServices'))),
            '503': errorResponse('Redis cannot be reached or does not answer within REQUEST_TIMEOUT_MS.'),
          },
        }),
      },
      '/healthz': {
        get: operation({
          operationId: 'getHealth',
          summary: 'Liveness: the process answers',
          security: open,
          responses: {
            '200': response(
              'Alive (also while the database is being prepared).',
              jsonContent({ type: 'object', properties: { status: { const: 'ok' } } }),
            ),
          },
        }),
      },
      '/readyz': {
        get: operation({
          operationId: 'getReadiness',
          summary: "Readiness: MySQL answers, the database is prepared, and Redis takes a write to the queue's keys",
          security: open,
          responses: {
            '200': response('Ready.', jsonContent(ref('Readiness'))),
            '503': response(
              "MySQL does not answer, the database is not prepared yet, or Redis does not take the write (its answer, e.g. READONLY or MOVED, is in the redis check's error).",
              { 'application/json': { schema: ref('Readiness') } },
            ),
          },
        }),
      },
      '/metrics': {
        get: operation({
          operationId: 'getMetrics',
          summary: 'Prometheus metrics',
          security: open,
          responses: {
            '200': response('Text exposition format.', { 'text/plain': { schema: { type: 'string' } } }),
          },
        }),
      },
      '/openapi.json': {
        get: operation({
          operationId: 'getOpenApiDocument',
          summary: 'This document',
          security: open,
          responses: { '200': response('OpenAPI 3.1.', { 'application/json': { schema: { type: 'object' } } }) },
        }),
      },
      '/': {
        get: operation({
          operationId: 'getDashboard',
          summary: 'The dashboard (HTML)',
          security: open,
          responses: { '200': response('The page.', { 'text/html': { schema: { type: 'string' } } }) },
        }),
      },
    },
  };
}
