import { type Context, getTask, insertTask, markFailed, type Task } from '@tasks/common';

/**
 * A task brought to where an operator finds it after it kept failing: run `attempts` times,
 * dead-lettered (its entry on `dead-letter-queue`), and recorded `failed` in MySQL with its
 * error, as the executor and the DLQ processor leave it.
 */
export async function deadLetteredTask(
  ctx: Pick<Context, 'pool' | 'queue'>,
  { message = 'doomed', time = 0, attempts = 3, error = 'simulated failure (FAILURE_RATE=1)' } = {},
): Promise<Task> {
  const id = await insertTask(ctx.pool, { message, time });
  await ctx.pool.query("UPDATE tasks SET status = 'processing', dispatched_at = NOW(3) WHERE id = ?", [id]);
  await ctx.queue.deadLetter(null, { id, message, time, tries: attempts, error, failed_at: new Date().toISOString() });
  await recordInbox(ctx);
  await markFailed(ctx.pool, [{ id, attempts, error }]);
  return (await getTask(ctx.pool, id))!;
}

/** Takes every entry off the DLQ processor's inbox, as the processor does once it recorded them. */
export async function recordInbox(ctx: Pick<Context, 'queue'>): Promise<void> {
  const { leased } = await ctx.queue.inbox.fetch(10_000, 60_000);
  await ctx.queue.inbox.ack(leased.map((l) => l.token));
}

/** A task whose dead letter is still in the DLQ processor's inbox: `processing` in MySQL. */
export async function unrecordedDeadLetter(
  ctx: Pick<Context, 'pool' | 'queue'>,
  message = 'in the inbox',
): Promise<number> {
  const id = await insertTask(ctx.pool, { message, time: 0 });
  await ctx.pool.query("UPDATE tasks SET status = 'processing', dispatched_at = NOW(3) WHERE id = ?", [id]);
  await ctx.queue.deadLetter(null, {
    id,
    message,
    time: 0,
    tries: 3,
    error: 'boom',
    failed_at: new Date().toISOString(),
  });
  return id;
}
