export const TASK_STATUSES = ['pending', 'processing', 'completed', 'failed', 'cancelled', 'delayed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** The statuses a task ends in: once in one, it never changes again (but by an operator's redrive of a failed one). */
export const FINAL_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly TaskStatus[];
export type FinalStatus = (typeof FINAL_STATUSES)[number];

export function isFinal(status: TaskStatus): status is FinalStatus {
  return (FINAL_STATUSES as readonly TaskStatus[]).includes(status);
}

/** A task id as written by a person (a path segment, an argument): digits only, 1 to 2^53−1; null otherwise. */
export function parseTaskId(raw: string | undefined): number | null {
  const id = Number(raw);
  return /^\d+$/.test(raw ?? '') && Number.isSafeInteger(id) && id >= 1 ? id : null;
}

/** What a task asks for: the original's `{"message", "time"}`, kept in the `data` column. */
export interface TaskData {
  message: string;
  time: number;
}

/** A group's name, as tasks carry it (`"group"`) and GROUP_LIMITS names it. */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$/;
