import type { NewTask } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { runCli } from '../src/cli.js';

/** `pnpm tasks cancel <id>…`, and `dlq show` of a typed task with its result. */

let t: TestEnv;

beforeAll(async () => {
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s) }, () => ({
    ...t.ctx,
    close: async () => undefined,
  }));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function insert(task: Partial<NewTask> = {}): Promise<number> {
  const [outcome] = await t.ctx.store.insert([{ data: { message: 'm', time: 0 }, idempotencyKey: null, ...task }]);
  if (!outcome || !('id' in outcome)) throw new Error('not inserted');
  return outcome.id;
}

/** Claims, leases and completes every pending task, each with `result` (the executor's path). */
async function completeAll(result?: unknown): Promise<void> {
  await t.ctx.store.claim(1_000);
  const { leased } = await t.ctx.store.fetch(1_000, 60_000);
  await t.ctx.store.complete(
    leased.flatMap((l) =>
      l.message
        ? [
            {
              id: l.message.id,
              run: l.message.run,
              tries: l.message.tries,
              token: l.token,
              ...(result === undefined ? {} : { result: JSON.stringify(result) }),
            },
          ]
        : [],
    ),
  );
}

const status = async (id: number) => (await t.ctx.store.getTask(id))?.status;

describe('cancel', () => {
  it('cancels a pending task at once, and counts it', async () => {
    const id = await insert();
    const before = (await t.ctx.store.stats()).tasks;
    const run = await cli('cancel', String(id));
    expect(run).toMatchObject({ code: 0, out: `task ${id}: cancelled (it was pending)` });
    expect(await status(id)).toBe('cancelled');
    const after = (await t.ctx.store.stats()).tasks;
    expect(after.pending).toBe(before.pending - 1);
    expect(after.cancelled).toBe(before.cancelled + 1);
  });

  it('cancels a processing task, and a second cancel is harmless', async () => {
    const id = await insert();
    await t.ctx.store.claim(1_000);
    expect(await status(id)).toBe('processing');
    expect((await cli('cancel', String(id))).out).toBe(`task ${id}: cancelled (it was processing)`);
    const again = await cli('cancel', String(id), '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.out)).toEqual({
      results: [{ id, cancelled: true, was: 'cancelled', message: 'cancelled already' }],
    });
  });

  it('leaves a finished task as it is and an unknown one alone, exit 1, and cancels the others named', async () => {
    const done = await insert();
    await completeAll();
    const pending = await insert();
    const run = await cli('cancel', String(done), '999999', String(pending));
    expect(run.code).toBe(1);
    expect(run.out.split('\n')).toEqual([
      `task ${done}: not cancelled: task ${done} is completed: a finished task cannot be cancelled`,
      'task 999999: not cancelled: task 999999 does not exist',
      `task ${pending}: cancelled (it was pending)`,
    ]);
    expect(await status(done)).toBe('completed');
    expect(await status(pending)).toBe('cancelled');
  });

  it('needs task ids', async () => {
    expect((await cli('cancel')).code).toBe(2);
    expect((await cli('cancel', 'abc')).code).toBe(2);
    expect((await cli('cancel', '1', '--all')).code).toBe(2);
  });
});

describe('dlq show of a typed task', () => {
  it('shows its type, its data and its result', async () => {
    const id = await insert({ type: 'echo', data: { say: 'hi', n: [1, 2] }, timeoutMs: 1_500, maxAttempts: 4 });
    await completeAll({ said: 'hi', ok: true });
    const run = await cli('dlq', 'show', String(id));
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/^type +echo$/m);
    // The JSON as stored: MySQL keeps an object's keys in an order of its own.
    const json = (label: string) => JSON.parse(new RegExp(`^${label} +(\\{.*\\})$`, 'm').exec(run.out)?.[1] ?? 'null');
    expect(json('data')).toEqual({ say: 'hi', n: [1, 2] });
    expect(json('result')).toEqual({ said: 'hi', ok: true });
    expect(run.out).toMatch(/^timeout +1500 ms$/m);
    expect(run.out).toMatch(/^attempts +1 of 4$/m);
    const shown = JSON.parse((await cli('dlq', 'show', String(id), '--json')).out);
    expect(shown.task).toMatchObject({
      type: 'echo',
      data: { say: 'hi', n: [1, 2] },
      result: { said: 'hi', ok: true },
      timeout_ms: 1_500,
      max_attempts: 4,
    });
  });

  it("shows the original's task as before, with its type", async () => {
    const id = await insert({ data: { message: 'the original', time: 2 } });
    const run = await cli('dlq', 'show', String(id));
    expect(run.out).toMatch(/^type +simulated$/m);
    expect(run.out).toMatch(/^message +the original$/m);
    expect(run.out).toMatch(/^time +2 s$/m);
    expect(run.out).toMatch(/^result +-$/m);
  });
});
