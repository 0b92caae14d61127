import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { oneTrip } from '../../mysql/transaction.js';
import { type DeadLetter, errorText, type QueueMessage } from '../../wire/message-codec.js';
import { groupAfter, type Lane, levelAfter } from '../claim-plan.js';
import { isLastAttempt } from '../retry-policy.js';
import { countedOneTrip } from '../status-counts.js';
import { MESSAGE_COLUMNS, type MessageColumns, messageOf } from '../task-data.js';
import type { TransitionDeps } from './deps.js';

/**
 * Recover. MySQL is the source of truth: a task it holds as `processing` must have a message
 * somewhere in Redis. Expired leases are returned (their executor died); then every
 * `processing` task is looked up, a page at a time (lane by lane, each in id order), in the
 * set of tasks present in Redis, and those missing (the scheduler died between commit and push, or Redis lost its
 * data) are pushed again in the same run, or dead-lettered if they are out of attempts.
 *
 * Each page costs Redis one SMISMEMBER of at most `pageSize` ids, whatever the queue's
 * length, and every `processing` task is covered in every pass.
 */

export interface RecoverLostOptions {
  /** A task must have been dispatched this long ago before it can count as lost. */
  graceMs: number;
  maxAttempts: number;
  /** The error of a run whose executor was lost (its lease ran out). */
  lostError: string;
  /** `processing` tasks looked up per page. */
  pageSize: number;
}

export interface RecoverResult {
  /** Leases that had run out: their tasks went back to the queue, or to the dead letters. */
  reaped: number;
  /** Of those, dead-lettered (out of attempts) or invalid messages. */
  reapedDeadLettered: number;
  /** Tasks missing from Redis, pushed again. */
  repushed: number[];
  /** Tasks missing from Redis and out of attempts, dead-lettered. */
  deadLettered: number[];
  /** Tasks missing from Redis whose data cannot become a message, marked `failed`. */
  invalid: number[];
  /** `processing` tasks looked up. */
  checked: number;
  /** Task ids put back into the present set, rebuilt from the messages Redis holds (see restorePresence). */
  restored: number;
}

interface ProcessingRow extends RowDataPacket {
  id: number;
  due: number;
}

interface LostRow extends RowDataPacket, MessageColumns {
  run: number;
  last_error: string | null;
}

/**
 * A page of a lane's `processing` tasks after a task id, each with whether its grace has passed:
 * read through `tasks_lanes`, so that a page costs its own rows, never all the tasks
 * `processing` nor the table (the lanes are found as the claim finds its own: see claim-plan.ts).
 */
export const SWEEP_PAGE = `SELECT id, dispatched_at < NOW(3) - INTERVAL ? MICROSECOND AS due FROM tasks FORCE INDEX (tasks_lanes)
    WHERE status = 'processing' AND group_key <=> NULLIF(?, '') AND priority = -(?) AND id > ? ORDER BY id LIMIT ?`;

/** The lanes of `processing` tasks, one after another, every one of them. */
async function* processingLanes(pool: Database): AsyncGenerator<Lane> {
  for (let group = await groupAfter(pool, 'processing', null); group !== null; ) {
    for (let rank = await levelAfter(pool, 'processing', group, undefined); rank !== undefined; ) {
      yield { group, rank };
      rank = await levelAfter(pool, 'processing', group, rank);
    }
    group = await groupAfter(pool, 'processing', group);
  }
}

/** One page of a lane's `processing` tasks after `afterId`, each with whether its grace has passed. */
async function processingPage(
  pool: Database,
  lane: Lane,
  afterId: number,
  options: RecoverLostOptions,
): Promise<ProcessingRow[]> {
  const [rows] = await pool.query<ProcessingRow[]>(SWEEP_PAGE, [
    options.graceMs * 1000,
    lane.group,
    lane.rank,
    afterId,
    options.pageSize,
  ]);
  return rows;
}

interface Redispatch {
  messages: QueueMessage[];
  letters: DeadLetter[];
  invalid: number[];
}

/**
 * The lost tasks still `processing` and still past their grace (another sweeper may have
 * pushed them meanwhile: it renewed `dispatched_at`), renewed, and turned into what to push:
 * one transaction of one round trip. A row whose data cannot become a message is then failed,
 * guarded by its run.
 */
async function redispatch(
  db: Database,
  ids: number[],
  options: RecoverLostOptions,
  failedAt: string,
): Promise<Redispatch> {
  const lost = "id IN (?) AND status = 'processing' AND dispatched_at < @lost_before";
  const [, selected] = await oneTrip(db, [
    { sql: 'SET @lost_before = NOW(3) - INTERVAL ? MICROSECOND', values: [options.graceMs * 1000] },
    {
      sql: `SELECT ${MESSAGE_COLUMNS}, run, last_error FROM tasks WHERE ${lost} ORDER BY id FOR UPDATE`,
      values: [ids],
    },
    { sql: `UPDATE tasks SET dispatched_at = NOW(3) WHERE ${lost}`, values: [ids] },
  ]);
  const out: Redispatch = { messages: [], letters: [], invalid: [] };
  const invalid: { id: number; run: number; reason: string }[] = [];
  for (const row of selected as LostRow[]) {
    const built = messageOf(row, Number(row.run));
    if (!built.ok) {
      invalid.push({ id: Number(row.id), run: row.run, reason: built.reason });
      continue;
    }
    const message = built.value;
    if (isLastAttempt(message.tries, { maxAttempts: message.max_attempts ?? options.maxAttempts })) {
      out.letters.push({ ...message, error: row.last_error ?? options.lostError, failed_at: failedAt });
    } else {
      out.messages.push(message);
    }
  }
  if (invalid.length > 0) {
    const results = (await countedOneTrip(
      db,
      invalid.map(({ id, run, reason }) => ({
        sql: `UPDATE tasks SET status = 'failed', last_error = ?, finished_at = NOW(3)
          WHERE id = ? AND status = 'processing' AND run = ?`,
        values: [errorText(reason), id, run],
        move: { from: 'processing', to: 'failed' } as const,
      })),
    )) as ResultSetHeader[];
    out.invalid = invalid.filter((_, i) => results[i]?.affectedRows === 1).map((r) => r.id);
  }
  return out;
}

/** Of a page's tasks past their grace, those Redis does not hold: pushed again (or dead-lettered), noted in `result`. */
async function putBackMissing(
  { pool, queue }: TransitionDeps,
  page: ProcessingRow[],
  options: RecoverLostOptions,
  now: () => number,
  result: RecoverResult,
): Promise<void> {
  const due = page.filter((r) => Number(r.due) === 1).map((r) => Number(r.id));
  const present = await queue.present(due);
  const missing = due.filter((_, i) => !present[i]);
  if (missing.length === 0) return;
  const lost = await redispatch(pool, missing, options, new Date(now()).toISOString());
  // Committed: should these pushes fail, the tasks are still missing at the next pass.
  await queue.dispatch(lost.messages);
  await queue.deadLetter(lost.letters.map((letter) => ({ token: null, letter })));
  result.repushed.push(...lost.messages.map((m) => m.id));
  result.deadLettered.push(...lost.letters.map((l) => l.id));
  result.invalid.push(...lost.invalid);
}

export async function recoverLost(
  deps: TransitionDeps,
  options: RecoverLostOptions,
  now: () => number = Date.now,
): Promise<RecoverResult> {
  const { pool, queue } = deps;
  const restored = await queue.restorePresence();
  const reaped = await queue.reapExpired(options.maxAttempts, options.lostError);
  await queue.reapExpiredInbox();
  const result: RecoverResult = {
    reaped: reaped.requeued + reaped.deadLettered,
    reapedDeadLettered: reaped.deadLettered,
    repushed: [],
    deadLettered: [],
    invalid: [],
    checked: 0,
    restored,
  };

  for await (const lane of processingLanes(pool)) {
    for (let afterId = 0; ; ) {
      const page = await processingPage(pool, lane, afterId, options);
      result.checked += page.length;
      await putBackMissing(deps, page, options, now, result);
      if (page.length < options.pageSize) break;
      afterId = Number(page[page.length - 1]?.id);
    }
  }
  return result;
}
