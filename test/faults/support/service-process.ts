import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { EVENTS } from '@tasks/common';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type ServiceName = 'task-insert' | 'scheduler' | 'executor' | 'dlq-processor';

export interface LogLine {
  level: number;
  msg: string;
  event?: string;
  taskId?: number;
  [key: string]: unknown;
}

/**
 * A service started the way users start it (`node services/<name>/dist/main.js`), as a child
 * process whose JSON log lines are kept for assertions.
 */
export class ServiceProcess {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly child: ChildProcess;
  private readonly waiters = new Set<() => void>();
  private stderr = '';

  private constructor(
    readonly name: ServiceName,
    env: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, [`services/${name}/dist/main.js`], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let pending = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const part of parts) {
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          this.lines.push({ level: 30, msg: part });
        }
      }
      for (const wake of this.waiters) wake();
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    void this.exited.then(() => {
      for (const wake of this.waiters) wake();
    });
  }

  /** Starts a service and waits until it is ready: its `started` line, or the line `readyWhen` picks. */
  static async start(
    name: ServiceName,
    env: Record<string, string>,
    readyWhen: (line: LogLine) => boolean = (line) => line.event === EVENTS.started,
  ): Promise<ServiceProcess> {
    const service = new ServiceProcess(name, env);
    try {
      await service.waitForLog(readyWhen, 20_000);
    } catch (err) {
      // Never ready: leave no process behind.
      service.kill('SIGKILL');
      throw err;
    }
    return service;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Ids of the tasks this process started running (one entry per run). */
  startedTaskIds(): number[] {
    return this.lines
      .filter((l) => l.event === EVENTS.taskStarted && typeof l.taskId === 'number')
      .map((l) => l.taskId!);
  }

  waitForLog(match: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (found) return finish(() => resolve(found));
        if (!this.running) {
          finish(() => reject(new Error(`${this.name} exited before the expected log line:\n${this.tail()}`)));
        }
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(new Error(`${this.name}: expected log line not seen in ${timeoutMs} ms:\n${this.tail()}`)),
          ),
        timeoutMs,
      );
      const finish = (settle: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        settle();
      };
      this.waiters.add(check);
      check();
    });
  }

  tail(n = 15): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l));
    return [...out, this.stderr.slice(-2_000)].join('\n');
  }

  /** SIGTERM, then SIGKILL if it has not exited in time. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}
