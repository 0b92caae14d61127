// `node bench/dist/sql-cost.js`: what the drain's SQL costs each server, alone. The store's own
// verbs, claim (then fetch) and complete, take tasks from pending to completed in batches, one
// after the other, with no service process in between (Redis carries the messages, on the
// bench's keys): the server's CPU per task is then what the SQL costs it. Each variant changes one thing a deployment can change without touching the code
// (a session variable, the table's row format, the batch size) and is measured REPEATS
// times, in turns with the others; the table shows the medians. The server's CPU is counted
// during the cycle and until InnoDB has purged what the cycle left (MySQL purges as it goes,
// MariaDB mostly afterwards), from /proc: other clients of a shared server add to it.
// Prints a Markdown table per server and the plans of the claim's statements.
import type { TaskStore } from '@tasks/common';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { historyListLength, resetDatabase, seedPending, waitForPurge } from './database.js';
import { CLAIM_SELECT, explain } from './plans.js';
import { cpuSeconds } from './processes.js';
import { progress } from './progress.js';
import { deleteKeys } from './redis-keys.js';
import { number } from './report.js';
import { type ServerCounters, serverCounters, snapshotServer } from './server-counters.js';
import { announceMissing, closeServers, type DatabaseServer, resolveServers } from './servers.js';
import { type BenchSettings, readSettings } from './settings.js';
import { openStore } from './task-store.js';

const REPEATS = Number(process.env.SQL_COST_REPEATS ?? 3);
const TASKS = Number(process.env.SQL_COST_TASKS ?? 20_000);
const WARM_UP = 5_000;
/** Only the variants whose name contains this. */
const ONLY = process.env.SQL_COST_ONLY ?? '';
const TASK = { message: 'bench', time: 0 };

interface Variant {
  name: string;
  /** Set globally for the variant (the services' sessions start from it), and set back after. */
  global?: { set: string; reset: string };
  /** Run once on the table after the migrations. */
  table?: string[];
  batch?: number;
  /** Only where the binary log is on. */
  needsBinlog?: boolean;
}

const VARIANTS: Variant[] = [
  { name: 'as the services run' },
  {
    name: 'binlog_row_image=MINIMAL',
    global: { set: "SET GLOBAL binlog_row_image = 'MINIMAL'", reset: "SET GLOBAL binlog_row_image = 'FULL'" },
    needsBinlog: true,
  },
  {
    name: 'binlog_row_image=NOBLOB',
    global: { set: "SET GLOBAL binlog_row_image = 'NOBLOB'", reset: "SET GLOBAL binlog_row_image = 'FULL'" },
    needsBinlog: true,
  },
  {
    name: 'READ COMMITTED',
    global: {
      set: 'SET GLOBAL TRANSACTION ISOLATION LEVEL READ COMMITTED',
      reset: 'SET GLOBAL TRANSACTION ISOLATION LEVEL REPEATABLE READ',
    },
  },
  { name: 'ROW_FORMAT=DYNAMIC', table: ['ALTER TABLE tasks ROW_FORMAT = DYNAMIC'] },
  { name: 'batches of 5,000', batch: 5_000 },
];

/** How long a fetched batch stays leased: far longer than a batch takes to complete. */
const LEASE_MS = 60_000;

interface Measure {
  variant: string;
  /** Server CPU during the cycle, then until InnoDB has purged what it left. */
  cpuMicrosPerTask: number;
  cpuWithPurgeMicrosPerTask: number;
  purgeSeconds: number;
  wallMicrosPerTask: number;
  counters: ServerCounters;
}

/** Claims and completes every pending task, a batch at a time, as the scheduler and an executor would. */
async function cycle(store: TaskStore, batch: number): Promise<number> {
  let done = 0;
  for (;;) {
    const { dispatched, busy } = await store.claim(batch);
    if (busy) continue;
    if (dispatched.length === 0) return done;
    for (let left = dispatched.length; left > 0; ) {
      const { leased } = await store.fetch(left, LEASE_MS);
      if (leased.length === 0) throw new Error(`${left} dispatched messages are not on the ready list`);
      await store.complete(
        leased.flatMap(({ token, message }) =>
          message ? [{ id: message.id, run: message.run, tries: message.tries, token }] : [],
        ),
      );
      left -= leased.length;
      done += leased.length;
    }
  }
}

async function measure(
  settings: BenchSettings,
  redis: Redis,
  server: DatabaseServer,
  variant: Variant,
): Promise<Measure> {
  const logger = pino({ level: 'warn' });
  await resetDatabase(server.url, logger);
  await deleteKeys(redis, settings.keyPrefix);
  for (const sql of variant.table ?? []) await server.pool.query(sql);
  if (variant.global) await server.pool.query(variant.global.set);
  const { store, close } = openStore(settings, server.url, logger);
  try {
    const batch = variant.batch ?? 1_000;
    const baseline = await historyListLength(server.pool);
    await seedPending(store, server.pool, WARM_UP, TASK);
    await cycle(store, batch);
    await waitForPurge(server.pool, baseline, 30_000);
    await seedPending(store, server.pool, TASKS, TASK);
    const before = await snapshotServer(server);
    const cpu = cpuSeconds(server.pid) ?? Number.NaN;
    const started = performance.now();
    const done = await cycle(store, batch);
    const wall = performance.now() - started;
    const cpuAfter = cpuSeconds(server.pid) ?? Number.NaN;
    const after = await snapshotServer(server);
    // The purge of the old row versions and index entries the cycle left: MySQL does most of
    // it during the cycle, MariaDB mostly after it. Counted until the history list is back.
    const purging = performance.now();
    await waitForPurge(server.pool, baseline, 30_000);
    const purgeSeconds = (performance.now() - purging) / 1000;
    const cpuPurged = cpuSeconds(server.pid) ?? Number.NaN;
    if (done !== TASKS) throw new Error(`${variant.name}: ${done} of ${TASKS} tasks went through`);
    return {
      variant: variant.name,
      cpuMicrosPerTask: ((cpuAfter - cpu) * 1e6) / TASKS,
      cpuWithPurgeMicrosPerTask: ((cpuPurged - cpu) * 1e6) / TASKS,
      purgeSeconds,
      wallMicrosPerTask: (wall * 1e3) / TASKS,
      counters: serverCounters(before, after, TASKS),
    };
  } finally {
    if (variant.global) await server.pool.query(variant.global.reset);
    await close();
    await deleteKeys(redis, settings.keyPrefix);
  }
}

async function plans(settings: BenchSettings, server: DatabaseServer): Promise<string[]> {
  const logger = pino({ level: 'warn' });
  await resetDatabase(server.url, logger);
  const { store, close } = openStore(settings, server.url, logger);
  const { firstId } = await seedPending(store, server.pool, 5_000, TASK).finally(close);
  // The first batch claimed, as the completion finds it.
  await server.pool.query(
    `UPDATE tasks SET status = 'processing', run = 1, dispatched_at = NOW(3) WHERE id BETWEEN ? AND ?`,
    [firstId, firstId + 999],
  );
  await server.pool.query('ANALYZE TABLE tasks');
  const range = `(id BETWEEN ${firstId + 1000} AND ${firstId + 1999})`;
  const lines: string[] = [];
  for (const [name, statement] of [
    ['claim, read', CLAIM_SELECT],
    [
      'claim, mark',
      {
        sql: `UPDATE tasks SET status = 'processing', run = run + 1, dispatched_at = NOW(3) WHERE ${range} AND status = 'pending'`,
      },
    ],
    [
      'completion',
      {
        sql: `UPDATE tasks SET status = 'completed', attempts = GREATEST(attempts, 1), finished_at = NOW(3)
        WHERE (id BETWEEN ${firstId} AND ${firstId + 999}) AND status = 'processing' AND run = 1`,
      },
    ],
  ] as const) {
    for (const plan of await explain(server, statement)) lines.push(`${name}: ${plan}`);
  }
  return lines;
}

function fsyncsPerCommit(c: ServerCounters): string {
  const commits = c.status.Com_commit ?? 0;
  const redo = c.status.Innodb_os_log_fsyncs;
  const binlog = c.files.find((f) => f.file === 'sql/binlog')?.syncs;
  const parts = [`${commits} commits`];
  if (redo !== undefined) parts.push(`${redo} redo fsyncs`);
  if (binlog !== undefined) parts.push(`${binlog} binlog syncs`);
  return parts.join(', ');
}

async function main(): Promise<void> {
  const settings = readSettings();
  const logger = pino({ level: 'warn' });
  const { servers, missing } = await resolveServers(settings, logger);
  announceMissing(missing);
  const redis = new Redis(settings.redisUrl);
  try {
    for (const server of servers) {
      const variants = VARIANTS.filter(
        (v) => (!v.needsBinlog || server.variables.log_bin === 'ON') && (ONLY === '' || v.name.includes(ONLY)),
      );
      const results = new Map<string, Measure[]>(variants.map((v) => [v.name, []]));
      for (let i = 0; i < REPEATS; i++) {
        for (const variant of variants) {
          const m = await measure(settings, redis, server, variant);
          results.get(variant.name)?.push(m);
          progress(
            `${server.label} ${variant.name}: ${m.cpuMicrosPerTask.toFixed(1)} µs CPU (${m.cpuWithPurgeMicrosPerTask.toFixed(1)} ` +
              `with the purge, ${m.purgeSeconds.toFixed(1)} s after), ${m.wallMicrosPerTask.toFixed(1)} µs wall per task; ` +
              fsyncsPerCommit(m.counters),
          );
        }
      }
      const header =
        '| variant | server CPU µs/task, with the purge | during the cycle | wall µs/task | binlog B/task | redo B/task | ' +
        `over ${TASKS.toLocaleString('en-US')} tasks |`;
      const lines = [header, '|---|---|---|---|---|---|---|'];
      const median = (values: number[]) =>
        [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
      for (const variant of variants) {
        const list = results.get(variant.name) ?? [];
        const first = list[0];
        if (!first) continue;
        const binlog = first.counters.files.find((f) => f.file === 'sql/binlog')?.bytesPerTask;
        const redo = (first.counters.status.Innodb_os_log_written ?? Number.NaN) / TASKS;
        lines.push(
          `| ${variant.name} | ${number(median(list.map((m) => m.cpuWithPurgeMicrosPerTask)))} | ` +
            `${number(median(list.map((m) => m.cpuMicrosPerTask)))} | ${number(median(list.map((m) => m.wallMicrosPerTask)))} | ` +
            `${binlog === undefined ? '—' : number(binlog)} | ${number(redo)} | ${fsyncsPerCommit(first.counters)} |`,
        );
      }
      const statements = (results.get(variants[0]?.name ?? '') ?? [])[0]?.counters.statements ?? [];
      process.stdout.write(`\n### ${server.label}\n\n${lines.join('\n')}\n`);
      if (statements.length > 0) {
        process.stdout.write(`\nServer time per statement (${variants[0]?.name}, first repeat):\n\n`);
        for (const s of statements.slice(0, 8)) {
          process.stdout.write(`- ${number(s.microsPerTask)} µs/task, ${s.calls} calls: ${s.statement}\n`);
        }
      }
      process.stdout.write(`\nPlans:\n\n${(await plans(settings, server)).map((l) => `- ${l}`).join('\n')}\n`);
      await resetDatabase(server.url, logger);
    }
  } finally {
    await closeServers(servers);
    redis.disconnect();
  }
}

main().catch((err: unknown) => {
  progress(`sql-cost failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
