import { type BullmqFigures, measureBullmq } from './bullmq-ceiling.js';
import { type DrainContext, type DrainFigures, runDrain } from './drain.js';
import { type GraphileFigures, measureGraphile, type PostgresServer } from './graphile-ceiling.js';
import { BENCH_HANDLERS } from './handlers.js';
import { bullmqRow, type Ceilings, drainRow, graphileRow, type PeerRow } from './peer-table.js';
import { type Row, row } from './report.js';
import { type DatabaseServer, targetFor } from './servers.js';
import { runs } from './settings.js';

/**
 * The drain figures: the ceilings (BullMQ on Redis, graphile-worker on PostgreSQL) and each
 * server's drain taking turns REPEATS times (the best of each kept), the many-schedulers drain
 * beside the drain with one, the drain with failures and the scaling runs, on every server;
 * and every drain beside both ceilings, with the CPU time of each process per task.
 */

/** Jobs of each ceiling's measured drain. */
const CEILING_JOBS = 20_000;
const BULLMQ_JOBS_C1 = 5_000;
export const REPEATS = 3;

/** The drain's ceiling ratio to BullMQ c=16 on each kind of server. */
export const DRAIN_TARGET = { mariadb: 3, mysql: 2.5 };
/** The drain's ratio to graphile-worker's on each kind of server (MariaDB's: reported). */
export const GRAPHILE_TARGET = { mariadb: null, mysql: 1.5 };
/** The mixed drain's tasks: five priorities (-2…2) and twenty groups, interleaved. */
const MIXED = { priorities: 5, groups: 20 };
/** Delayed tasks not yet due in the table during the delayed-backlog drain. */
const DELAYED_BACKLOG = 1_000_000;
/** The many-schedulers drain against the drain with one scheduler. */
export const SCHEDULERS_TARGET = 0.9;
export const EXECUTOR_RSS_BOUND_MB = 150;

export interface DrainSection {
  rows: Row[];
  /** Every drain beside the ceilings, with CPU per task (see peer-table.ts). */
  peers: PeerRow[];
  /** The best of each ceiling, for the drains measured elsewhere (history, latency). */
  ceilings: Ceilings;
  details: {
    bullmq: { c16: BullmqFigures[]; c1?: BullmqFigures };
    graphile: GraphileFigures[];
    drains: DrainFigures[];
  };
}

function best<T>(list: T[], by: (item: T) => number): T | null {
  return list.reduce<T | null>((b, item) => (b === null || by(item) > by(b) ? item : b), null);
}

export async function drainSection(
  ctx: DrainContext,
  servers: DatabaseServer[],
  postgres: PostgresServer | null,
): Promise<DrainSection> {
  const { settings } = ctx;
  const rows: Row[] = [];
  const drains: DrainFigures[] = [];
  const bullmqPrefix = `${settings.keyPrefix}bullmq`;
  const measureDrain = runs(settings, 'drain');
  const measureSchedulers = runs(settings, 'schedulers');
  const schedulers = settings.schedulers;

  // BullMQ and every server's drains take turns, REPEATS times each, and the best of each is
  // kept: a burst of load from elsewhere on the machine then hurts all of them or is outrun by
  // a repeat.
  const bullmqRuns: BullmqFigures[] = [];
  const graphileRuns: GraphileFigures[] = [];
  const measureGraphileCeiling = postgres !== null && (runs(settings, 'graphile') || measureDrain || measureSchedulers);
  const singles = new Map<DatabaseServer, DrainFigures[]>(servers.map((s) => [s, []]));
  const many = new Map<DatabaseServer, DrainFigures[]>(servers.map((s) => [s, []]));
  const turns = measureDrain || measureSchedulers ? REPEATS : 1;
  const measureBullmqCeiling = runs(settings, 'bullmq') || measureDrain || measureSchedulers;
  if (measureBullmqCeiling || measureGraphileCeiling) {
    for (let i = 0; i < turns; i++) {
      if (measureBullmqCeiling) {
        bullmqRuns.push(await measureBullmq(settings.redisUrl, bullmqPrefix, CEILING_JOBS, 16, settings.warmUpRows));
      }
      if (postgres && measureGraphileCeiling) {
        graphileRuns.push(await measureGraphile(postgres, CEILING_JOBS, settings.warmUpRows));
      }
      for (const server of servers) {
        if (measureDrain || measureSchedulers) {
          singles.get(server)?.push(await runDrain(ctx, server, { executors: 1, failureRate: 0 }));
        }
        if (measureSchedulers) {
          many.get(server)?.push(await runDrain(ctx, server, { executors: 1, failureRate: 0, schedulers }));
        }
      }
    }
  }
  for (const list of [...singles.values(), ...many.values()]) drains.push(...list);
  const c16 = best(bullmqRuns, (r) => r.processPerSecond);
  const graphile = best(graphileRuns, (r) => r.processPerSecond);
  const ceilings: Ceilings = { bullmq: c16, graphile };
  const peers: PeerRow[] = [];
  if (c16) peers.push(bullmqRow(c16, ceilings));
  if (graphile) peers.push(graphileRow(graphile, ceilings));
  const details: DrainSection['details'] = { bullmq: { c16: bullmqRuns }, graphile: graphileRuns, drains };
  if (c16) {
    const repeats = bullmqRuns.length > 1 ? `, best of ${bullmqRuns.length}` : '';
    rows.push(
      row(
        `BullMQ no-op jobs, 1 worker, concurrency 16${repeats}`,
        'Redis',
        c16.processPerSecond,
        'jobs/s',
        null,
        '—',
        null,
      ),
    );
  }
  if (graphile) {
    const repeats = graphileRuns.length > 1 ? `, best of ${graphileRuns.length}` : '';
    rows.push(
      row(
        `graphile-worker no-op jobs, 1 runner, concurrency ${graphile.concurrency}, local queue ${graphile.localQueueSize}, batched completions${repeats}`,
        graphile.server,
        graphile.processPerSecond,
        'jobs/s',
        null,
        '—',
        null,
      ),
    );
    if (runs(settings, 'graphile')) {
      rows.push(
        row('graphile-worker addJobs (one call)', graphile.server, graphile.addPerSecond, 'jobs/s', null, '—', null),
      );
    }
  }
  if (runs(settings, 'bullmq')) {
    const c1 = await measureBullmq(settings.redisUrl, bullmqPrefix, BULLMQ_JOBS_C1, 1, settings.warmUpRows);
    details.bullmq.c1 = c1;
    rows.push(
      row('BullMQ no-op jobs, 1 worker, concurrency 1', 'Redis', c1.processPerSecond, 'jobs/s', null, '—', null),
    );
    rows.push(row('BullMQ addBulk', 'Redis', c16?.addPerSecond ?? Number.NaN, 'jobs/s', null, '—', null));
  }
  const againstBullmq = { ceiling: c16?.processPerSecond ?? Number.NaN, label: 'BullMQ c=16' };
  const rowsText = settings.drainRows.toLocaleString('en-US');

  const bestSingle = new Map<DatabaseServer, DrainFigures>();
  for (const server of servers) {
    const list = singles.get(server) ?? [];
    const single = best(list, (d) => d.perSecond);
    if (!single) continue;
    bestSingle.set(server, single);
    if (!measureDrain) continue;
    peers.push(drainRow(`Drain, 1 executor, best of ${list.length}`, single, server.kind, ceilings));
    const consistent = list.every((d) => d.consistent);
    const target = targetFor(server, DRAIN_TARGET);
    rows.push(
      row(
        `Drain ${rowsText} tasks, 1 executor, FAILURE_RATE=0, best of ${list.length}`,
        server.label,
        single.perSecond,
        'tasks/s',
        againstBullmq,
        `≥ ${target}× BullMQ c=16, all completed`,
        (_v, ratio) => consistent && ratio !== null && ratio >= target,
      ),
    );
  }

  for (const server of servers) {
    const single = bestSingle.get(server);
    if (!measureDrain || !single || !graphile) continue;
    const target = targetFor(server, GRAPHILE_TARGET);
    const consistent = (singles.get(server) ?? []).every((d) => d.consistent);
    rows.push(
      row(
        `Drain ${rowsText} tasks, 1 executor, against graphile-worker (best of each)`,
        server.label,
        single.perSecond,
        'tasks/s',
        { ceiling: graphile.processPerSecond, label: 'graphile-worker' },
        target === null ? 'reported, all completed' : `≥ ${target}× graphile-worker, all completed`,
        (_v, ratio) => consistent && (target === null || (ratio !== null && ratio >= target)),
      ),
    );
  }

  if (runs(settings, 'scheduling')) {
    for (const server of servers) {
      const plain = bestSingle.get(server);
      const against = plain ? { ceiling: plain.perSecond, label: 'plain drain' } : null;
      const mixed = await runDrain(ctx, server, {
        executors: 1,
        failureRate: 0,
        fields: (i) => ({ priority: (i % MIXED.priorities) - 2, group: `tenant-${i % MIXED.groups}` }),
        fieldsLabel: `${MIXED.priorities} priorities, ${MIXED.groups} groups`,
      });
      drains.push(mixed);
      peers.push(
        drainRow(`Drain, ${MIXED.priorities} priorities, ${MIXED.groups} groups`, mixed, server.kind, ceilings),
      );
      rows.push(
        row(
          `Drain ${rowsText} tasks of ${MIXED.priorities} priorities and ${MIXED.groups} groups, 1 executor`,
          server.label,
          mixed.perSecond,
          'tasks/s',
          against,
          'reported, all completed',
          () => mixed.consistent,
        ),
      );
      const delayed = await runDrain(ctx, server, { executors: 1, failureRate: 0, delayedRows: DELAYED_BACKLOG });
      drains.push(delayed);
      peers.push(drainRow('Drain beside 1,000,000 delayed tasks not due', delayed, server.kind, ceilings));
      rows.push(
        row(
          `Drain ${rowsText} tasks beside ${DELAYED_BACKLOG.toLocaleString('en-US')} delayed tasks not due, 1 executor`,
          server.label,
          delayed.perSecond,
          'tasks/s',
          against,
          'reported, all completed, none of the delayed run',
          () => delayed.consistent,
        ),
      );
    }
  }

  if (runs(settings, 'types')) {
    for (const server of servers) {
      const plain = bestSingle.get(server);
      const typed = await runDrain(ctx, server, {
        executors: 1,
        failureRate: 0,
        fields: () => ({ type: 'echo' }),
        fieldsLabel: 'a handler type',
        serviceSettings: { HANDLERS: BENCH_HANDLERS },
      });
      drains.push(typed);
      peers.push(drainRow('Drain of a handler type (its result stored)', typed, server.kind, ceilings));
      rows.push(
        row(
          `Drain ${rowsText} tasks of a handler type (returns a result, stored), 1 executor`,
          server.label,
          typed.perSecond,
          'tasks/s',
          plain ? { ceiling: plain.perSecond, label: 'plain drain' } : null,
          'reported, all completed',
          () => typed.consistent,
        ),
      );
    }
  }

  for (const server of servers) {
    const list = many.get(server) ?? [];
    const fastest = best(list, (d) => d.perSecond);
    const single = bestSingle.get(server);
    if (!fastest || !single) continue;
    const consistent = list.every((d) => d.consistent);
    peers.push(
      drainRow(`Drain, ${schedulers} schedulers, 1 executor, best of ${list.length}`, fastest, server.kind, ceilings),
    );
    rows.push(
      row(
        `Drain ${rowsText} tasks, ${schedulers} schedulers, 1 executor, best of ${list.length}`,
        server.label,
        fastest.perSecond,
        'tasks/s',
        { ceiling: single.perSecond, label: '1 scheduler' },
        `≥ ${SCHEDULERS_TARGET}×, all completed, run = 1`,
        (_v, ratio) => consistent && ratio !== null && ratio >= SCHEDULERS_TARGET,
      ),
    );
    const claims = list.reduce((sum, d) => sum + d.claimsCounted, 0);
    const tasks = list.reduce((sum, d) => sum + d.rows, 0);
    const everyTaskOnce = list.every((d) => d.claimsCounted === d.rows && d.runNotOne === 0);
    rows.push(
      row(
        `Claims per task, ${schedulers} schedulers (their tasks_claimed_total; tasks with run ≠ 1 fail it)`,
        server.label,
        claims / tasks,
        '',
        null,
        '= 1.00, no task claimed twice',
        () => everyTaskOnce,
      ),
    );
  }

  if (measureSchedulers) {
    for (const server of servers) {
      const audited = await runDrain(ctx, server, { executors: 1, failureRate: 0, schedulers, auditClaims: true });
      drains.push(audited);
      const audit = audited.claimsAudit;
      rows.push(
        row(
          `pending→processing transitions per task, ${schedulers} schedulers (an AFTER UPDATE trigger; untimed drain)`,
          server.label,
          audit ? audit.transitions / audited.rows : Number.NaN,
          '',
          null,
          '= 1.00, none twice, all completed',
          () =>
            audit !== null &&
            audit.transitions === audited.rows &&
            audit.tasksClaimed === audited.rows &&
            audit.claimedTwice === 0 &&
            audited.consistent,
        ),
      );
    }
  }

  if (runs(settings, 'failures')) {
    for (const server of servers) {
      const failing = await runDrain(ctx, server, { executors: 1, failureRate: 0.2 });
      drains.push(failing);
      peers.push(drainRow('Drain, 1 executor, FAILURE_RATE=0.2', failing, server.kind, ceilings));
      rows.push(
        row(
          'Drain, 1 executor, FAILURE_RATE=0.2 (immediate retries, dead letters)',
          server.label,
          failing.perSecond,
          'tasks/s',
          c16 ? againstBullmq : null,
          'reported, all final',
          () => failing.consistent,
        ),
      );
    }
  }
  if (runs(settings, 'scaling')) {
    for (const server of servers) {
      for (const executors of settings.scaling) {
        if (executors === 1 && bestSingle.has(server)) continue;
        const figures = await runDrain(ctx, server, { executors, failureRate: 0 });
        drains.push(figures);
        peers.push(drainRow(`Drain, ${executors} executor${executors > 1 ? 's' : ''}`, figures, server.kind, ceilings));
        if (executors === 1) bestSingle.set(server, figures);
        const single = bestSingle.get(server);
        rows.push(
          row(
            `Drain, ${executors} executor${executors > 1 ? 's' : ''}, FAILURE_RATE=0`,
            server.label,
            figures.perSecond,
            'tasks/s',
            single && executors > 1 ? { ceiling: single.perSecond, label: '1 executor' } : null,
            'reported, all completed',
            () => figures.consistent,
          ),
        );
      }
    }
  }
  if (drains.length > 0) {
    const peak = Math.max(...drains.flatMap((d) => d.executorPeakRssMb));
    rows.push(
      row(
        'Executor peak RSS during the drains',
        servers.map((s) => s.label).join(', '),
        peak,
        'MB',
        { ceiling: EXECUTOR_RSS_BOUND_MB, label: 'bound' },
        `≤ ${EXECUTOR_RSS_BOUND_MB} MB`,
        (v) => v <= EXECUTOR_RSS_BOUND_MB,
      ),
    );
  }
  return { rows, peers, ceilings, details };
}
