import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { isLockWaitTimeout, isRolledBack } from '../../mysql/errors.js';
import { idsCondition } from '../../mysql/ids-condition.js';
import { withNamedLock } from '../../mysql/named-lock.js';
import { errorText, type QueueMessage } from '../../wire/message-codec.js';
import { type CountedStatement, type CountedTrip, countedTransaction } from '../status-counts.js';
import { MESSAGE_COLUMNS, type MessageColumns, messageOf } from '../task-data.js';
import type { TransitionDeps } from './deps.js';

/**
 * Claim and dispatch: pending tasks become `processing` in MySQL, each starting a new run,
 * and only after the commit are their messages pushed to Redis. Should the push fail or the
 * process die in between, the tasks are `processing` without a message, which is what the
 * recover transition looks for. A row whose data cannot become a message is `failed` in the
 * same transaction, with the reason, and never stops the batch.
 */

export interface ClaimResult {
  /** The messages pushed, oldest task first. */
  dispatched: QueueMessage[];
  /** Tasks marked `failed` because their data cannot become a message. */
  invalid: { id: number; reason: string }[];
  /** True when another scheduler was claiming at that moment, so this one claimed nothing. */
  busy?: boolean;
}

interface PendingRow extends RowDataPacket, MessageColumns {
  run: number;
}

interface Claim {
  messages: QueueMessage[];
  invalid: { id: number; reason: string }[];
}

/**
 * Claims up to `limit` pending tasks, oldest first, then pushes their messages. Schedulers take
 * turns (the named lock `claim`): all of them are woken by the same insert, and claiming the
 * same oldest rows at once would make all but one wait for the winner's commit and then find
 * nothing. One that finds another claiming returns `busy` at once. The lock is only an
 * optimisation: when its holder has stopped answering (see withNamedLock), the claim goes
 * ahead with `SKIP LOCKED`, which never shares a task and never waits on rows another claim
 * holds. When two hold it at once (named locks do not survive a failover: one scheduler's lock
 * on the old primary, another's on the new), both claim optimistically and stay exact: each
 * marks only rows still `pending` (the UPDATE's guard, under its row locks), and one that
 * changed fewer rows than it read undoes its claim and claims with `SKIP LOCKED`, so no task
 * is claimed twice or run in two runs; the cost is a rolled back claim.
 */
export async function claimAndDispatch(deps: TransitionDeps, limit: number): Promise<ClaimResult> {
  const claimed = await withNamedLock(deps.pool, 'claim', async (locked) => {
    const claim = await claimPending(deps.pool, limit, { optimistic: locked });
    await deps.queue.dispatch(claim.dispatched);
    return claim;
  });
  return claimed ?? { dispatched: [], invalid: [], busy: true };
}

/**
 * The MySQL half of the transition alone: the claim, committed, with nothing pushed. What a
 * scheduler that dies between the two halves leaves behind (the fault tests make it so).
 * `optimistic` (the default) tries the lock-free read first: for a caller that holds the lock.
 */
export async function claimPending(
  db: Database,
  limit: number,
  { optimistic = true }: { optimistic?: boolean } = {},
): Promise<ClaimResult> {
  const claim = (optimistic ? await claimOptimistically(db, limit) : null) ?? (await claimWithLocks(db, limit));
  return { dispatched: claim.messages, invalid: claim.invalid };
}

const PENDING = `SELECT ${MESSAGE_COLUMNS}, run FROM tasks WHERE status = ? ORDER BY id LIMIT ?`;

/** The rows' messages (of their next run), and the rows that cannot become one. */
function toClaim(rows: PendingRow[]): Claim {
  const claim: Claim = { messages: [], invalid: [] };
  for (const row of rows) {
    const message = messageOf(row, Number(row.run) + 1);
    if (message.ok) claim.messages.push(message.value);
    else claim.invalid.push({ id: Number(row.id), reason: message.reason });
  }
  return claim;
}

/** How many claimed rows each mark changed (those still pending). */
interface Marked {
  claimed: number;
  failed: number;
}

/**
 * Marks the claimed rows, `processing` in a new run or `failed` for those that cannot run, in
 * one round trip of the claim's transaction (with its commit when `commit`).
 */
async function mark(trip: CountedTrip, claim: Claim, commit: boolean): Promise<Marked> {
  const statements: CountedStatement[] = [];
  if (claim.messages.length > 0) {
    const ids = idsCondition(claim.messages.map((m) => m.id));
    statements.push({
      sql: `UPDATE tasks SET status = 'processing', run = run + 1, dispatched_at = NOW(3)
        WHERE ${ids.sql} AND status = 'pending'`,
      values: ids.params,
      move: { from: 'pending', to: 'processing' },
    });
  }
  for (const { id, reason } of claim.invalid) {
    statements.push({
      sql: `UPDATE tasks SET status = 'failed', run = run + 1, last_error = ?, finished_at = NOW(3)
        WHERE id = ? AND status = 'pending'`,
      values: [errorText(reason), id],
      move: { from: 'pending', to: 'failed' },
    });
  }
  if (statements.length === 0) return { claimed: 0, failed: 0 };
  const changed = ((await trip(statements, { commit })) as ResultSetHeader[]).map((r) => r.affectedRows);
  const claimed = claim.messages.length > 0 ? (changed.shift() ?? 0) : 0;
  return { claimed, failed: changed.reduce((sum, n) => sum + n, 0) };
}

/** Thrown to roll back an optimistic claim that found some of its rows claimed meanwhile. */
class ClaimedMeanwhile extends Error {}

/**
 * The usual case, one scheduler or schedulers that do not collide: read the oldest pending
 * tasks without locking them, then mark exactly those. If every one was still pending, the
 * claim is ours (each changed row stays locked until the commit). If another scheduler took
 * some meanwhile, undo and claim with locks instead. Locking reads cost the database about as
 * much as the update itself, so this roughly halves the work of a claim. Three round trips:
 * the read, the marks, the counts with the commit (the marks' locks live one turn of this
 * process; a claim by another scheduler meanwhile passes over them with SKIP LOCKED).
 */
async function claimOptimistically(db: Database, limit: number): Promise<Claim | null> {
  try {
    return await countedTransaction(db, async (trip) => {
      const [rows] = (await trip([{ sql: PENDING, values: ['pending', limit] }])) as [PendingRow[]];
      const claim = toClaim(rows);
      const marked = await mark(trip, claim, false);
      if (marked.claimed + marked.failed !== rows.length) throw new ClaimedMeanwhile();
      return claim;
    });
  } catch (err) {
    // Another scheduler took some of the rows, two updated the same rows and the server rolled
    // this one back, or a row is locked by a claim that does not end: claim with locks.
    if (err instanceof ClaimedMeanwhile || isRolledBack(err) || isLockWaitTimeout(err)) return null;
    throw err;
  }
}

/**
 * Claims with `SKIP LOCKED`, so schedulers claiming at the same moment never share a task, and
 * rows held by a claim whose scheduler stopped answering are passed over. Two round trips: the
 * locking read, then the marks with the counts and the commit.
 */
function claimWithLocks(db: Database, limit: number): Promise<Claim> {
  return countedTransaction(db, async (trip) => {
    const [rows] = (await trip([{ sql: `${PENDING} FOR UPDATE SKIP LOCKED`, values: ['pending', limit] }])) as [
      PendingRow[],
    ];
    const claim = toClaim(rows);
    await mark(trip, claim, true);
    return claim;
  });
}
