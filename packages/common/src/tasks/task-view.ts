import type { Task } from './task-row.js';

/** A task as the API and the CLI show it: the column names of the `tasks` table, ISO 8601 times. */
export function taskView(task: Task) {
  return {
    id: task.id,
    status: task.status,
    type: task.type,
    data: task.data,
    result: task.result,
    attempts: task.attempts,
    max_attempts: task.maxAttempts,
    timeout_ms: task.timeoutMs,
    last_error: task.lastError,
    run_at: task.runAt?.toISOString() ?? null,
    priority: task.priority,
    group: task.group,
    created_at: task.createdAt.toISOString(),
    updated_at: task.updatedAt.toISOString(),
    dispatched_at: task.dispatchedAt?.toISOString() ?? null,
    finished_at: task.finishedAt?.toISOString() ?? null,
  };
}
