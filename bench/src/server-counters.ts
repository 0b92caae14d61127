import type { RowDataPacket } from 'mysql2/promise';
import type { DatabaseServer } from './servers.js';

/**
 * Where a database server spent a drain: its status counters (commits, fsyncs of the redo log
 * and the binary log, rows), and where performance_schema is on (MySQL's default, not
 * MariaDB's), the time of each statement of the bench database (by digest) and of each kind of
 * file I/O. Taken as the difference of two snapshots around the measured drain, so nothing on
 * the server is reset or reconfigured. The status counters and file I/O are the whole
 * server's: other clients of a shared server add to them.
 */

const STATUS = [
  'Com_commit',
  'Com_select',
  'Com_update',
  'Com_insert',
  'Questions',
  'Handler_commit',
  'Handler_prepare',
  'Innodb_os_log_fsyncs',
  'Innodb_data_fsyncs',
  'Innodb_log_writes',
  'Innodb_os_log_written',
  'Innodb_rows_read',
  'Innodb_rows_updated',
  'Innodb_rows_inserted',
  'Innodb_pages_written',
  'Innodb_buffer_pool_pages_flushed',
  'Binlog_commits',
  'Binlog_group_commits',
  'Binlog_bytes_written',
  'Binlog_cache_use',
  'Binlog_cache_disk_use',
];

interface Digest {
  text: string;
  calls: number;
  /** Picoseconds, as performance_schema counts them. */
  timer: number;
  lockTimer: number;
  cpuTimer: number;
  rowsExamined: number;
  rowsAffected: number;
  rowsSent: number;
}

interface FileIo {
  writes: number;
  bytesWritten: number;
  /** COUNT_MISC: fsyncs, opens, closes (mostly fsyncs for the redo log and the binary log). */
  syncs: number;
  syncTimer: number;
  writeTimer: number;
}

export interface ServerSnapshot {
  status: Map<string, number>;
  digests: Map<string, Digest>;
  files: Map<string, FileIo>;
}

export interface StatementCost {
  statement: string;
  calls: number;
  /** Server time of these statements, in µs per task of the drain. */
  microsPerTask: number;
  /** Of which CPU (performance_schema's SUM_CPU_TIME, when the server counts it). */
  cpuMicrosPerTask: number;
  lockMicrosPerTask: number;
  rowsExaminedPerCall: number;
  rowsAffectedPerCall: number;
  rowsSentPerCall: number;
}

export interface FileCost {
  file: string;
  writesPerTask: number;
  bytesPerTask: number;
  syncs: number;
  syncMicrosPerTask: number;
  writeMicrosPerTask: number;
}

export interface ServerCounters {
  tasks: number;
  /** Status counter deltas over the drain (totals, not per task). */
  status: Record<string, number>;
  /** Statements of the bench database, most time first; empty without performance_schema. */
  statements: StatementCost[];
  files: FileCost[];
}

export async function snapshotServer(server: DatabaseServer): Promise<ServerSnapshot> {
  const database = decodeURIComponent(new URL(server.url).pathname.replace(/^\//, ''));
  const [statusRows] = await server.pool.query<RowDataPacket[]>('SHOW GLOBAL STATUS WHERE Variable_name IN (?)', [
    STATUS,
  ]);
  const status = new Map(statusRows.map((r) => [String(r.Variable_name), Number(r.Value)]));
  const digests = new Map<string, Digest>();
  const files = new Map<string, FileIo>();
  if (server.performanceSchema) {
    const cpu = server.kind === 'mysql' ? 'SUM_CPU_TIME' : '0';
    const [rows] = await server.pool.query<RowDataPacket[]>(
      `SELECT DIGEST AS digest, DIGEST_TEXT AS text, COUNT_STAR AS calls, SUM_TIMER_WAIT AS timer,
              SUM_LOCK_TIME AS lock_timer, ${cpu} AS cpu_timer, SUM_ROWS_EXAMINED AS examined,
              SUM_ROWS_AFFECTED AS affected, SUM_ROWS_SENT AS sent
         FROM performance_schema.events_statements_summary_by_digest
        WHERE SCHEMA_NAME = ? AND DIGEST_TEXT NOT LIKE '%performance_schema%' AND DIGEST_TEXT NOT LIKE 'SHOW %'`,
      [database],
    );
    for (const r of rows) {
      digests.set(String(r.digest), {
        text: String(r.text ?? ''),
        calls: Number(r.calls),
        timer: Number(r.timer),
        lockTimer: Number(r.lock_timer),
        cpuTimer: Number(r.cpu_timer),
        rowsExamined: Number(r.examined),
        rowsAffected: Number(r.affected),
        rowsSent: Number(r.sent),
      });
    }
    const [fileRows] = await server.pool.query<RowDataPacket[]>(
      `SELECT EVENT_NAME AS name, COUNT_WRITE AS writes, SUM_NUMBER_OF_BYTES_WRITE AS bytes,
              COUNT_MISC AS syncs, SUM_TIMER_MISC AS sync_timer, SUM_TIMER_WRITE AS write_timer
         FROM performance_schema.file_summary_by_event_name WHERE COUNT_STAR > 0`,
    );
    for (const r of fileRows) {
      files.set(String(r.name).replace('wait/io/file/', ''), {
        writes: Number(r.writes),
        bytesWritten: Number(r.bytes),
        syncs: Number(r.syncs),
        syncTimer: Number(r.sync_timer),
        writeTimer: Number(r.write_timer),
      });
    }
  }
  return { status, digests, files };
}

const PICO_PER_MICRO = 1e6;

/** Shortens a digest's text to what names the statement. */
function statementName(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/`/g, '').slice(0, 140);
}

/** What happened between two snapshots, per task of a drain of `tasks` tasks. */
export function serverCounters(before: ServerSnapshot, after: ServerSnapshot, tasks: number): ServerCounters {
  const status: Record<string, number> = {};
  for (const [name, value] of after.status) status[name] = value - (before.status.get(name) ?? 0);
  const statements: StatementCost[] = [];
  for (const [digest, a] of after.digests) {
    const b = before.digests.get(digest);
    const calls = a.calls - (b?.calls ?? 0);
    if (calls <= 0) continue;
    statements.push({
      statement: statementName(a.text),
      calls,
      microsPerTask: (a.timer - (b?.timer ?? 0)) / PICO_PER_MICRO / tasks,
      cpuMicrosPerTask: (a.cpuTimer - (b?.cpuTimer ?? 0)) / PICO_PER_MICRO / tasks,
      lockMicrosPerTask: (a.lockTimer - (b?.lockTimer ?? 0)) / PICO_PER_MICRO / tasks,
      rowsExaminedPerCall: (a.rowsExamined - (b?.rowsExamined ?? 0)) / calls,
      rowsAffectedPerCall: (a.rowsAffected - (b?.rowsAffected ?? 0)) / calls,
      rowsSentPerCall: (a.rowsSent - (b?.rowsSent ?? 0)) / calls,
    });
  }
  statements.sort((x, y) => y.microsPerTask - x.microsPerTask);
  const files: FileCost[] = [];
  for (const [file, a] of after.files) {
    const b = before.files.get(file);
    const writes = a.writes - (b?.writes ?? 0);
    const syncs = a.syncs - (b?.syncs ?? 0);
    if (writes <= 0 && syncs <= 0) continue;
    files.push({
      file,
      writesPerTask: writes / tasks,
      bytesPerTask: (a.bytesWritten - (b?.bytesWritten ?? 0)) / tasks,
      syncs,
      syncMicrosPerTask: (a.syncTimer - (b?.syncTimer ?? 0)) / PICO_PER_MICRO / tasks,
      writeMicrosPerTask: (a.writeTimer - (b?.writeTimer ?? 0)) / PICO_PER_MICRO / tasks,
    });
  }
  files.sort((x, y) => y.syncMicrosPerTask + y.writeMicrosPerTask - (x.syncMicrosPerTask + x.writeMicrosPerTask));
  return { tasks, status, statements, files };
}

/** Progress lines: the statements, the file I/O and the commits and fsyncs of a drain. */
export function describeCounters(counters: ServerCounters): string[] {
  const lines: string[] = [];
  const s = counters.status;
  const fsyncs = ['Innodb_os_log_fsyncs', 'Innodb_data_fsyncs', 'Com_commit', 'Binlog_commits', 'Binlog_group_commits']
    .filter((name) => s[name] !== undefined)
    .map((name) => `${name} ${s[name]}`);
  lines.push(
    `server status over ${counters.tasks} tasks: ${fsyncs.join(', ')}; redo ${((s.Innodb_os_log_written ?? 0) / counters.tasks).toFixed(0)} B/task`,
  );
  if (counters.statements.length > 0) {
    const total = counters.statements.reduce((sum, st) => sum + st.microsPerTask, 0);
    lines.push(`statements, ${total.toFixed(1)} µs of server time per task:`);
    for (const st of counters.statements.slice(0, 8)) {
      lines.push(
        `  ${st.microsPerTask.toFixed(1).padStart(6)} µs/task${st.cpuMicrosPerTask > 0 ? ` (cpu ${st.cpuMicrosPerTask.toFixed(1)})` : ''} ${String(st.calls).padStart(6)}× ` +
          `${st.rowsExaminedPerCall.toFixed(0)} examined, ${st.rowsAffectedPerCall.toFixed(0)} affected per call: ${st.statement}`,
      );
    }
  }
  for (const f of counters.files.slice(0, 4)) {
    lines.push(
      `  file ${f.file}: ${f.bytesPerTask.toFixed(0)} B/task written, ${f.syncs} syncs ` +
        `(${f.syncMicrosPerTask.toFixed(1)} µs/task syncing, ${f.writeMicrosPerTask.toFixed(1)} writing)`,
    );
  }
  return lines;
}
