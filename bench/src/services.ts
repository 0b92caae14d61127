import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { progress } from './progress.js';
import type { BenchSettings } from './settings.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCH_DIR = fileURLToPath(new URL('../', import.meta.url));

export type ServiceName = 'task-insert' | 'scheduler' | 'consumer' | 'dlq-processor';

/** The environment of every service the bench starts: its own database and key prefix, warnings only. */
export function serviceEnv(settings: BenchSettings, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // The run's own settings, which a variable from the environment overrides (readSettings
    // leaves out the ones the bench must own, set below).
    ...extra,
    ...settings.serviceOverrides,
    MYSQL_URL: settings.mysqlUrl,
    REDIS_URL: settings.redisUrl,
    KEY_PREFIX: settings.keyPrefix,
    LOG_LEVEL: 'warn',
  };
}

/** Reads a `/proc/<pid>/status` field in kB, as MB; null once the process is gone. */
function procStatusMb(pid: number | undefined, field: 'VmHWM' | 'VmRSS'): number | null {
  if (pid === undefined) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time a process has used, in seconds (user + system, or system alone); null once it is gone. */
export function cpuSeconds(pid: number | undefined, which: 'total' | 'system' = 'total'): number | null {
  if (pid === undefined) return null;
  try {
    // The fields after the command name (which may hold spaces) start at the state, field 3.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const system = Number(fields[12]);
    return (which === 'system' ? system : Number(fields[11]) + system) / CLOCK_TICKS;
  } catch {
    return null;
  }
}

const CLOCK_TICKS = 100;

/**
 * Pids of the local servers (mariadbd or mysqld; the redis-server on `redisPort`, whose
 * process title names its address), to account their CPU.
 */
export function serverPids(redisPort = 6379): Record<string, number> {
  const found: Record<string, number> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
      if (comm === 'mariadbd' || comm === 'mysqld') found.mysql = Number(entry);
      if (comm === 'redis-server') {
        const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (title.includes(`:${redisPort}`)) found.redis = Number(entry);
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * A service running as a child process, as it runs in production (`node <entry>`), with its
 * output kept (the last lines) to show should it fail.
 */
export class ServiceProcess {
  private readonly child: ChildProcess;
  private readonly tail: string[] = [];
  private exitedEarly = false;
  private stopping = false;
  /** Lines the service logged (it runs at LOG_LEVEL=warn, so each is a warning or worse). */
  logLines = 0;
  /** How often each message was logged. */
  private readonly messages = new Map<string, number>();

  private constructor(
    readonly label: string,
    entry: string,
    env: Record<string, string>,
  ) {
    // cwd is the bench directory, which has no .env: only `env` configures the service.
    // BENCH_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/profiles", to profile the services.
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    this.child = spawn(process.execPath, [...nodeArgs, entry], {
      cwd: BENCH_DIR,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (chunk: string) => {
        for (const line of chunk.split('\n')) {
          if (line.trim() === '') continue;
          this.logLines++;
          const message = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 120);
          this.messages.set(message, (this.messages.get(message) ?? 0) + 1);
          this.tail.push(line);
          if (this.tail.length > 20) this.tail.shift();
        }
      });
    }
    this.child.on('exit', (code, signal) => {
      if (this.stopping) return;
      this.exitedEarly = true;
      progress(`${label} exited unexpectedly (${signal ?? `code ${code}`}); its last lines:\n${this.output()}`);
    });
  }

  /** Starts `node services/<name>/dist/main.js`. */
  static service(name: ServiceName, env: Record<string, string>, label: string = name): ServiceProcess {
    return new ServiceProcess(label, `${ROOT}services/${name}/dist/main.js`, env);
  }

  /** Starts one of the bench's own entrypoints (bench/dist/<file>). */
  static benchEntry(file: string, env: Record<string, string>, label: string): ServiceProcess {
    return new ServiceProcess(label, `${BENCH_DIR}dist/${file}`, env);
  }

  /** Peak resident memory so far (VmHWM), in MB. */
  peakRssMb(): number | null {
    return procStatusMb(this.child.pid, 'VmHWM');
  }

  cpuSeconds(): number | null {
    return cpuSeconds(this.child.pid);
  }

  /** What it logged, counted by message: `175× task dead-lettered; 2× ...`. */
  logSummary(): string {
    return [...this.messages].map(([message, n]) => `${n}× ${message}`).join('; ');
  }

  output(): string {
    return this.tail.map((l) => `    ${l}`).join('\n');
  }

  assertRunning(): void {
    if (this.exitedEarly) throw new Error(`${this.label} is not running:\n${this.output()}`);
  }

  /** SIGTERM (a graceful stop), then SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.stopping = true;
    const exited = once(this.child, 'exit');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      progress(`${this.label} did not stop within ${timeoutMs} ms; killing it`);
      this.child.kill('SIGKILL');
    }, timeoutMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Stops every process, in parallel. */
export async function stopAll(processes: ServiceProcess[]): Promise<void> {
  await Promise.all(processes.map((p) => p.stop()));
}
