import type { BullmqFigures } from './bullmq-ceiling.js';
import type { DrainFigures } from './drain.js';
import type { GraphileFigures } from './graphile-ceiling.js';
import { number, table } from './report.js';

/**
 * The drains beside the two peers: each drain's rate as a ratio of BullMQ's and of
 * graphile-worker's (measured in the same run), and the CPU time each process spent per task
 * during it, from /proc/<pid>/stat (utime + stime). A machine three times slower shows rates
 * three times lower, and CPU per task about the same: the CPU columns compare across machines,
 * the ratios within a run.
 */

/** CPU µs per task of each kind of process; null where the drain has none. */
export interface CpuColumns {
  /** The executor processes (their sum), or the peer's worker (the bench process it runs in). */
  worker: number;
  schedulers: number | null;
  dlqProcessor: number | null;
  api: number | null;
  /** The database server: mysqld / mariadbd, or every PostgreSQL process. */
  database: number | null;
  /** PostgreSQL's backends of the measured database alone. */
  databaseBackends: number | null;
  redis: number | null;
}

export interface PeerRow {
  drain: string;
  server: string;
  perSecond: number;
  unit: string;
  /** perSecond / BullMQ's, perSecond / graphile-worker's; null when not a drain or no ceiling. */
  versusBullmq: number | null;
  versusGraphile: number | null;
  cpu: CpuColumns;
  /** The sum of the columns (PostgreSQL counted as all its processes). */
  totalCpu: number;
}

export interface Ceilings {
  bullmq: BullmqFigures | null;
  graphile: GraphileFigures | null;
}

function total(cpu: CpuColumns): number {
  return [cpu.worker, cpu.schedulers, cpu.dlqProcessor, cpu.api, cpu.database, cpu.redis].reduce<number>(
    (sum, v) => sum + (v ?? 0),
    0,
  );
}

/** The sum of the entries whose name starts with `prefix` (`executor#1`, `executor#2`, …); null when none. */
function sumOf(cpu: Record<string, number>, prefix: string): number | null {
  const values = Object.entries(cpu)
    .filter(([name]) => name.startsWith(prefix) && !name.endsWith('(system)'))
    .map(([, us]) => us);
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0);
}

function ratio(value: number, ceiling: number | undefined): number | null {
  return ceiling !== undefined && ceiling > 0 && Number.isFinite(value) ? value / ceiling : null;
}

function row(
  drain: string,
  server: string,
  perSecond: number,
  unit: string,
  cpu: CpuColumns,
  ceilings: Ceilings | null,
): PeerRow {
  return {
    drain,
    server,
    perSecond,
    unit,
    versusBullmq: ceilings ? ratio(perSecond, ceilings.bullmq?.processPerSecond) : null,
    versusGraphile: ceilings ? ratio(perSecond, ceilings.graphile?.processPerSecond) : null,
    cpu,
    totalCpu: total(cpu),
  };
}

export function bullmqRow(figures: BullmqFigures, ceilings: Ceilings): PeerRow {
  const cpu = figures.cpuMicrosPerTask;
  return row(
    `BullMQ, 1 worker, concurrency ${figures.concurrency}`,
    'Redis',
    figures.processPerSecond,
    'jobs/s',
    {
      worker: cpu.worker ?? Number.NaN,
      schedulers: null,
      dlqProcessor: null,
      api: null,
      database: null,
      databaseBackends: null,
      redis: cpu.redis ?? Number.NaN,
    },
    ceilings,
  );
}

export function graphileRow(figures: GraphileFigures, ceilings: Ceilings): PeerRow {
  const cpu = figures.cpuMicrosPerTask;
  return row(
    `graphile-worker, 1 runner, concurrency ${figures.concurrency}, local queue ${figures.localQueueSize}`,
    figures.server,
    figures.processPerSecond,
    'jobs/s',
    {
      worker: cpu.worker ?? Number.NaN,
      schedulers: null,
      dlqProcessor: null,
      api: null,
      database: cpu.postgres ?? Number.NaN,
      databaseBackends: cpu['postgres backends'] ?? Number.NaN,
      redis: null,
    },
    ceilings,
  );
}

/**
 * A drain of ours: its processes' CPU by kind (executors and schedulers summed). `ceilings`
 * null for a run that is not a drain (the latency run offers a fixed rate).
 */
export function drainRow(
  drain: string,
  figures: Pick<DrainFigures, 'server' | 'perSecond' | 'cpuMicrosPerTask'>,
  serverKind: string,
  ceilings: Ceilings | null,
  unit = 'tasks/s',
): PeerRow {
  const cpu = figures.cpuMicrosPerTask;
  return row(
    drain,
    figures.server,
    figures.perSecond,
    unit,
    {
      worker: sumOf(cpu, 'executor') ?? Number.NaN,
      schedulers: sumOf(cpu, 'scheduler'),
      dlqProcessor: sumOf(cpu, 'dlq-processor'),
      api: sumOf(cpu, 'api'),
      database: cpu[serverKind] ?? Number.NaN,
      databaseBackends: null,
      redis: cpu.redis ?? Number.NaN,
    },
    ceilings,
  );
}

function cell(value: number | null): string {
  return value === null ? '—' : number(value);
}

export function peerTable(rows: PeerRow[]): string {
  const header = [
    'drain',
    'server',
    'rate',
    '× BullMQ',
    '× graphile-worker',
    'CPU µs/task: executors (peers: worker)',
    'schedulers',
    'DLQ processor',
    'API',
    'database server',
    'Redis',
    'total',
  ];
  return table(
    header,
    rows.map((r) => [
      r.drain,
      r.server,
      `${number(r.perSecond)} ${r.unit}`,
      r.versusBullmq === null ? '—' : `${r.versusBullmq.toFixed(2)}×`,
      r.versusGraphile === null ? '—' : `${r.versusGraphile.toFixed(2)}×`,
      cell(r.cpu.worker),
      cell(r.cpu.schedulers),
      cell(r.cpu.dlqProcessor),
      cell(r.cpu.api),
      r.cpu.databaseBackends === null
        ? cell(r.cpu.database)
        : `${cell(r.cpu.database)} (backends ${cell(r.cpu.databaseBackends)})`,
      cell(r.cpu.redis),
      number(r.totalCpu),
    ]),
  );
}
