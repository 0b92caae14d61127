export const TASK_STATUSES = ['pending', 'processing', 'completed', 'failed'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** What a task asks for: the original's `{"message", "time"}`, kept in the `data` column. */
export interface TaskData {
  message: string;
  time: number;
}
