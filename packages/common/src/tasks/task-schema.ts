import { z } from 'zod';

export const TASK_STATUSES = ['pending', 'processing', 'completed', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** What a task asks for: the original's `{"message", "time"}`, kept in the `data` column. */
export interface TaskData {
  message: string;
  time: number;
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
