import type { HistoryFigures, ReadFigures, TableFigures } from './history.js';
import { type HistoryRow, number } from './report.js';

/** The bound on every read's p99 with the long history in the table. */
export const READ_BOUND_MS = 20;

function readCell(read: ReadFigures | undefined): string {
  if (!read) return 'n/a';
  const errors = read.errors > 0 ? `, ${read.errors} errors` : '';
  return `p50 ${number(read.p50Ms)} / p99 ${number(read.p99Ms)} ms (${read.requests} req${errors})`;
}

function fillCell(table: TableFigures): string {
  const { fill } = table;
  return `${number(fill.insertSeconds)} s (${number(fill.rows / fill.insertSeconds)} rows/s) + ANALYZE ${number(fill.analyzeSeconds)} s + recount ${number(fill.recountSeconds)} s`;
}

/** The history table's rows for one server: each read, the drain, the fill, the counts of /stats. */
export function historyRows(figures: HistoryFigures): HistoryRow[] {
  const { server, baseline, history } = figures;
  const rows: HistoryRow[] = [];
  for (const read of history.reads) {
    const before = baseline.reads.find((r) => r.route === read.route);
    rows.push({
      figure: read.route,
      server,
      baseline: readCell(before),
      history: readCell(read),
      target: `p99 ≤ ${READ_BOUND_MS} ms`,
      pass: read.errors === 0 && read.p99Ms <= READ_BOUND_MS,
    });
  }
  const ratio = history.drain.perSecond / baseline.drain.perSecond;
  rows.push({
    figure: `Drain ${history.drain.rows.toLocaleString('en-US')} tasks, 1 executor, on top of the rows`,
    server,
    baseline: `${number(baseline.drain.perSecond)} tasks/s`,
    history: `${number(history.drain.perSecond)} tasks/s (${ratio.toFixed(2)}×)`,
    target: 'reported, all completed',
    pass: baseline.drain.consistent && history.drain.consistent,
  });
  const retention = history.retention;
  if (retention) {
    const ratio = retention.with.perSecond / retention.without.perSecond;
    rows.push({
      figure: `Drain ${retention.rows.toLocaleString('en-US')} tasks while retention deletes (RETENTION_DAYS=${retention.days}), best of 2`,
      server,
      baseline: 'n/a',
      history: `${number(retention.with.perSecond)} tasks/s against ${number(retention.without.perSecond)} without (${ratio.toFixed(2)}×); ${retention.deleted.toLocaleString('en-US')} old tasks deleted meanwhile`,
      target: '≥ 0.95× without, all completed',
      pass: ratio >= 0.95 && retention.with.consistent && retention.without.consistent && retention.deleted > 0,
    });
  }
  rows.push({
    figure: `Fill (INSERT … SELECT, ${history.fill.binlogSkipped ? 'binary log skipped, ' : ''}1M rows a statement)`,
    server,
    baseline: fillCell(baseline),
    history: fillCell(history),
    target: 'reported',
    pass: null,
  });
  rows.push({
    figure: "The claim's read (EXPLAIN)",
    server,
    baseline: baseline.claimPlan.join('; '),
    history: history.claimPlan.join('; '),
    target: 'reported',
    pass: null,
  });
  rows.push({
    figure: 'GET /stats counts the rows as filled',
    server,
    baseline: baseline.statsMatchTable ? 'yes' : 'NO',
    history: history.statsMatchTable ? 'yes' : 'NO',
    target: 'reported',
    pass: null,
  });
  return rows;
}
