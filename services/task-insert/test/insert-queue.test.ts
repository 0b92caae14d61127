import { type InsertOutcome, type NewTask, type TaskData, TransactionStoppedError } from '@tasks/common';
import { describe, expect, it } from 'vitest';
import { InsertQueue, InsertTimedOutError, type WriteTasks } from '../src/insert-queue.js';

/**
 * The queue's own rules, against a writer that stands in for the database: it answers a batch
 * with ids at once, unless the batch holds one of the `stalling` tasks; then it answers only
 * once stopped, as a statement waiting on a lock does when KILL QUERY reaches it (`stopMs`
 * after the stop). The HTTP tests run the same rules against MySQL with the table locked
 * (insert-backpressure.test.ts).
 */

const task = (message: string): NewTask => ({ data: { message, time: 0 }, idempotencyKey: null });

function writer(stalling: string[], stopMs = 0) {
  const batches: string[][] = [];
  let nextId = 1;
  const write: WriteTasks = (tasks, signal) => {
    const names = tasks.map((t) => (t.data as TaskData).message);
    batches.push(names);
    if (!names.some((name) => stalling.includes(name))) return Promise.resolve(tasks.map(() => ({ id: nextId++ })));
    return new Promise<InsertOutcome[]>((resolve) => {
      signal.addEventListener('abort', () =>
        setTimeout(() => resolve(tasks.map(() => ({ error: new TransactionStoppedError() }))), stopMs),
      );
    });
  };
  return { write, batches };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const wait = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const timedOut = { error: expect.any(InsertTimedOutError) };

describe('InsertQueue', () => {
  it('withdraws an insert whose deadline passes while it is queued: it is never sent', async () => {
    const db = writer(['first'], 300);
    const queue = new InsertQueue(db.write, { limit: 100, timeoutMs: 200, maxBatch: 10 });
    const first = queue.add(task('first'));
    await nextTurn();
    const second = queue.add(task('second'));
    // `first` is stopped at 200 ms and answers 300 ms later; `second` is due meanwhile.
    expect(await second).toEqual(timedOut);
    expect(await first).toEqual(timedOut);
    expect(db.batches).toEqual([['first']]);
    expect(queue.size).toBe(0);
  });

  it('answers the inserts of a stopped batch that are due, and writes the others again', async () => {
    const db = writer(['blocker', 'early']);
    const queue = new InsertQueue(db.write, { limit: 100, timeoutMs: 1_000, maxBatch: 10 });
    // While [blocker] waits on the database, `early` (100 ms later) and `late` (400 ms later, before
    // new inserts are refused at 500 ms) are queued together.
    const blocker = queue.add(task('blocker'));
    await wait(100);
    const early = queue.add(task('early'));
    await wait(300);
    const late = queue.add(task('late'));
    expect(await blocker).toEqual(timedOut);
    // [early, late] is sent next and stopped at early's deadline, when late has 300 ms left.
    expect(await early).toEqual(timedOut);
    expect(await late).toEqual({ id: 1 });
    expect(db.batches).toEqual([['blocker'], ['early', 'late'], ['late']]);
  });
});
