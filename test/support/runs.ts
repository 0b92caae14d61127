import type { FailedRunOutcome, QueueMessage, Task, TaskData, TaskStore } from '@tasks/common';
import type { Sql } from './sql.js';

/**
 * Tasks driven through the store's verbs, as the services drive them, to the states the tests
 * start from. Each helper takes what has the store (a TestEnv, or its context).
 */

type WithStore = { store: TaskStore };

/** A leased message of the task queue, decoded. */
export interface LeasedMessage {
  token: string;
  message: QueueMessage;
}

/** Inserts one task, as the API does; returns its id. */
export async function insertTask(t: WithStore, data: TaskData, idempotencyKey: string | null = null): Promise<number> {
  const [outcome] = await t.store.insert([{ data, idempotencyKey }]);
  if (!outcome || 'error' in outcome) throw outcome?.error ?? new Error('the task was not inserted');
  return outcome.id;
}

/** Inserts `count` tasks and claims them: `processing` in MySQL, their messages on the ready list. */
export async function dispatchedTasks(
  t: WithStore,
  count: number,
  time = 0,
  message = 'task',
): Promise<QueueMessage[]> {
  for (let i = 0; i < count; i++) await insertTask(t, { message: `${message} ${i}`, time });
  const { dispatched } = await t.store.claim(count);
  return dispatched;
}

/**
 * One task inserted and claimed alone, as the claim leaves it: `processing` in its first run,
 * its message on the ready list; other pending tasks stay pending. When none is pending, the
 * store claims it. A claim takes the oldest pending tasks first, so when older ones wait, it is
 * claimed by hand in MySQL (the per-status counts set again from the table) and its message
 * pushed by the store's recovery, as the sweeper pushes a claim that never reached Redis.
 */
export async function claimedTask(t: WithStore & { sql: Sql }, data: TaskData): Promise<number> {
  const [older] = await t.store.listTasks({ status: 'pending', limit: 1 });
  const id = await insertTask(t, data);
  if (!older) {
    const { dispatched } = await t.store.claim(1);
    if (dispatched.length !== 1 || dispatched[0]?.id !== id) throw new Error(`task ${id} was not claimed alone`);
    return id;
  }
  await t.sql.query(
    `UPDATE tasks SET status = 'processing', run = run + 1, dispatched_at = NOW(3) - INTERVAL 1 SECOND
      WHERE id = ? AND status = 'pending'`,
    [id],
  );
  await t.store.recount();
  const { repushed } = await t.store.recover({ graceMs: 0, pageSize: 1_000 });
  if (!repushed.includes(id)) throw new Error(`the message of task ${id} was not pushed`);
  return id;
}

/**
 * Claims up to `count` pending tasks, oldest first, in MySQL alone, by hand: `processing` in a
 * new run, nothing pushed to Redis. What a scheduler that died
 * between its commit and its push leaves behind. The per-status counts are set again from the
 * table (the store's `recount`), as after any row written around the store. Returns the
 * messages the claim would have pushed.
 */
export async function claimedWithoutPush(t: WithStore & { sql: Sql }, count: number): Promise<QueueMessage[]> {
  const [rows] = (await t.sql.query(
    "SELECT id, data, attempts, run FROM tasks WHERE status = 'pending' ORDER BY id LIMIT ?",
    [count],
  )) as unknown as [{ id: number; data: string | TaskData; attempts: number; run: number }[]];
  if (rows.length === 0) return [];
  const ids = rows.map((r) => Number(r.id));
  await t.sql.query(
    `UPDATE tasks SET status = 'processing', run = run + 1, dispatched_at = NOW(3)
      WHERE id IN (?) AND status = 'pending'`,
    [ids],
  );
  await t.store.recount();
  return rows.map((r) => {
    const data = typeof r.data === 'string' ? (JSON.parse(r.data) as TaskData) : r.data;
    return { id: Number(r.id), message: data.message, time: data.time, tries: r.attempts, run: r.run + 1 };
  });
}

/** Leases every ready message (as an executor's fetch does). */
export async function leaseAll(t: WithStore, leaseMs = 60_000): Promise<LeasedMessage[]> {
  const { leased } = await t.store.fetch(10_000, leaseMs);
  return leased.map((l) => {
    if (!l.message) throw new Error(`not a message: ${l.raw}`);
    return { token: l.token, message: l.message };
  });
}

/** Completes leased messages (an executor's successful runs). */
export async function completeLeased(t: WithStore, leased: LeasedMessage[]): Promise<void> {
  await t.store.complete(
    leased.map((l) => ({ id: l.message.id, run: l.message.run, tries: l.message.tries, token: l.token })),
  );
}

/**
 * Fails leased messages (an executor's failed runs): each retried, or dead-lettered on its
 * task's last attempt, as the store's retry policy decides (MAX_ATTEMPTS; the test env's
 * RETRY_BACKOFF_MS of 0 makes a retry ready at once).
 */
export async function failLeased(
  t: WithStore,
  leased: LeasedMessage[],
  { error = 'boom' } = {},
): Promise<FailedRunOutcome[]> {
  const outcomes = await t.store.fail(
    leased.map((l) => ({ token: l.token, message: l.message, error, failedAt: Date.now() })),
  );
  return outcomes.map((o) => o.outcome);
}

/** The task a stored entry (a message or a dead letter) names, or null. */
export function entryTaskId(raw: string): number | null {
  try {
    const id = (JSON.parse(raw) as { id?: unknown }).id;
    return typeof id === 'number' && Number.isSafeInteger(id) && id > 0 ? id : null;
  } catch {
    return null;
  }
}

/**
 * Records the dead letters in the DLQ processor's inbox (as the processor does): every one, or
 * only those of task `id` (the others are handed back to the inbox).
 */
export async function recordInbox(t: WithStore, id?: number): Promise<void> {
  const leased = await t.store.fetchDeadLetters(10_000, 60_000);
  const mine = leased.filter((l) => id === undefined || entryTaskId(l.raw) === id);
  await t.store.recordDeadLetters(mine);
  await t.store.releaseDeadLetters(leased.filter((l) => !mine.includes(l)).map((l) => l.token));
}

/**
 * Runs task `id`'s message and fails it on every try, as an executor whose runs all fail,
 * until the retry policy dead-letters it: the dead letter is then in the DLQ processor's inbox
 * and the task still `processing`. Other ready messages are handed back untouched.
 */
export async function failUntilDeadLettered(t: WithStore, id: number, { error = 'boom' } = {}): Promise<void> {
  for (let tries = 0; tries < t.store.retryPolicy.maxAttempts; tries++) {
    const leased = await leaseAll(t);
    const mine = leased.filter((l) => l.message.id === id);
    await t.store.release(leased.filter((l) => !mine.includes(l)).map((l) => l.token));
    if (mine.length === 0) throw new Error(`no ready message of task ${id} (a retry backoff in the test's settings?)`);
    if ((await failLeased(t, mine, { error })).includes('dead-lettered')) return;
  }
  throw new Error(`task ${id} was not dead-lettered within MAX_ATTEMPTS tries`);
}

/**
 * A task brought to where an operator finds it after it kept failing: run MAX_ATTEMPTS times,
 * dead-lettered (its entry on `dead-letter-queue`), and recorded `failed` in MySQL with its
 * error, as the executor and the DLQ processor leave it.
 */
export async function deadLetteredTask(
  t: WithStore & { sql: Sql },
  { message = 'doomed', time = 0, error = 'simulated failure (FAILURE_RATE=1)' } = {},
): Promise<Task> {
  const id = await unrecordedDeadLetter(t, { message, time, error });
  await recordInbox(t, id);
  return (await t.store.getTask(id)) as Task;
}

/** A task whose dead letter is still in the DLQ processor's inbox: `processing` in MySQL. */
export async function unrecordedDeadLetter(
  t: WithStore & { sql: Sql },
  { message = 'in the inbox', time = 0, error = 'boom' } = {},
): Promise<number> {
  const id = await claimedTask(t, { message, time });
  await failUntilDeadLettered(t, id, { error });
  return id;
}
