import { z } from 'zod';

export interface TaskInputLimits {
  maxMessageLength: number;
  maxTimeS: number;
}

const requiredOr = (expected: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? 'is required' : `must be ${expected}`;

/**
 * The body of `POST /tasks`. Unknown fields are rejected rather than silently dropped, so a
 * typo such as `"tme"` is reported instead of creating a task with the wrong time.
 */
export function taskInputSchema(limits: TaskInputLimits) {
  return z.strictObject(
    {
      message: z
        .string({ error: requiredOr('a string') })
        .min(1, { error: 'must not be empty' })
        .max(limits.maxMessageLength, { error: `must be at most ${limits.maxMessageLength} characters` }),
      time: z
        .number({ error: requiredOr('a number of seconds') })
        .int({ error: 'must be a whole number of seconds' })
        .min(0, { error: 'must not be negative' })
        .max(limits.maxTimeS, { error: `must be at most ${limits.maxTimeS} seconds` }),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not a known field' : 'must be a JSON object') },
  );
}
