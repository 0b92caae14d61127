import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cpuSeconds, descendants, procStatusMb } from './processes.js';
import { progress } from './progress.js';
import type { BenchSettings } from './settings.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCH_DIR = fileURLToPath(new URL('../', import.meta.url));

export type ServiceName = 'task-insert' | 'scheduler' | 'executor' | 'dlq-processor';

/**
 * The environment of every service the bench starts: the server's database, the run's key
 * prefix, warnings only.
 */
export function serviceEnv(
  settings: BenchSettings,
  mysqlUrl: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    // The run's own settings, which a variable from the environment overrides (readSettings
    // leaves out the ones the bench must own, set below).
    ...extra,
    ...settings.serviceOverrides,
    MYSQL_URL: mysqlUrl,
    REDIS_URL: settings.redisUrl,
    KEY_PREFIX: settings.keyPrefix,
    LOG_LEVEL: 'warn',
  };
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

  /** The pids of the process and its descendants (an API's cluster workers). */
  tree(): number[] {
    const pid = this.child.pid;
    return pid === undefined ? [] : [pid, ...descendants(pid)];
  }

  /** CPU seconds of the process and its live descendants. */
  treeCpuSeconds(): number {
    return this.tree().reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);
  }

  /** The sum of the peak RSS of the process and its live descendants, in MB. */
  treePeakRssMb(): number {
    return this.tree().reduce((sum, pid) => sum + (procStatusMb(pid, 'VmHWM') ?? 0), 0);
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
