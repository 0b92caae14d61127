import { z } from 'zod';

export const TASK_STATUSES = ['pending', 'processing', 'completed', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** What a task asks for: the original's `{"message", "time"}`, kept in the `data` column. */
export interface TaskData {
  message: string;
  time: number;
}

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

/** A message on `task_queue`, in the original's format. `tries` counts failed runs so far. */
export const queueMessageSchema = z.object({
  id: z.number().int().positive(),
  message: z.string(),
  time: z.number().finite().min(0),
  tries: z.number().int().min(0),
});
export type QueueMessage = z.infer<typeof queueMessageSchema>;

/** An entry of `dead-letter-queue`: the last message plus why and when it was given up. */
export interface DeadLetter extends Partial<QueueMessage> {
  error: string;
  failed_at: string;
  /** The raw entry, when what was on the queue was not a valid message. */
  raw?: string;
}

export function encodeMessage(message: QueueMessage): string {
  return JSON.stringify({ id: message.id, message: message.message, time: message.time, tries: message.tries });
}

export function encodeDeadLetter(letter: DeadLetter): string {
  return JSON.stringify(letter);
}
