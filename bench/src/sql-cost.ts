// `node bench/dist/sql-cost.js`: what the drain's SQL costs each server, alone. The product's
// own claim (claimPending) and completion (completeRuns, its Redis half left out) take tasks
// from pending to completed in batches, one after the other on one connection each, with no
// service process and no Redis in between: the server's CPU per task is then what the SQL
// costs it. Each variant changes one thing a deployment can change without touching the code
// (a session variable, the table's row format, the batch size) and is measured REPEATS
// times, in turns with the others; the table shows the medians. The server's CPU is counted
// during the cycle and until InnoDB has purged what the cycle left (MySQL purges as it goes,
// MariaDB mostly afterwards), from /proc: other clients of a shared server add to it.
// Prints a Markdown table per server and the plans of the claim's statements.
import { claimPending, completeRuns, createDatabase, type Database, type TaskQueue } from '@tasks/common/internal';
import { pino } from 'pino';
import { historyListLength, resetDatabase, seedPending, waitForPurge } from './database.js';
import { CLAIM_SELECT, explain } from './plans.js';
import { cpuSeconds } from './processes.js';
import { progress } from './progress.js';
import { number } from './report.js';
import { type ServerCounters, serverCounters, snapshotServer } from './server-counters.js';
import { announceMissing, closeServers, type DatabaseServer, resolveServers } from './servers.js';
import { readSettings } from './settings.js';

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
  // Not a setting to deploy (the claim needs the index once the table holds a history): what
  // the one index with the status in it costs, changed by every claim and completion.
  { name: 'diagnostic: without the (status, id) index', table: ['ALTER TABLE tasks DROP INDEX tasks_status_id'] },
];

/** The queue half of the transitions, left out: every acknowledgement "holds". */
const noQueue = {
  tasks: { ack: async (tokens: string[]) => tokens.length },
} as unknown as TaskQueue;

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
async function cycle(pool: Database, batch: number): Promise<number> {
  let done = 0;
  for (;;) {
    const { dispatched } = await claimPending(pool, batch);
    if (dispatched.length === 0) return done;
    await completeRuns(
      { pool, queue: noQueue },
      dispatched.map((m) => ({ id: m.id, run: m.run, tries: m.tries, token: String(m.id) })),
    );
    done += dispatched.length;
  }
}

async function measure(server: DatabaseServer, variant: Variant): Promise<Measure> {
  const logger = pino({ level: 'warn' });
  await resetDatabase(server.url, logger);
  for (const sql of variant.table ?? []) await server.pool.query(sql);
  if (variant.global) await server.pool.query(variant.global.set);
  const pool = createDatabase({ url: server.url, size: 2, connectTimeoutMs: 5_000, lockWaitTimeoutS: 5 }, logger);
  try {
    const batch = variant.batch ?? 1_000;
    const baseline = await historyListLength(server.pool);
    await seedPending(server.pool, WARM_UP, TASK);
    await cycle(pool, batch);
    await waitForPurge(server.pool, baseline, 30_000);
    await seedPending(server.pool, TASKS, TASK);
    const before = await snapshotServer(server);
    const cpu = cpuSeconds(server.pid) ?? Number.NaN;
    const started = performance.now();
    const done = await cycle(pool, batch);
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
    await pool.end();
  }
}

async function plans(server: DatabaseServer): Promise<string[]> {
  await resetDatabase(server.url, pino({ level: 'warn' }));
  const { firstId } = await seedPending(server.pool, 5_000, TASK);
  // The first batch claimed, as the completion finds it.
  await server.pool.query(
    `UPDATE tasks SET status = 'processing', run = 1, dispatched_at = NOW(3) WHERE id BETWEEN ? AND ?`,
    [firstId, firstId + 999],
  );
  await server.pool.query('ANALYZE TABLE tasks');
  const range = `(id BETWEEN ${firstId + 1000} AND ${firstId + 1999})`;
  const lines: string[] = [];
  for (const [name, sql] of [
    ['claim, read', CLAIM_SELECT],
    [
      'claim, mark',
      `UPDATE tasks SET status = 'processing', run = run + 1, dispatched_at = NOW(3) WHERE ${range} AND status = 'pending'`,
    ],
    [
      'completion',
      `UPDATE tasks SET status = 'completed', attempts = GREATEST(attempts, 1), finished_at = NOW(3)
        WHERE (id BETWEEN ${firstId} AND ${firstId + 999}) AND status = 'processing' AND run = 1`,
    ],
  ] as const) {
    for (const plan of await explain(server, sql)) lines.push(`${name}: ${plan}`);
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
  try {
    for (const server of servers) {
      const variants = VARIANTS.filter(
        (v) => (!v.needsBinlog || server.variables.log_bin === 'ON') && (ONLY === '' || v.name.includes(ONLY)),
      );
      const results = new Map<string, Measure[]>(variants.map((v) => [v.name, []]));
      for (let i = 0; i < REPEATS; i++) {
        for (const variant of variants) {
          const m = await measure(server, variant);
          results.get(variant.name)?.push(m);
          progress(
            `${server.label} ${variant.name}: ${m.cpuMicrosPerTask.toFixed(1)} µs CPU (${m.cpuWithPurgeMicrosPerTask.toFixed(1)} ` +
              `with the purge, ${m.purgeSeconds.toFixed(1)} s after), ${m.wallMicrosPerTask.toFixed(1)} µs wall per task; ` +
              fsyncsPerCommit(m.counters),
          );
        }
      }
      const header =
        '| variant | server CPU µs/task, with the purge | during the cycle | wall µs/task | binlog B/task | redo B/task | over 20,000 tasks |';
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
      process.stdout.write(`\nPlans:\n\n${(await plans(server)).map((l) => `- ${l}`).join('\n')}\n`);
      await resetDatabase(server.url, logger);
    }
  } finally {
    await closeServers(servers);
  }
}

main().catch((err: unknown) => {
  progress(`sql-cost failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
