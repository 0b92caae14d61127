import { EXECUTOR_LOST, isTransientError } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  completeLeased,
  deadLetteredTask,
  dispatchedTasks,
  failLeased,
  type LeasedMessage,
  leaseAll,
} from '../../../test/support/runs.js';
import { createRedis } from '../src/redis/client.js';
import { withQueueCommands } from '../src/redis/scripts.js';
import { TaskQueue } from '../src/redis/task-queue.js';
import { getTask } from '../src/tasks/task-reads.js';
import { claimAndDispatch } from '../src/tasks/transitions/claim-and-dispatch.js';
import { type FailedRun, failRuns } from '../src/tasks/transitions/fail-runs.js';
import { recordDeadLetters } from '../src/tasks/transitions/record-dead-letters.js';
import { recoverLost } from '../src/tasks/transitions/recover.js';
import { redriveTask } from '../src/tasks/transitions/redrive.js';
import { createTestEnv, type TestEnv } from './support/store-env.js';

let t: TestEnv;

beforeEach(async () => {
  t = await createTestEnv();
});
afterEach(async () => {
  await t.cleanup();
});

async function finishes(): Promise<number> {
  const [[row]] = (await t.ctx.pool.query(
    'SELECT COALESCE(SUM(completed + failed), 0) AS n FROM tasks_finished_per_minute',
  )) as [{ n: number }[], unknown];
  return Number(row?.n);
}

describe('runs fence every write', () => {
  it('a stale dead letter replayed during a redriven task’s new run changes nothing; the new run decides', async () => {
    const task = await deadLetteredTask(t, { error: 'first run failed' });
    const [oldLetter] = await t.ctx.redis.lrange(t.ctx.queue.keys.deadLetters, 0, 0);
    expect(JSON.parse(oldLetter!)).toMatchObject({ id: task.id, run: 1 });

    await redriveTask(t.ctx, task.id);
    const { dispatched } = await claimAndDispatch(t.ctx, 10);
    expect(dispatched).toEqual([expect.objectContaining({ id: task.id, run: 2, tries: 0 })]);

    // The processor that recorded the old letter died before acknowledging it: it comes back.
    await recordDeadLetters(t.ctx, [{ token: 'replayed', raw: oldLetter! }]);
    expect(await getTask(t.ctx.pool, task.id)).toMatchObject({ status: 'processing', attempts: 0 });

    await completeLeased(t, await leaseAll(t));
    expect(await getTask(t.ctx.pool, task.id)).toMatchObject({ status: 'completed', attempts: 1 });
    // Run 1's failure left the counts with the redrive, the stale letter counted nothing: one completion.
    expect(await finishes()).toBe(1);
  });

  it('a duplicate copy of a message uses none of the run’s attempts', async () => {
    const [message] = await dispatchedTasks(t, 1);
    // A second copy (the sweeper re-pushed it, or the client resent a push after a lost reply).
    await t.ctx.queue.dispatch([message!]);
    const copies = await leaseAll(t);
    expect(copies).toHaveLength(2);

    expect(await failLeased(t, [copies[0]!])).toEqual(['retried']);
    expect(await failLeased(t, [copies[1]!])).toEqual(['dropped']);
    expect(await getTask(t.ctx.pool, message!.id)).toMatchObject({ status: 'processing', attempts: 1 });

    // The retried message is the only one left: its failure is the second attempt, not the third.
    const [retried] = await leaseAll(t);
    expect(retried?.message.tries).toBe(1);
    expect(await failLeased(t, [retried!])).toEqual(['retried']);
    expect(await getTask(t.ctx.pool, message!.id)).toMatchObject({ attempts: 2 });
    expect(await leaseAll(t)).toHaveLength(1);
  });

  it('two copies failing in one batch count one try', async () => {
    const [message] = await dispatchedTasks(t, 1);
    await t.ctx.queue.dispatch([message!]);
    expect(await failLeased(t, await leaseAll(t))).toEqual(['retried', 'dropped']);
    expect(await getTask(t.ctx.pool, message!.id)).toMatchObject({ attempts: 1 });
    expect(await leaseAll(t)).toHaveLength(1);
  });

  it('a message of an old run neither completes nor fails the task’s new run', async () => {
    const task = await deadLetteredTask(t);
    const stale: LeasedMessage = {
      token: 'stale',
      message: { id: task.id, message: 'doomed', time: 0, tries: 0, run: 1 },
    };
    await redriveTask(t.ctx, task.id);
    await claimAndDispatch(t.ctx, 10);

    await completeLeased(t, [stale]);
    // Failed as its last try: dropped all the same, not dead-lettered.
    const lastTry = { ...stale, error: 'boom', last: true, delayMs: 0, failedAt: new Date().toISOString() };
    expect(await failRuns(t.ctx, [lastTry])).toEqual(['dropped']);
    expect(await getTask(t.ctx.pool, task.id)).toMatchObject({ status: 'processing', attempts: 0 });
    // The new run's message is still there. The drop took the task out of the present set (the
    // safe side: at worst the sweeper pushes one more copy of the new run, which is fenced too).
    expect(await t.ctx.queue.present([task.id])).toEqual([false]);
    expect(await leaseAll(t)).toEqual([expect.objectContaining({ message: expect.objectContaining({ run: 2 }) })]);
  });

  it('a failed try whose Redis settlement failed is settled again without being counted twice', async () => {
    const [message] = await dispatchedTasks(t, 1);
    const [leased] = await leaseAll(t);
    const run: FailedRun = {
      message: leased!.message,
      token: leased!.token,
      error: 'boom',
      last: false,
      delayMs: 0,
      failedAt: new Date().toISOString(),
    };
    const counted = (_: number, c: boolean) => {
      run.counted = c;
    };
    // MySQL answers, Redis does not.
    const unreachable = createRedis({ REDIS_URL: 'redis://127.0.0.1:1' }, t.ctx.logger, 'unreachable', {
      maxRetriesPerRequest: 0,
    });
    const down = new TaskQueue(withQueueCommands(unreachable), t.ctx.queue.keys, 100);
    try {
      await expect(failRuns({ pool: t.ctx.pool, queue: down }, [run], counted)).rejects.toSatisfy(isTransientError);
    } finally {
      unreachable.disconnect();
    }
    expect(await getTask(t.ctx.pool, message!.id)).toMatchObject({ attempts: 1 });

    // The executor settles the same run again once Redis answers.
    expect(await failRuns(t.ctx, [run])).toEqual(['retried']);
    expect(await getTask(t.ctx.pool, message!.id)).toMatchObject({ status: 'processing', attempts: 1 });
    expect(await leaseAll(t)).toEqual([expect.objectContaining({ message: { ...message!, tries: 1 } })]);
  });

  it('a stale copy dropped after Redis lost the counted try’s next message leaves its task findable', async () => {
    const [message] = await dispatchedTasks(t, 1);
    const [first] = await leaseAll(t);
    // Redis loses its data while the first try runs.
    const k = t.ctx.queue.keys;
    await t.ctx.redis.del(k.tasks.ready, k.tasks.inflight, k.tasks.leases, k.present);
    // The sweeper pushes the task again, from its attempts so far (none).
    await t.ctx.pool.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
    const sweep = () => recoverLost(t.ctx, { graceMs: 0, maxAttempts: 3, pageSize: 100, lostError: EXECUTOR_LOST });
    expect((await sweep()).repushed).toEqual([message!.id]);
    // The first try fails: counted, but its next message cannot be pushed (its lease went with the data).
    expect(await failLeased(t, [first!])).toEqual(['lease-lost']);
    // The sweeper's copy, of before that try, fails too: stale, dropped.
    expect(await failLeased(t, await leaseAll(t))).toEqual(['dropped']);
    expect(await t.ctx.redis.llen(k.tasks.ready)).toBe(0);

    // No message is left: the task must look missing, so the next pass pushes its next try.
    await t.ctx.pool.query('UPDATE tasks SET dispatched_at = dispatched_at - INTERVAL 1 SECOND');
    expect((await sweep()).repushed).toEqual([message!.id]);
    expect(await leaseAll(t)).toEqual([expect.objectContaining({ message: { ...message!, tries: 1 } })]);
  });
});
