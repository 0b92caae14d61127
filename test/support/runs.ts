import {
  type Context,
  claimAndDispatch,
  completeRuns,
  countedOneTrip,
  decodeMessage,
  type FailedRunOutcome,
  failRuns,
  getTask,
  insertTask,
  namedTaskId,
  type QueueMessage,
  recordDeadLetters,
  type Task,
} from '@tasks/common';

/**
 * Tasks driven through the real transitions, as the services drive them, to the states the
 * tests start from.
 */

type Ctx = Pick<Context, 'pool' | 'queue'>;

/** A leased message of the task queue, decoded. */
export interface LeasedMessage {
  token: string;
  message: QueueMessage;
}

/** Inserts `count` tasks and claims them: `processing` in MySQL, their messages on the ready list. */
export async function dispatchedTasks(ctx: Ctx, count: number, time = 0, message = 'task'): Promise<QueueMessage[]> {
  for (let i = 0; i < count; i++) await insertTask(ctx.pool, { message: `${message} ${i}`, time });
  const { dispatched } = await claimAndDispatch(ctx, count);
  return dispatched;
}

/**
 * One task inserted and claimed alone (other pending tasks stay pending), as the claim leaves
 * it: `processing` in its first run, its message on the ready list.
 */
export async function claimedTask(ctx: Ctx, data: { message: string; time: number }): Promise<number> {
  const id = await insertTask(ctx.pool, data);
  await countedOneTrip(ctx.pool, [
    {
      sql: "UPDATE tasks SET status = 'processing', run = 1, dispatched_at = NOW(3) WHERE id = ?",
      values: [id],
      move: { from: 'pending', to: 'processing' },
    },
  ]);
  await ctx.queue.dispatch([{ id, ...data, tries: 0, run: 1 }]);
  return id;
}

/** Leases every ready message (as an executor's fetch does). */
export async function leaseAll(ctx: Ctx, leaseMs = 60_000): Promise<LeasedMessage[]> {
  const { leased } = await ctx.queue.tasks.fetch(10_000, leaseMs);
  return leased.map((l) => {
    const decoded = decodeMessage(l.raw);
    if (!decoded.ok) throw new Error(`not a message: ${l.raw}`);
    return { token: l.token, message: decoded.value };
  });
}

/** Completes leased messages (an executor's successful runs). */
export async function completeLeased(ctx: Ctx, leased: LeasedMessage[]): Promise<void> {
  await completeRuns(
    ctx,
    leased.map((l) => ({ id: l.message.id, run: l.message.run, tries: l.message.tries, token: l.token })),
  );
}

/** Fails leased messages (an executor's failed runs): retried at once, or dead-lettered when `last`. */
export function failLeased(
  ctx: Ctx,
  leased: LeasedMessage[],
  { error = 'boom', last = false } = {},
): Promise<FailedRunOutcome[]> {
  return failRuns(
    ctx,
    leased.map((l) => ({
      message: l.message,
      token: l.token,
      error,
      last,
      delayMs: 0,
      failedAt: new Date().toISOString(),
    })),
  );
}

/**
 * Records the dead letters in the DLQ processor's inbox (as the processor does): every one, or
 * only those of task `id` (the others stay in the inbox).
 */
export async function recordInbox(ctx: Ctx, id?: number): Promise<void> {
  const { leased } = await ctx.queue.inbox.fetch(10_000, 60_000);
  const mine = leased.filter((l) => id === undefined || namedTaskId(l.raw) === id);
  await recordDeadLetters(ctx, mine);
  await ctx.queue.inbox.release(leased.filter((l) => !mine.includes(l)).map((l) => l.token));
}

/**
 * A task brought to where an operator finds it after it kept failing: run `attempts` times,
 * dead-lettered (its entry on `dead-letter-queue`), and recorded `failed` in MySQL with its
 * error, as the executor and the DLQ processor leave it.
 */
export async function deadLetteredTask(
  ctx: Ctx,
  { message = 'doomed', time = 0, attempts = 3, error = 'simulated failure (FAILURE_RATE=1)' } = {},
): Promise<Task> {
  const id = await unrecordedDeadLetter(ctx, { message, time, attempts, error });
  await recordInbox(ctx, id);
  return (await getTask(ctx.pool, id)) as Task;
}

/** A task whose dead letter is still in the DLQ processor's inbox: `processing` in MySQL. */
export async function unrecordedDeadLetter(
  ctx: Ctx,
  { message = 'in the inbox', time = 0, attempts = 3, error = 'boom' } = {},
): Promise<number> {
  const id = await claimedTask(ctx, { message, time });
  for (let tries = 0; tries < attempts; tries++) {
    const leased = (await leaseAll(ctx)).filter((l) => l.message.id === id);
    await failLeased(ctx, leased, { error, last: tries + 1 === attempts });
  }
  return id;
}
