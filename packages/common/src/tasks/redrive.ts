import type { Metrics } from '../metrics.js';
import type { Pool } from '../mysql/pool.js';
import type { TaskQueue } from '../redis/task-queue.js';
import { getTask } from './task-reads.js';
import { retryFailedTask, retryFailedTasks } from './task-repository.js';
import type { TaskStatus } from './task-schema.js';

/**
 * Redrive: failed tasks go back to `pending` in MySQL, so the scheduler claims them and the
 * normal path runs them again (attempts start over). MySQL is written first, then the task's
 * entries leave the `dead-letter-queue` list; a redrive that stops between the two leaves the
 * entries in place, never removes one whose task was not redriven. Entries of tasks that are
 * not `failed` in MySQL stay: in particular a dead letter that the DLQ processor has not
 * recorded yet (its task is still `processing`) can be retried once it is recorded.
 */

export interface RedriveDeps {
  pool: Pool;
  queue: TaskQueue;
  metrics?: Metrics;
}

export type RedriveOutcome =
  | { redriven: true; id: number; removedEntries: number }
  | { redriven: false; id: number; reason: 'not_found' }
  | { redriven: false; id: number; reason: 'not_failed'; status: TaskStatus };

export interface RedriveAllResult {
  /** Tasks put back to pending. */
  redriven: number[];
  /** Entries removed from the dead-letter list (those of the redriven tasks). */
  removedEntries: number;
  /** Entries left in the list: their task is not failed in MySQL (or they name none). */
  keptEntries: number;
}

const CHUNK = 1_000;

/** Why a task was not redriven, as a sentence for an operator. */
export function notRedrivenReason(outcome: Exclude<RedriveOutcome, { redriven: true }>): string {
  if (outcome.reason === 'not_found') return `task ${outcome.id} does not exist`;
  const hint =
    outcome.status === 'processing'
      ? ' (a dead letter the DLQ processor has not recorded yet is still processing: retry it once it is failed)'
      : '';
  return `task ${outcome.id} is ${outcome.status}, not failed: only a failed task can be retried${hint}`;
}

async function wakeSchedulers(queue: TaskQueue): Promise<void> {
  // A lost announcement only delays the task until the scheduler's next poll.
  await queue.notifyInserted().catch(() => undefined);
}

/** Redrives one failed task and removes its entries from the dead-letter list. */
export async function redriveTask(deps: RedriveDeps, id: number): Promise<RedriveOutcome> {
  if (!(await retryFailedTask(deps.pool, id))) {
    const task = await getTask(deps.pool, id);
    return task
      ? { redriven: false, id, reason: 'not_failed', status: task.status }
      : { redriven: false, id, reason: 'not_found' };
  }
  deps.metrics?.tasksRedriven.inc();
  const list = deps.queue.deadLetterList();
  const removedEntries = await list.remove((await list.entriesOf(id)).map((e) => e.raw));
  await wakeSchedulers(deps.queue);
  return { redriven: true, id, removedEntries };
}

/** Redrives every task named in the dead-letter list that is failed in MySQL. */
export async function redriveAllDeadLetters(deps: RedriveDeps): Promise<RedriveAllResult> {
  const list = deps.queue.deadLetterList();
  const entries = await list.all();
  const ids = [...new Set(entries.flatMap((e) => (e.id === null ? [] : [e.id])))];
  const redriven: number[] = [];
  for (let i = 0; i < ids.length; i += CHUNK) {
    redriven.push(...(await retryFailedTasks(deps.pool, ids.slice(i, i + CHUNK))));
  }
  if (redriven.length === 0) return { redriven, removedEntries: 0, keptEntries: entries.length };
  deps.metrics?.tasksRedriven.inc(redriven.length);
  const done = new Set(redriven);
  const removedEntries = await list.remove(entries.filter((e) => e.id !== null && done.has(e.id)).map((e) => e.raw));
  await wakeSchedulers(deps.queue);
  return { redriven, removedEntries, keptEntries: entries.length - removedEntries };
}
