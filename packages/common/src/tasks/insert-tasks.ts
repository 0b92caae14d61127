import { randomBytes } from 'node:crypto';
import { format } from 'mysql2';
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Database } from '../mysql/database.js';
import { isConnectionError, isReadOnlyError } from '../mysql/errors.js';
import { TransactionStoppedError, untilStopped } from '../mysql/stop.js';
import { SIMULATED } from '../wire/message-codec.js';
import { type CountedStatement, countedOneTrip } from './status-counts.js';
import type { TaskData } from './task-schema.js';

export class DuplicateIdempotencyKeyError extends Error {
  constructor(readonly key: string) {
    super(`a task with Idempotency-Key ${key} already exists`);
  }
}

/**
 * The database refused a task for what it holds (not for its key being taken): invalid JSON
 * text, a string the column's character set cannot hold, a value too long. `column` names the
 * column at fault when the server's message does.
 */
export class TaskRejectedError extends Error {
  constructor(
    readonly column: string | undefined,
    readonly reason: string,
  ) {
    super(`the database refused the task${column ? ` (column ${column})` : ''}: ${reason}`);
  }
}

/**
 * Server errors that mean "this row's values are not acceptable": bad NULL (1048), out of
 * range (1264), wrong value (1292, 1366), too long (1406), invalid JSON text (3140, 3144),
 * a CHECK constraint (MySQL 3819; MariaDB 4025, which also guards its JSON columns), a
 * parameter the column's character set cannot hold (3988, MySQL's binary protocol).
 */
const DATA_ERRNOS = new Set([1048, 1264, 1292, 1366, 1406, 3140, 3144, 3819, 3988, 4025]);

/** The column a data error names: `'tasks.data'`, `'idempotency_key'`, `` `db`.`tasks`.`idempotency_key` ``, ``CONSTRAINT `tasks.data` ``. */
const COLUMN_IN_MESSAGE = /column [`']?(?:[\w$]+[`']?\.[`']?)*([\w$]+)|CONSTRAINT `(?:[\w$]+\.)?([\w$]+)`/i;

function asRejection(err: unknown): TaskRejectedError | null {
  const { errno, message } = (err ?? {}) as { errno?: number; message?: string };
  if (errno === undefined || !DATA_ERRNOS.has(errno)) return null;
  const match = COLUMN_IN_MESSAGE.exec(message ?? '');
  return new TaskRejectedError(match?.[1] ?? match?.[2], message ?? `error ${errno}`);
}

function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'ER_DUP_ENTRY';
}

/**
 * Inserts one task and returns its id. Throws DuplicateIdempotencyKeyError when its key is
 * taken, TaskRejectedError when the database refuses its values, and any other error as is.
 */
export async function insertTask(
  pool: Database,
  data: TaskData,
  idempotencyKey: string | null = null,
): Promise<number> {
  const [outcome] = await insertTasks(pool, [{ data, idempotencyKey }]);
  if (!outcome || 'error' in outcome) throw outcome?.error ?? new Error('the task was not inserted');
  return outcome.id;
}

/**
 * A task to insert; see insertTasks. Without `type` (or with `simulated`) it is the original's
 * task: `data` is `{message, time}`. Every field left out keeps the column's default, so a task
 * posted as the original posted it gets the row it always got.
 */
export interface NewTask {
  /** The original's `{message, time}`, or what a type's schema made of the body (any JSON value). */
  data: unknown;
  idempotencyKey: string | null;
  /** The task's type; the original's work when left out. */
  type?: string;
  /** A try's deadline (ms) of this task's own; null or left out: its handler's, or none. */
  timeoutMs?: number | null;
  /** Tries of this task's own before it is dead-lettered; null or left out: MAX_ATTEMPTS. */
  maxAttempts?: number | null;
  /**
   * When the task is due, an instant, or a delay after its insert by MySQL's clock (`delayMs`);
   * either makes it `delayed` until then. Neither: due at once.
   */
  runAt?: Date | null;
  delayMs?: number | null;
  /** Claimed before the tasks of lower priority (see claim-plan.ts); 0 when left out. */
  priority?: number;
  /** The group (a tenant) it is claimed fairly with, and limited in; none when left out. */
  group?: string | null;
}

/** Whether a task waits for a due time: `delayed` when inserted. */
export function isDelayed(task: Pick<NewTask, 'runAt' | 'delayMs'>): boolean {
  return (task.runAt ?? null) !== null || (task.delayMs ?? 0) > 0;
}

/** An instant as MySQL's DATETIME(3) reads it in UTC, whatever the session's time zone and driver. */
function utcDatetime(at: Date): string {
  return at.toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * The columns of an inserted task and the values of one row. Times are MySQL's UTC clock
 * (UTC_TIMESTAMP), not the session's NOW(), so that a session in any time zone (a caller's own
 * connection, see enqueueStatements) writes the same instants as the store's UTC sessions.
 */
const INSERT_COLUMNS =
  'data, idempotency_key, insert_batch, type, timeout_ms, max_attempts, priority, group_key, status, run_at, due_at, created_at, updated_at';
const PENDING_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))";
/** A delayed task is due at its run_at (`due_at`, the column set before it in the row: see delays.ts). */
const DELAYED_ROW =
  "(?, ?, ?, ?, ?, ?, ?, ?, 'delayed', COALESCE(?, UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND), run_at, UTC_TIMESTAMP(3), UTC_TIMESTAMP(3))";

function rowValues(task: NewTask, marker: number | null): unknown[] {
  const values = [
    JSON.stringify(task.data) ?? null,
    task.idempotencyKey,
    marker,
    task.type ?? SIMULATED,
    task.timeoutMs ?? null,
    task.maxAttempts ?? null,
    task.priority ?? 0,
    task.group ?? null,
  ];
  if (!isDelayed(task)) return values;
  const runAt = task.runAt ?? null;
  return [...values, runAt === null ? null : utcDatetime(runAt), Math.round((task.delayMs ?? 0) * 1000)];
}

/**
 * The INSERT of tasks all due at once or all delayed, counted as they enter `pending` or
 * `delayed`: a statement for a store's session or a caller's own connection alike.
 */
export function insertStatement(tasks: NewTask[], marker: number | null): CountedStatement {
  const delayed = isDelayed(tasks[0] as NewTask);
  if (tasks.some((t) => isDelayed(t) !== delayed))
    throw new Error('an INSERT holds tasks due at once or delayed, not both');
  return {
    sql: `INSERT INTO tasks (${INSERT_COLUMNS}) VALUES ${tasks.map(() => (delayed ? DELAYED_ROW : PENDING_ROW)).join(', ')}`,
    values: tasks.flatMap((t) => rowValues(t, marker)),
    move: { from: null, to: delayed ? 'delayed' : 'pending' },
  };
}

/** What became of one task of insertTasks: its id, or why it was not inserted. */
export type InsertOutcome = { id: number } | { error: Error };

export interface InsertOptions {
  /**
   * Stops the inserts when it aborts (see mysql/stop.ts): a task not yet inserted then gets
   * TransactionStoppedError (it was not stored), or, when the connection was lost during its
   * commit, an error for which isCommitOutcomeUnknown holds.
   */
  signal?: AbortSignal;
}

function failAll(tasks: NewTask[], err: unknown): InsertOutcome[] {
  const error = err instanceof Error ? err : new Error(String(err));
  return tasks.map(() => ({ error }));
}

/** The error a task's INSERT failed with, as the caller should see it. */
function taskError(task: NewTask, err: unknown): Error {
  if (task.idempotencyKey !== null && isDuplicateKey(err)) return new DuplicateIdempotencyKeyError(task.idempotencyKey);
  return asRejection(err) ?? (err instanceof Error ? err : new Error(String(err)));
}

/** One task alone (insertBatch runs it again after a deadlock). */
async function insertOne(pool: Database, task: NewTask, options: InsertOptions): Promise<InsertOutcome> {
  try {
    const [id] = await insertBatch(pool, [task], options);
    return { id: id as number };
  } catch (err) {
    return { error: taskError(task, err) };
  }
}

interface ServerSettings {
  /** Whether the ids of one multi-row INSERT are consecutive (innodb_autoinc_lock_mode 0 or 1). */
  consecutive: boolean;
  /** auto_increment_increment: the distance between consecutive ids. */
  step: number;
  /** max_allowed_packet: the most bytes one trip's text may take; the server drops the connection of a larger one. */
  maxPacket: number;
}

const settingsByPool = new WeakMap<Database, Promise<ServerSettings>>();

/** The server's settings an insert depends on, read once per pool. */
function serverSettingsOf(pool: Database): Promise<ServerSettings> {
  let known = settingsByPool.get(pool);
  if (!known) {
    known = pool
      .query<RowDataPacket[]>(
        'SELECT @@innodb_autoinc_lock_mode AS mode, @@auto_increment_increment AS step, @@max_allowed_packet AS packet',
      )
      .then(([[row]]) => ({
        consecutive: Number(row?.mode) <= 1,
        step: Number(row?.step ?? 1),
        maxPacket: Number(row?.packet),
      }));
    known.catch(() => settingsByPool.delete(pool));
    settingsByPool.set(pool, known);
  }
  return known;
}

/** What a trip's text holds besides its rows: the transaction's other statements, the read-back. */
const TRIP_TEXT_BYTES = 4 * 1024;
/** What a row's text holds besides its strings: its SQL, numbers and instants. */
const ROW_TEXT_BYTES = 256;

/** The most bytes a task's row takes in the INSERT's text: escaping at most doubles a string's bytes. */
function rowBytesAtMost(task: NewTask): number {
  let bytes = ROW_TEXT_BYTES;
  for (const text of [JSON.stringify(task.data), task.idempotencyKey, task.type, task.group]) {
    if (text) bytes += 2 * Buffer.byteLength(text);
  }
  return bytes;
}

/**
 * The tasks in runs, in order, whose INSERT fits in `room` bytes of text by rowBytesAtMost; a
 * task that does not fit with others is a run of its own.
 */
function packetRuns(tasks: NewTask[], room: number): NewTask[][] {
  const runs: NewTask[][] = [];
  let run: NewTask[] = [];
  let bytes = 0;
  for (const task of tasks) {
    const size = rowBytesAtMost(task);
    if (run.length > 0 && bytes + size > room) {
      runs.push(run);
      run = [];
      bytes = 0;
    }
    run.push(task);
    bytes += size;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** Why a task alone cannot be sent in `room` bytes of text, or null when it can (its exact text is measured). */
function tooLarge(task: NewTask, room: number, maxPacket: number): TaskRejectedError | null {
  if (rowBytesAtMost(task) <= room) return null;
  const { sql, values } = insertStatement([task], null);
  const bytes = Buffer.byteLength(format(sql, values as Parameters<typeof format>[1]));
  if (bytes <= room) return null;
  return new TaskRejectedError(
    'data',
    `the task takes ${bytes} bytes to send, more than the server accepts in one statement (max_allowed_packet, ${maxPacket} bytes)`,
  );
}

/** A number of 53 random bits: exact as a JavaScript number and as a double on the server. */
function batchMarker(): number {
  return Number(randomBytes(8).readBigUInt64BE() >> 11n);
}

/**
 * The INSERT of a batch, and the pending count, in one transaction (one commit, one log flush)
 * sent in one round trip, that tells each task its own id in any `innodb_autoinc_lock_mode`.
 * With MySQL's default lock mode (2, interleaved) the ids of one multi-row INSERT need not be
 * consecutive, but within the statement they increase in row order, the first is
 * LAST_INSERT_ID(), and every row carries the batch's random marker in `insert_batch`: reading
 * the rows from that id on with that marker, in id order, gives each task its id (a short
 * range scan of the primary key, stopped after the batch's last row), in the same round trip.
 * In lock modes 0 and 1 (MariaDB's default), and for a single task, the ids are consecutive
 * and that read is left out. The text protocol is used throughout: the server's errors then
 * name the column at fault.
 */
async function insertBatch(pool: Database, tasks: NewTask[], options: InsertOptions): Promise<number[]> {
  const { consecutive, step } = await untilStopped(serverSettingsOf(pool), options.signal);
  const marker = tasks.length === 1 ? null : batchMarker();
  // The tasks due at once, then the delayed ones: an INSERT each (each counted in its status).
  const entries = tasks.map((task, i) => ({ task, i }));
  const parts = [entries.filter((e) => !isDelayed(e.task)), entries.filter((e) => isDelayed(e.task))].filter(
    (part) => part.length > 0,
  );
  const readBack = !consecutive && marker !== null;
  const statements = parts.flatMap((part): CountedStatement[] => [
    insertStatement(
      part.map((e) => e.task),
      marker,
    ),
    ...(readBack
      ? [
          {
            sql: 'SELECT id FROM tasks WHERE id >= LAST_INSERT_ID() AND insert_batch = ? ORDER BY id LIMIT ?',
            values: [marker, part.length],
          },
        ]
      : []),
  ]);
  const results = await countedOneTrip(pool, statements, options);
  const idsOf = (part: unknown[], i: number): number[] => {
    const first = (results[readBack ? 2 * i : i] as ResultSetHeader).insertId;
    if (!readBack) return part.map((_, j) => first + j * step);
    const rows = results[2 * i + 1] as RowDataPacket[];
    if (rows.length !== part.length) {
      throw new Error(`inserted ${part.length} tasks from id ${first} but found ${rows.length} of them`);
    }
    return rows.map((row) => Number(row.id));
  };
  const ids: number[] = [];
  parts.forEach((part, n) => {
    const partIds = idsOf(part, n);
    part.forEach(({ i }, j) => {
      ids[i] = partIds[j] as number;
    });
  });
  return ids;
}

/**
 * Inserts several tasks with one transaction (see insertBatch) and tells each its own id.
 *
 * A batch never shares one fate. When its transaction fails for anything but a lost
 * connection (a taken Idempotency-Key, values the database refuses, a deadlock), nothing was
 * inserted, and its halves are inserted apart, down to single tasks: only the task at fault
 * gets an error (DuplicateIdempotencyKeyError, TaskRejectedError, or the server's), the others
 * their ids. A lost connection is every task's outcome, since the commit may or may not have
 * happened; so is a read-only answer: a commit a primary that left its group could not
 * complete (3100) may yet be in the group, and a member refusing writes (1290, after the
 * transaction helper ran it again on the primary it found) refuses the halves alike. Either
 * way the API answers 503, and a retry with the same Idempotency-Key finds the task if it was
 * stored: a batch is never inserted again after an unknown outcome, so no request is stored twice. A stop (`options.signal`) likewise:
 * none of the batch was inserted.
 */
async function insertRun(pool: Database, tasks: NewTask[], options: InsertOptions): Promise<InsertOutcome[]> {
  if (tasks.length === 1) return [await insertOne(pool, tasks[0] as NewTask, options)];
  try {
    return (await insertBatch(pool, tasks, options)).map((id) => ({ id }));
  } catch (err) {
    if (isConnectionError(err) || isReadOnlyError(err) || err instanceof TransactionStoppedError) {
      return failAll(tasks, err);
    }
    const half = Math.ceil(tasks.length / 2);
    return [
      ...(await insertRun(pool, tasks.slice(0, half), options)),
      ...(await insertRun(pool, tasks.slice(half), options)),
    ];
  }
}

/**
 * Inserts the tasks, each told its own id or its own error, in batches (see insertRun) whose
 * text the server takes in one packet: the server drops the connection of a larger one, which
 * would fail every task of the batch. A task too large to send even alone is refused
 * (TaskRejectedError naming `data`) without being sent, and the others are inserted.
 */
export async function insertTasks(
  pool: Database,
  tasks: NewTask[],
  options: InsertOptions = {},
): Promise<InsertOutcome[]> {
  if (tasks.length === 0) return [];
  let maxPacket: number;
  try {
    ({ maxPacket } = await untilStopped(serverSettingsOf(pool), options.signal));
  } catch (err) {
    return failAll(tasks, err);
  }
  const room = maxPacket - TRIP_TEXT_BYTES;
  const outcomes: InsertOutcome[][] = [];
  for (const run of packetRuns(tasks, room)) {
    const refusal = run.length === 1 ? tooLarge(run[0] as NewTask, room, maxPacket) : null;
    outcomes.push(refusal ? [{ error: refusal }] : await insertRun(pool, run, options));
  }
  return outcomes.flat();
}
