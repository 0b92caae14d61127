import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * What /proc says about processes: CPU time, peak memory, children, and which process listens
 * on a TCP port (so each server's CPU is counted, with MariaDB and MySQL running side by side).
 * CPU time is utime + stime of /proc/<pid>/stat, in clock ticks (1/100 s).
 */

const CLOCK_TICKS = 100;

/** Reads a `/proc/<pid>/status` field in kB, as MB; null once the process is gone. */
export function procStatusMb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number | null {
  if (pid === undefined) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces), from the state (field 3) on. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** CPU time a process has used, in seconds (user + system, or system alone); null once it is gone. */
export function cpuSeconds(pid: number | undefined | null, which: 'total' | 'system' = 'total'): number | null {
  if (pid === undefined || pid === null) return null;
  const fields = statFields(pid);
  if (!fields) return null;
  const system = Number(fields[12]);
  return (which === 'system' ? system : Number(fields[11]) + system) / CLOCK_TICKS;
}

/** The live descendants of `pid` (children, their children, …). */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(Number(entry));
    if (fields) parents.set(Number(entry), Number(fields[1]));
  }
  const found: number[] = [];
  let frontier = [pid];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [child, parent] of parents) if (frontier.includes(parent)) next.push(child);
    found.push(...next);
    frontier = next;
  }
  return found;
}

/** Inodes of the sockets listening on `port` (IPv4 and IPv6). */
function listeningInodes(port: number): Set<string> {
  const inodes = new Set<string>();
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      // local_address is "<ip>:<port>", st 0A is LISTEN, the inode is column 10.
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '0A' && cols[9]) inodes.add(cols[9]);
    }
  }
  return inodes;
}

/** The process listening on TCP `port` on this machine; null when none is found. */
export function pidListeningOn(port: number): number | null {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return null;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${entry}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const link = readlinkSync(`/proc/${entry}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
        if (inode && inodes.has(inode)) return Number(entry);
      } catch {
        // closed meanwhile
      }
    }
  }
  return null;
}

/** The pid Redis reports for itself (`process_id` of INFO server); null when it says none. */
export function pidFromRedisInfo(info: string): number | null {
  const match = /^process_id:(\d+)/m.exec(info);
  return match ? Number(match[1]) : null;
}

/** CPU seconds of each process of named groups at one moment: group → pid → seconds. */
export type CpuSnapshot = Map<string, Map<number, number>>;

export function snapshotCpu(groups: Record<string, number[]>): CpuSnapshot {
  const snapshot: CpuSnapshot = new Map();
  for (const [name, pids] of Object.entries(groups)) {
    const each = new Map<number, number>();
    for (const pid of pids) {
      const seconds = cpuSeconds(pid);
      if (seconds !== null) each.set(pid, seconds);
    }
    snapshot.set(name, each);
  }
  return snapshot;
}

/**
 * The CPU time each group used between two snapshots, in µs per task. A process of `after`
 * that `before` does not have (a connection opened meanwhile) counts from its start; one that
 * ended meanwhile is not in `after`, and its time is lost. NaN for a group with no process.
 */
export function cpuMicrosPerTask(before: CpuSnapshot, after: CpuSnapshot, tasks: number): Record<string, number> {
  const perTask: Record<string, number> = {};
  for (const [name, pids] of after) {
    const earlier = before.get(name);
    let seconds = 0;
    for (const [pid, now] of pids) seconds += now - (earlier?.get(pid) ?? 0);
    perTask[name] = pids.size === 0 ? Number.NaN : (seconds * 1e6) / tasks;
  }
  return perTask;
}
