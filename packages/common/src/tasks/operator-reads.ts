import type { Database } from '../mysql/database.js';
import type { DeadLetterEntry } from '../redis/dead-letter-list.js';
import { depthsByName, type QueueDepthName, type TaskQueue } from '../redis/task-queue.js';
import { countByStatus } from './status-counts.js';
import { getStatuses } from './task-reads.js';
import type { TaskStatus } from './task-schema.js';

/** What operators read, the same from the API and the CLI; each costs a page, not the table. */

export interface Stats {
  tasks: Record<TaskStatus, number>;
  queue: Record<QueueDepthName, number>;
}

/** Tasks per status (the kept counts) and the depth of each Redis structure. */
export async function readStats(deps: { pool: Database; queue: TaskQueue }): Promise<Stats> {
  const [tasks, depths] = await Promise.all([countByStatus(deps.pool), deps.queue.depths()]);
  return { tasks, queue: depthsByName(depths) };
}

export interface DeadLetterPage {
  /** Entries in the list. */
  total: number;
  /** The page, newest first, each with its task's status now (null: it names none, or its task is gone). */
  entries: { entry: DeadLetterEntry; status: TaskStatus | null }[];
}

/** `limit` entries of `dead-letter-queue` from `offset`, with their tasks' statuses (one query). */
export async function readDeadLetterPage(
  deps: { pool: Database; queue: TaskQueue },
  offset: number,
  limit: number,
): Promise<DeadLetterPage> {
  const list = deps.queue.deadLetterList();
  const [total, entries] = await Promise.all([list.length(), list.range(offset, limit)]);
  const statuses = await getStatuses(deps.pool, [...new Set(entries.flatMap((e) => (e.id === null ? [] : [e.id])))]);
  return {
    total,
    entries: entries.map((entry) => ({ entry, status: entry.id === null ? null : (statuses.get(entry.id) ?? null) })),
  };
}
