import type { QueueMessage, TaskStore } from '@tasks/common';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dispatchedTasks, failUntilDeadLettered } from '../../../test/support/runs.js';
import { createTestEnv, databaseDown, inboxDepths, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { DeadLetterProcessor, type DeadLetterProcessorOptions } from '../src/dead-letter-processor.js';

const options: DeadLetterProcessorOptions = { batchSize: 10, leaseMs: 5_000, pollIntervalMs: 50 };

let t: TestEnv;
let processor: DeadLetterProcessor | null = null;

beforeEach(async () => {
  t = await createTestEnv();
});
afterEach(async () => {
  await processor?.stop();
  processor = null;
  await t.cleanup();
});

function newProcessor(store: TaskStore = t.store): DeadLetterProcessor {
  return new DeadLetterProcessor({ store, logger: t.logger }, options);
}

/** Inserts tasks and claims them the way the scheduler does: they are `processing`, their messages ready. */
async function processing(count: number): Promise<QueueMessage[]> {
  return dispatchedTasks(t, count);
}

/** Dead-letters a task the way an executor does: its message fails on every try, the last (the third) dead-letters it. */
async function deadLetter(message: QueueMessage, error = `boom ${message.id}`): Promise<void> {
  await failUntilDeadLettered(t, message.id, { error });
}

async function deadLetterList(): Promise<string[]> {
  return t.redis.lrange(t.keys.deadLetters, 0, -1);
}

describe('DeadLetterProcessor.recordBatch', () => {
  it('marks the tasks of dead letters failed, with attempts, last error and finish time', async () => {
    const messages = await processing(3);
    for (const m of messages) await deadLetter(m);
    const listBefore = await deadLetterList();

    expect(await newProcessor().recordBatch()).toBe(3);
    for (const m of messages) {
      expect(await t.store.getTask(m.id)).toMatchObject({
        status: 'failed',
        attempts: 3,
        lastError: `boom ${m.id}`,
        finishedAt: expect.any(Date),
      });
    }
    // The inbox is empty; the dead letters themselves stay to be inspected.
    expect(await t.store.depths()).toMatchObject({ deadLetterInbox: 0, deadLetters: 3 });
    expect(await inboxDepths(t)).toEqual({ ready: 0, delayed: 0, inflight: 0 });
    expect(await deadLetterList()).toEqual(listBefore);
  });

  it('takes at most batchSize entries at a time', async () => {
    const messages = await processing(15);
    for (const m of messages) await deadLetter(m);
    const p = newProcessor();
    expect(await p.recordBatch()).toBe(10);
    expect(await p.recordBatch()).toBe(5);
    expect(await p.recordBatch()).toBe(0);
  });

  it('changes nothing when the same entry is recorded twice', async () => {
    const [message] = await processing(1);
    await deadLetter(message!);
    const p = newProcessor();
    await p.recordBatch();
    const recorded = await t.store.getTask(message!.id);

    // The same entry again, as after a processor died between its write and its ack.
    const [entry] = await deadLetterList();
    await t.redis.lpush(t.keys.deadLetterInbox.ready, entry!);
    expect(await p.recordBatch()).toBe(1);
    expect(await t.store.getTask(message!.id)).toEqual(recorded);
    expect(await inboxDepths(t)).toEqual({ ready: 0, delayed: 0, inflight: 0 });
  });

  it('does not change a task that completed meanwhile', async () => {
    const [message] = await processing(1);
    // Its run completes, by a copy of its message whose token is gone…
    await t.store.complete([{ id: message!.id, run: message!.run, tries: 1, token: 'gone' }]);
    const completed = await t.store.getTask(message!.id);
    // …and an executor sets its message aside: a dead letter of the same run.
    const [leased] = (await t.store.fetch(1, 60_000)).leased;
    expect(await t.store.setAside(leased!, `boom ${message!.id}`)).toBe(true);

    expect(await newProcessor().recordBatch()).toBe(1);
    expect(await t.store.getTask(message!.id)).toEqual(completed);
  });

  it('acknowledges entries that name no task without touching MySQL', async () => {
    const [bystander] = await processing(1);
    const before = await t.store.getTask(bystander!.id);
    const inbox = t.keys.deadLetterInbox.ready;
    await t.redis.lpush(
      inbox,
      'not json',
      JSON.stringify({ error: 'invalid message: not JSON', raw: 'garbage', failed_at: new Date().toISOString() }),
      JSON.stringify({ id: 'x', error: 'invalid message: id: expected number' }),
    );

    expect(await newProcessor().recordBatch()).toBe(3);
    expect(await inboxDepths(t)).toEqual({ ready: 0, delayed: 0, inflight: 0 });
    expect(await t.store.getTask(bystander!.id)).toEqual(before);
  });

  it('hands the entries back to the inbox when MySQL cannot be written', async () => {
    const [message] = await processing(1);
    await deadLetter(message!);
    const down = databaseDown(t);
    try {
      await expect(newProcessor(down.store).recordBatch()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await down.close();
    }
    expect(await inboxDepths(t)).toEqual({ ready: 1, delayed: 0, inflight: 0 });
    expect((await t.store.getTask(message!.id))?.status).toBe('processing');

    expect(await newProcessor().recordBatch()).toBe(1);
    expect((await t.store.getTask(message!.id))?.status).toBe('failed');
  });
});

describe('DeadLetterProcessor.start', () => {
  it('records dead letters as they arrive, and stops promptly', async () => {
    const messages = await processing(2);
    processor = newProcessor();
    processor.start();

    await deadLetter(messages[0]!);
    await until(async () => (await t.store.getTask(messages[0]!.id))?.status === 'failed');
    await deadLetter(messages[1]!);
    await until(async () => (await t.store.getTask(messages[1]!.id))?.status === 'failed');

    const stopping = Date.now();
    await processor.stop();
    processor = null;
    expect(Date.now() - stopping).toBeLessThan(2_000);
    expect(await deadLetterList()).toHaveLength(2);
  });
});

describe('DeadLetterProcessor poison entries', () => {
  it('records the batch-mates of an entry with an impossible tries, and fails that entry’s task with the reason', async () => {
    const messages = await processing(6);
    const [poisoned, verbose, ...others] = messages;
    for (const m of others) await deadLetter(m);
    const inbox = t.keys.deadLetterInbox.ready;
    await t.redis.lpush(inbox, JSON.stringify({ ...poisoned, tries: 1e10, error: 'boom', failed_at: 'x' }));
    // An error longer than the column holds, written by an older version or by hand.
    await t.redis.lpush(inbox, JSON.stringify({ ...verbose, tries: 3, error: 'x'.repeat(70_000), failed_at: 'x' }));

    expect(await newProcessor().recordBatch()).toBe(6);
    for (const m of others) expect(await t.store.getTask(m.id)).toMatchObject({ status: 'failed', attempts: 3 });
    expect(await t.store.getTask(poisoned!.id)).toMatchObject({
      status: 'failed',
      attempts: 0,
      lastError: 'boom (invalid dead letter: tries must be a whole number from 0 to 1000)',
    });
    const long = await t.store.getTask(verbose!.id);
    expect(long).toMatchObject({ status: 'failed', attempts: 3 });
    expect(Buffer.byteLength(long?.lastError ?? '')).toBeLessThanOrEqual(2_000);
    expect(Buffer.byteLength(long?.lastError ?? '')).toBeGreaterThan(1_990);
    expect(long?.lastError?.endsWith('…')).toBe(true);
    expect(await inboxDepths(t)).toEqual({ ready: 0, delayed: 0, inflight: 0 });
  });
});
