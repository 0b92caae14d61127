import { TASK_STATUSES } from '@tasks/common';

export type Json = Record<string, unknown>;

export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
export const jsonContent = (schema: Json) => ({ 'application/json': { schema } });

const header = (name: string) => ({ $ref: `#/components/headers/${name}` });

/**
 * A response of any route: every answer carries X-Request-Id. `headers` names further
 * headers of components.headers.
 */
export function response(description: string, content?: Json, headers: string[] = []): Json {
  return {
    description,
    headers: Object.fromEntries(['X-Request-Id', ...headers].map((name) => [name, header(name)])),
    ...(content ? { content } : {}),
  };
}

/** An error answer: the Error body, and the given headers. */
export const errorResponse = (description: string, headers: string[] = []) =>
  response(description, jsonContent(ref('Error')), headers);

/** Headers of the answers, referred to by name. */
export const headers: Json = {
  'X-Request-Id': {
    description:
      "The request's id, as logged with every line of the request: the client's own X-Request-Id when it " +
      'sent one of at most 128 characters, else a new UUID.',
    schema: { type: 'string' },
  },
  Location: { description: 'The path of the task, `/tasks/{id}`.', schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: 'Present on the answer to a repeated Idempotency-Key: the task is the one the first request made.',
    schema: { type: 'string', const: 'true' },
  },
  'RateLimit-Policy': {
    description:
      'The limit on this route when RATE_LIMIT_PER_MINUTE is set (IETF draft 8), e.g. `"60-in-1min"; q=60; w=60`.',
    schema: { type: 'string' },
  },
  RateLimit: {
    description:
      'What is left of the limit when RATE_LIMIT_PER_MINUTE is set (IETF draft 8), e.g. `"60-in-1min"; r=59; t=42`: ' +
      'r requests remain for t seconds.',
    schema: { type: 'string' },
  },
  'Retry-After': {
    description:
      'Seconds after which to try again: the rate limit lets requests through, or the insert queue has room.',
    schema: { type: 'integer' },
  },
};

const check = {
  type: 'object',
  required: ['ok'],
  properties: { ok: { type: 'boolean' }, ms: { type: 'integer' }, error: { type: 'string' } },
};

/** Every schema but the task body, which is generated from its validator. */
export const schemas: Json = {
  Created: {
    type: 'object',
    required: ['id', 'message', 'status'],
    properties: {
      id: { type: 'integer' },
      message: { type: 'string', const: 'Task created successfully' },
      status: {
        type: 'string',
        enum: [...TASK_STATUSES],
        description:
          "pending for a new task (delayed with run_at or delay_ms); for a repeated Idempotency-Key, the first task's current status; with wait, the " +
          'status when the answer was sent.',
      },
      ignored_fields: {
        type: 'array',
        items: { type: 'string' },
        description:
          "The fields of the body that were ignored (for the original's task, all but message and time; for a " +
          "typed task, those its type's schema dropped); only when there were any.",
      },
      task: {
        oneOf: [ref('Task'), { type: 'null' }],
        description:
          'Only with wait: the task when the answer was sent (final, or as it was when the wait was over); null ' +
          'when MySQL did not answer that read (the task is stored all the same: GET /tasks/{id}).',
      },
    },
  },
  Task: {
    type: 'object',
    required: [
      'id',
      'status',
      'type',
      'data',
      'result',
      'attempts',
      'max_attempts',
      'timeout_ms',
      'last_error',
      'run_at',
      'priority',
      'group',
      'created_at',
      'updated_at',
    ],
    properties: {
      id: { type: 'integer' },
      status: {
        type: 'string',
        enum: [...TASK_STATUSES],
        description: 'delayed until run_at, then pending; completed, failed and cancelled are final.',
      },
      type: {
        type: 'string',
        description: "simulated (the original's work), or a type of the HANDLERS module.",
      },
      data: {
        description:
          "What the task asks for, as stored: for a simulated task the original's {message, time} (time an " +
          "integer); for another type what its type's schema made of the body (without its control fields).",
      },
      result: {
        description:
          'What its handler returned (any JSON value), once it completed; null before, and for a simulated task.',
      },
      attempts: { type: 'integer', description: 'Runs so far (reset to 0 by a retry).' },
      max_attempts: {
        type: ['integer', 'null'],
        description: "Tries before it is dead-lettered, its type's; null: MAX_ATTEMPTS.",
      },
      timeout_ms: {
        type: ['integer', 'null'],
        description: "A try's deadline (ms), its own or its type's; null: none.",
      },
      last_error: { type: ['string', 'null'], description: 'The error of the last failed run, if any.' },
      run_at: {
        type: ['string', 'null'],
        format: 'date-time',
        description: "When it is (or was) due, by MySQL's clock; null: due when it was inserted.",
      },
      priority: { type: 'integer', description: 'Higher is claimed first; 0 by default.' },
      group: {
        type: ['string', 'null'],
        description: 'The group it is claimed fairly with and limited in; null: none.',
      },
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
      removed_dead_letters: {
        type: ['integer', 'null'],
        description: 'Its entries removed from dead-letter-queue; null when Redis failed after the task was redriven.',
      },
      warning: {
        type: 'string',
        description: 'Present when the entries could not be removed (they stay in the list).',
      },
    },
  },
  DeadLetter: {
    type: 'object',
    required: ['id', 'message', 'tries', 'error', 'failed_at', 'status', 'raw'],
    properties: {
      id: {
        type: ['integer', 'null'],
        description: 'The task; null for an entry that names none (an invalid message).',
      },
      message: { type: ['string', 'null'] },
      tries: { type: ['integer', 'null'], description: 'Tries of the run that was given up.' },
      error: { type: ['string', 'null'], description: 'Why it was given up.' },
      failed_at: { type: ['string', 'null'], format: 'date-time' },
      status: {
        type: ['string', 'null'],
        enum: [...TASK_STATUSES, null],
        description:
          'The status of the task in MySQL now (processing: the DLQ processor has not recorded it yet); null when ' +
          'the entry names no task or its task no longer exists. Only a failed task can be retried.',
      },
      raw: {
        type: ['string', 'null'],
        description: 'For an entry that names no task: the text that was not a valid message.',
      },
    },
  },
  DeadLetterPage: {
    type: 'object',
    required: ['entries', 'total', 'offset', 'limit', 'next_offset'],
    properties: {
      entries: { type: 'array', items: ref('DeadLetter'), description: 'Newest first.' },
      total: { type: 'integer', description: 'Entries in dead-letter-queue.' },
      offset: { type: 'integer' },
      limit: { type: 'integer' },
      next_offset: {
        type: ['integer', 'null'],
        description: 'Pass as `offset` for the next page; null on the last page.',
      },
    },
  },
  RetriedAll: {
    type: 'object',
    required: ['redriven', 'removed_dead_letters', 'kept_entries'],
    properties: {
      redriven: { type: 'integer', description: 'Failed tasks now pending again.' },
      removed_dead_letters: {
        type: ['integer', 'null'],
        description:
          'Their entries removed from dead-letter-queue; null when Redis failed after the tasks were redriven (the entries stay, and removal_error says why).',
      },
      kept_entries: {
        type: 'integer',
        description: 'Entries left in the list: their task is not failed in MySQL, or they name none.',
      },
      removal_error: { type: 'string', description: 'Only when the entries could not be removed.' },
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
          delayed: {
            type: 'integer',
            description: 'Retries waiting out their backoff (tasks delayed until run_at are in tasks.delayed).',
          },
          inflight: { type: 'integer', description: 'Leased by an executor, running.' },
          dead_letters: { type: 'integer', description: 'dead-letter-queue: kept for inspection.' },
          dead_letter_inbox: { type: 'integer', description: 'Dead letters the DLQ processor has yet to record.' },
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
          required: ['minute', 'completed', 'failed', 'cancelled'],
          properties: {
            minute: { type: 'string', format: 'date-time' },
            completed: { type: 'integer' },
            failed: { type: 'integer' },
            cancelled: { type: 'integer' },
          },
        },
      },
    },
  },
  LiveServices: {
    type: 'object',
    required: ['now', 'report_interval_ms', 'forgotten_after_ms', 'services'],
    properties: {
      now: { type: 'string', format: 'date-time', description: "Redis's clock when the list was read." },
      report_interval_ms: { type: 'integer', description: 'How often each service reports.' },
      forgotten_after_ms: {
        type: 'integer',
        description: 'How long after its last report a service that stopped reporting leaves the list.',
      },
      services: {
        type: 'array',
        description: 'By service, then host, then pid.',
        items: {
          type: 'object',
          required: [
            'id',
            'service',
            'host',
            'pid',
            'started_at',
            'last_seen',
            'last_seen_ago_ms',
            'alive_until',
            'detail',
          ],
          properties: {
            id: { type: 'string', description: 'Unique to one start of one process.' },
            service: {
              type: 'string',
              description: 'What it is: task-insert (the API), scheduler, executor or dlq-processor.',
            },
            host: { type: 'string' },
            pid: { type: 'integer' },
            started_at: {
              type: 'string',
              format: 'date-time',
              description: "When the process started, by its host's clock.",
            },
            last_seen: { type: 'string', format: 'date-time', description: "Its last report, by Redis's clock." },
            last_seen_ago_ms: { type: 'integer', description: "How long before `now` that was (Redis's clock)." },
            alive_until: {
              type: 'string',
              format: 'date-time',
              description: 'When it leaves the list unless it reports again.',
            },
            detail: {
              type: 'object',
              description:
                'What it runs, as it reports it: an executor its concurrency and running tasks; a scheduler ' +
                'claims_per_poll, poll_interval_ms and sweep_interval_ms; a DLQ processor its batch_size; ' +
                'an API process its port and whether its database is ready.',
            },
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
        properties: {
          mysql: check,
          redis: check,
          migrations: {
            ...check,
            description: 'Only while the database is still being prepared after a start (then not ok).',
          },
        },
      },
    },
  },
  CancelRefused: {
    type: 'object',
    required: ['error', 'message', 'status'],
    properties: {
      error: { type: 'string', const: 'finished' },
      message: { type: 'string' },
      status: { type: 'string', enum: ['completed', 'failed'], description: 'The status the task keeps.' },
    },
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
};
