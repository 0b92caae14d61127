import type { TaskStore } from '@tasks/common';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { deadLetteredTask, insertTask, unrecordedDeadLetter } from '../../../test/support/runs.js';
import { createTestEnv, databaseDown, type TestEnv } from '../../../test/support/test-env.js';
import { parseCommand, runCli, UsageError } from '../src/cli.js';

let t: TestEnv;

beforeEach(async () => {
  await t?.cleanup();
  t = await createTestEnv();
});
afterAll(async () => {
  await t.cleanup();
});

interface Run {
  code: number;
  out: string;
  err: string;
  opened: boolean;
}

/** Runs the CLI in this process against the test's database and Redis keys. */
async function cli(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  let opened = false;
  const code = await runCli(argv, { out: (s) => out.push(s), err: (s) => err.push(s) }, () => {
    opened = true;
    // The test env's clients stay open for the next run.
    return { ...t.ctx, close: async () => undefined };
  });
  return { code, out: out.join('\n'), err: err.join('\n'), opened };
}

async function listed(): Promise<(number | undefined)[]> {
  const entries = await t.redis.lrange(t.keys.deadLetters, 0, -1);
  return entries.map((e) => {
    try {
      return JSON.parse(e).id;
    } catch {
      return undefined;
    }
  });
}

describe('stats', () => {
  it('--recount sets the per-status counts from the table, after rows were written by hand', async () => {
    await t.sql.query('INSERT INTO tasks (data, status) VALUES (?, ?), (?, ?)', [
      '{"message":"by hand","time":0}',
      'pending',
      '{"message":"by hand","time":0}',
      'completed',
    ]);
    expect(JSON.parse((await cli('stats', '--json')).out).tasks).toMatchObject({ pending: 0, completed: 0 });
    const run = await cli('stats', '--recount', '--json');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.out).tasks).toEqual({
      pending: 1,
      processing: 0,
      completed: 1,
      failed: 0,
      cancelled: 0,
      delayed: 0,
    });
  });

  it('prints tasks per status and queue depths', async () => {
    await insertTask(t, { message: 'a', time: 0 });
    await deadLetteredTask(t);
    const run = await cli('stats');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/pending\s+1/);
    expect(run.out).toMatch(/failed\s+1/);
    expect(run.out).toMatch(new RegExp(`dead letters \\(${t.keys.deadLetters}\\)\\s+1`));
  });

  it('prints JSON with --json', async () => {
    await deadLetteredTask(t);
    const run = await cli('stats', '--json');
    expect(JSON.parse(run.out)).toEqual({
      tasks: { pending: 0, processing: 0, completed: 0, failed: 1, cancelled: 0, delayed: 0 },
      queue: { ready: 0, delayed: 0, inflight: 0, dead_letters: 1, dead_letter_inbox: 0 },
    });
  });
});

describe('dlq list', () => {
  it('lists the entries newest first with their status in MySQL', async () => {
    const a = await deadLetteredTask(t, { error: 'first error' });
    const b = await deadLetteredTask(t, { error: 'second error' });
    const inbox = await unrecordedDeadLetter(t);
    const run = await cli('dlq', 'list');
    expect(run.code).toBe(0);
    const lines = run.out.split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATUS\s+TRIES\s+FAILED AT\s+ERROR$/);
    expect(lines[1]).toMatch(new RegExp(`^${inbox}\\s+processing\\s+3`));
    expect(lines[2]).toMatch(new RegExp(`^${b.id}\\s+failed\\s+3\\s+\\S+\\s+second error$`));
    expect(lines[3]).toMatch(new RegExp(`^${a.id}\\s+failed`));
    expect(run.out).toContain('1-3 of 3');
  });

  it('pages with --limit and --offset, and prints the exact entries with --json', async () => {
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push((await deadLetteredTask(t, { message: `m${i}` })).id);
    const run = await cli('dlq', 'list', '--limit', '2', '--offset', '1', '--json');
    const body = JSON.parse(run.out);
    expect(body.total).toBe(4);
    expect(body.entries.map((e: { id: number }) => e.id)).toEqual([ids[2], ids[1]]);
    const raw = await t.redis.lindex(t.keys.deadLetters, 1);
    expect(body.entries[0]).toMatchObject({ status: 'failed', message: 'm2', entry: raw });
  });

  it('says when the list is empty', async () => {
    expect((await cli('dlq', 'list')).out).toBe('the dead-letter list is empty');
  });
});

describe('dlq show', () => {
  it('shows the task and its entries', async () => {
    const task = await deadLetteredTask(t, { message: 'shown', error: 'why it failed' });
    const run = await cli('dlq', 'show', String(task.id));
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/status\s+failed/);
    expect(run.out).toMatch(/last error\s+why it failed/);
    expect(run.out).toContain('dead letters: 1');
    const json = JSON.parse((await cli('dlq', 'show', String(task.id), '--json')).out);
    expect(json.task).toMatchObject({ id: task.id, status: 'failed', attempts: 3 });
    expect(json.dead_letters).toHaveLength(1);
  });

  it('fails for a task that is nowhere', async () => {
    const run = await cli('dlq', 'show', '4242');
    expect(run.code).toBe(1);
    expect(run.err).toContain('task 4242 does not exist');
  });
});

describe('dlq redrive (and its first name, dlq retry)', () => {
  it('puts a failed task back to pending and removes only its entries', async () => {
    const a = await deadLetteredTask(t);
    const b = await deadLetteredTask(t);
    const run = await cli('dlq', 'retry', String(a.id));
    expect(run.code).toBe(0);
    expect(run.out).toBe(`task ${a.id}: pending again (1 dead-letter entry removed)`);
    expect(await t.store.getTask(a.id)).toMatchObject({ status: 'pending', attempts: 0 });
    expect(await listed()).toEqual([b.id]);
  });

  it('refuses a task that is not failed, says why, and exits 1', async () => {
    const inbox = await unrecordedDeadLetter(t);
    const a = await deadLetteredTask(t);
    const run = await cli('dlq', 'retry', String(inbox), String(a.id));
    expect(run.code).toBe(1);
    expect(run.out).toContain(`task ${inbox}: not redriven: task ${inbox} is processing, not failed`);
    expect(run.out).toContain('DLQ processor has not recorded yet');
    expect(run.out).toContain(`task ${a.id}: pending again`);
    expect(await listed()).toEqual([inbox]);
  });

  it('--all redrives every failed task the list names and keeps the other entries', async () => {
    const failed = [await deadLetteredTask(t), await deadLetteredTask(t)];
    const inbox = await unrecordedDeadLetter(t);
    await t.redis.lpush(t.keys.deadLetters, 'garbage');
    const run = await cli('dlq', 'retry', '--all');
    expect(run.code).toBe(0);
    expect(run.out).toContain('2 failed tasks pending again; 2 dead-letter entries removed');
    expect(run.out).toContain('2 entries kept');
    for (const f of failed) expect((await t.store.getTask(f.id))?.status).toBe('pending');
    expect(await listed()).toEqual([undefined, inbox]);
    const again = JSON.parse((await cli('dlq', 'retry', '--all', '--json')).out);
    expect(again).toEqual({ redriven: [], removedEntries: 0, keptEntries: 2 });
  });
});

describe('dlq purge', () => {
  it('without --yes, says what it would do and removes nothing', async () => {
    await deadLetteredTask(t);
    const run = await cli('dlq', 'purge');
    expect(run.code).toBe(1);
    expect(run.err).toContain('removes all 1 entries');
    expect(await listed()).toHaveLength(1);
  });

  it('with --yes, empties the list and leaves MySQL failed', async () => {
    const a = await deadLetteredTask(t);
    await deadLetteredTask(t);
    const run = await cli('dlq', 'purge', '--yes');
    expect(run.code).toBe(0);
    expect(run.out).toContain('2 dead-letter entries removed');
    expect(await listed()).toEqual([]);
    expect((await t.store.getTask(a.id))?.status).toBe('failed');
  });
});

describe('data with control characters', () => {
  // ANSI colour and screen-clearing sequences (7-bit ESC [ and the 8-bit CSI), a bell, DEL, a
  // line break and a tab: none may reach the terminal as they are.
  const hostile = 'red \x1b[31mALERT\x1b[0m \x9b2J bell\x07 del\x7f nl\nfake line\ttab';
  /** Every control character but the line breaks between lines of output. */
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for
  const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

  it.each([[['dlq', 'show']], [['dlq', 'list']]])('%j shows them escaped', async (argv) => {
    const task = await deadLetteredTask(t, { message: hostile, error: `failed: ${hostile}` });
    const args = argv[1] === 'show' ? [...argv, String(task.id)] : argv;
    const run = await cli(...args);
    expect(run.code).toBe(0);
    expect(run.out).not.toMatch(RAW_CONTROL);
    expect(run.out).toContain('\\x1b[31mALERT');
    expect(run.out).not.toContain('fake line\n');
    if (argv[1] === 'show') {
      expect(run.out).toContain('red \\x1b[31mALERT\\x1b[0m \\x9b2J bell\\x07 del\\x7f nl\\nfake line\\ttab');
    } else {
      expect(run.out.split('\n')).toHaveLength(3); // the header, the entry, the count
    }
  });

  it.each([[['dlq', 'show']], [['dlq', 'list']]])(
    '%j --json escapes them as JSON does, readable back',
    async (argv) => {
      const task = await deadLetteredTask(t, { message: hostile });
      const args = argv[1] === 'show' ? [...argv, String(task.id), '--json'] : [...argv, '--json'];
      const run = await cli(...args);
      expect(run.out).not.toMatch(RAW_CONTROL);
      const body = JSON.parse(run.out);
      expect(argv[1] === 'show' ? body.task.data.message : body.entries[0].message).toBe(hostile);
    },
  );

  it('escapes an entry pushed by hand, whatever it holds', async () => {
    const task = await deadLetteredTask(t);
    // JSON allows DEL and the C1 characters raw in a string.
    const entry = JSON.stringify({
      ...JSON.parse((await t.redis.lindex(t.keys.deadLetters, 0)) ?? ''),
      error: 'csi \x9b2J del \x7f',
    });
    expect(entry).toContain('\x9b');
    await t.redis.lpush(t.keys.deadLetters, entry);
    const run = await cli('dlq', 'show', String(task.id));
    expect(run.out).toContain('dead letters: 2');
    expect(run.out).not.toMatch(RAW_CONTROL);
    expect(run.out).toContain('csi \\x9b2J del \\x7f');
  });

  it('escapes what an error message carries', async () => {
    const errors: string[] = [];
    // A store whose read fails with an error carrying control characters.
    const store = { stats: () => Promise.reject(new Error('bad \x1b[2J\x9b')) } as unknown as TaskStore;
    await runCli(['stats'], { out: () => undefined, err: (s) => errors.push(s) }, () => ({
      store,
      close: async () => undefined,
    }));
    expect(errors.join('\n')).toBe('error: bad \\x1b[2J\\x9b');
  });
});

describe('the command line', () => {
  it.each([
    [['--help'], 'help'],
    [['-h'], 'help'],
    [['dlq', 'list', '--limit', '5'], 'dlq list'],
    [['dlq', 'redrive', '1', '2'], 'dlq redrive'],
    [['dlq', 'redrive', '--all'], 'dlq redrive --all'],
    [['dlq', 'retry', '1', '2'], 'dlq redrive'],
    [['dlq', 'retry', '--all'], 'dlq redrive --all'],
  ])('parses %j as %s', (argv, name) => {
    expect(parseCommand(argv).name).toBe(name);
  });

  it.each([
    [[]],
    [['dlq', 'frobnicate']],
    [['dlq']],
    [['queue', 'list']],
    [['dlq', 'retry']],
    [['dlq', 'retry', 'abc']],
    [['dlq', 'retry', '0']],
    [['dlq', 'show']],
    [['dlq', 'list', '--limit', '0']],
    [['dlq', 'list', '--all']],
    [['dlq', 'retry', '--all', '7']],
    [['stats', '--yes']],
    [['stats', '--nope']],
  ])('rejects %j with exit status 2 and the usage, without connecting', async (argv) => {
    expect(() => parseCommand(argv)).toThrow(UsageError);
    const run = await cli(...argv);
    expect(run.code).toBe(2);
    expect(run.err).toMatch(/^error: /);
    expect(run.err).toContain('Usage: pnpm tasks');
    expect(run.opened).toBe(false);
  });

  it('reports a failure of the database as an error with exit status 1', async () => {
    const errors: string[] = [];
    const run = await runCli(['stats'], { out: () => undefined, err: (s) => errors.push(s) }, () => databaseDown(t));
    expect(run).toBe(1);
    expect(errors.join('\n')).toContain('error: connect ECONNREFUSED');
  });
});
