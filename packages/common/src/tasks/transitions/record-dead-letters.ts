import type { ResultSetHeader } from 'mysql2/promise';
import type { Database } from '../../mysql/database.js';
import { groupBy, idsCondition } from '../../mysql/ids-condition.js';
import type { Leased } from '../../redis/lease-queue.js';
import { type DeadLetterRecord, decodeDeadLetter, errorText } from '../../wire/message-codec.js';
import { countedOneTrip } from '../status-counts.js';
import type { TransitionDeps } from './deps.js';

/**
 * Record dead letters: the DLQ processor's inbox entries mark their tasks `failed` in MySQL
 * with their attempts and last error (only a task still `processing` in the letter's run
 * changes, and only those count as finished, in the same transaction); then the entries leave
 * the inbox. The `dead-letter-queue` list is left alone: the letters stay there to inspect.
 * An old letter (its task was redriven and runs again) changes nothing. An entry that names
 * no task is taken off the inbox and reported.
 */

export interface RecordResult {
  /** Entries taken off the inbox. */
  entries: number;
  /** Tasks that became `failed`. */
  markedFailed: number;
  /** Entries that name no task, with why. */
  invalid: { raw: string; reason: string }[];
  /** The tasks of the letters recorded (whether or not they changed). */
  letters: DeadLetterRecord[];
}

/** Groups that share their run, attempts and error, so one statement writes each group. */
const sameWrite = (l: DeadLetterRecord) => `${l.run}:${l.tries}:${l.problem}\u0000${l.error}`;

/** Marks the letters' tasks failed, counted, in one transaction of one round trip. */
async function markFailed(db: Database, letters: DeadLetterRecord[]): Promise<number> {
  const updates = groupBy(letters, sameWrite).map((group) => {
    const first = group[0] as DeadLetterRecord;
    const ids = idsCondition(group.map((l) => l.id));
    // A letter whose tries is not a valid count fails its task without changing its attempts.
    const error = first.problem === null ? first.error : errorText(`${first.error} (${first.problem})`);
    return {
      sql: `UPDATE tasks SET status = 'failed', attempts = GREATEST(attempts, ?), last_error = ?, finished_at = NOW(3)
        WHERE ${ids.sql} AND status = 'processing' AND run = ?`,
      values: [first.tries ?? 0, error, ...ids.params, first.run],
      move: { from: 'processing', to: 'failed' } as const,
    };
  });
  const results = (await countedOneTrip(db, updates)) as ResultSetHeader[];
  return results.reduce((sum, result) => sum + result.affectedRows, 0);
}

export async function recordDeadLetters(deps: TransitionDeps, entries: Leased[]): Promise<RecordResult> {
  const letters: DeadLetterRecord[] = [];
  const invalid: { raw: string; reason: string }[] = [];
  for (const entry of entries) {
    const decoded = decodeDeadLetter(entry.raw);
    if (decoded.ok) letters.push(decoded.value);
    else invalid.push({ raw: entry.raw, reason: decoded.reason });
  }
  const markedFailed = letters.length === 0 ? 0 : await markFailed(deps.pool, letters);
  // Every entry that leaves takes its task out of the present set (the rule of QueueKeys.present).
  await deps.queue.inbox.ack(
    entries.map((e) => e.token),
    letters.map((l) => l.id),
  );
  if (markedFailed > 0) {
    await deps.queue
      .announce(deps.queue.keys.finishedChannel, letters.map((l) => l.id).join(','))
      .catch(() => undefined);
  }
  return { entries: entries.length, markedFailed, invalid, letters };
}
