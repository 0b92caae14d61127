import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EVENTS } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { insertTask } from '../support/runs.js';
import { createTestEnv, type TestEnv } from '../support/test-env.js';
import { until } from '../support/wait.js';

/**
 * Ctrl-C in a terminal: SIGINT to the whole foreground process group (pnpm, what it runs,
 * and the node processes). A clean stop exits 0 all along the chain, so pnpm reports no
 * failure.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let t: TestEnv;
let child: ChildProcess | null = null;
let output = '';
/** The services a test saw started: killed after it, should one have outlived their parent. */
let services: number[] = [];
beforeEach(async () => {
  t = await createTestEnv();
  output = '';
  services = [];
});
afterEach(async () => {
  for (const pid of services.filter(alive)) process.kill(pid, 'SIGKILL');
  if (child && child.exitCode === null && child.signalCode === null) {
    // The services run in process groups of their own: kill the whole tree, not just the group.
    const tree = descendants(child.pid ?? 0);
    process.kill(-(child.pid ?? 0), 'SIGKILL');
    for (const pid of tree) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await once(child, 'exit');
  }
  child = null;
  await t.cleanup();
});

/** Every process below `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {}
  return children.flatMap((c) => [c, ...descendants(c)]);
}

/** Whether `pid` still runs: a process that exited and waits to be reaped (a zombie) does not. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** `pnpm <script>` as a terminal starts it: the leader of its own process group. */
function pnpm(script: string, env: Record<string, string>): ChildProcess {
  return inTerminal('pnpm', [script], env);
}

/** `command` as a terminal starts it: the leader of its own process group. */
function inTerminal(command: string, args: string[], env: Record<string, string>): ChildProcess {
  const started = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    // FAILURE_RATE 0: the inserted task must complete (at 0.2 it ends failed once in 125 runs).
    env: {
      ...process.env,
      ...t.env,
      HOST: '127.0.0.1',
      SHUTDOWN_TIMEOUT_MS: '1000',
      LOG_LEVEL: 'warn',
      FAILURE_RATE: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  started.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child = started;
  return started;
}

/** Ctrl-C: SIGINT to the process group; resolves with how the group's leader (pnpm) ended. */
async function ctrlC(leader: ChildProcess) {
  const exited = once(leader, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  process.kill(-(leader.pid ?? 0), 'SIGINT');
  const timer = setTimeout(() => process.kill(-(leader.pid ?? 0), 'SIGKILL'), 20_000);
  const [code, signal] = await exited;
  clearTimeout(timer);
  return { code, signal };
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

it('pnpm start: Ctrl-C with a task running stops everything and exits 0', async () => {
  const port = await freePort();
  const leader = pnpm('start', { PORT: String(port) });
  // The whole pipeline runs: a task inserted through the API completes.
  await until(() => answers(`http://127.0.0.1:${port}/readyz`), 60_000);
  const quick = await fetch(`http://127.0.0.1:${port}/tasks/`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message: 'quick', time: 0 }),
  });
  const { id } = (await quick.json()) as { id: number };
  await until(async () => (await t.store.getTask(id))?.status === 'completed', 20_000);
  // One more, still running when Ctrl-C comes: the executor hands it back.
  const slow = await insertTask(t, { message: 'slow', time: 60 });
  await t.store.announceInserted();
  await until(async () => (await t.store.getTask(slow))?.status === 'processing', 20_000);

  expect(await ctrlC(leader), output).toEqual({ code: 0, signal: null });
});

it('pnpm executor: Ctrl-C exits 0', async () => {
  const health = await freePort();
  const leader = pnpm('executor', { HEALTH_PORT: String(health) });
  await until(() => answers(`http://127.0.0.1:${health}/readyz`), 60_000);
  expect(await ctrlC(leader), output).toEqual({ code: 0, signal: null });
});

/** The `event` of each JSON log line written so far, with the service that wrote it. */
function events(): { name: string; event: string }[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return JSON.parse(line) as { name: string; event: string };
      } catch {
        return { name: '', event: '' };
      }
    })
    .filter((line) => line.event);
}

/**
 * `pnpm start`'s processes (`node scripts/start-all.mjs`, built beforehand by the test run) with
 * Redis down: REDIS_URL names a port nothing listens on. Resolves once every service has come as
 * far as it can (all but the scheduler start; the scheduler waits for Redis to subscribe), with
 * the services' pids.
 */
async function startAllWithoutRedis(shutdownTimeoutMs: number) {
  const leader = inTerminal(process.execPath, ['scripts/start-all.mjs'], {
    PORT: String(await freePort()),
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    SHUTDOWN_TIMEOUT_MS: String(shutdownTimeoutMs),
    LOG_LEVEL: 'info',
  });
  const started = () =>
    new Set(
      events()
        .filter((e) => e.event === EVENTS.started)
        .map((e) => e.name),
    );
  await until(async () => ['task-insert', 'dlq-processor', 'executor'].every((name) => started().has(name)), 60_000);
  services = descendants(leader.pid ?? 0);
  expect(services).toHaveLength(4);
  // The scheduler prepares the database with the others, then waits on Redis.
  await new Promise((resolve) => setTimeout(resolve, 500));
  return { leader, services };
}

/** Waits until none of `pids` runs; resolves with how long that took (at most `timeoutMs`, then the survivors). */
async function allGone(pids: number[], timeoutMs: number): Promise<{ ms: number; survivors: number[] }> {
  const started = performance.now();
  while (pids.some(alive) && performance.now() - started < timeoutMs) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { ms: performance.now() - started, survivors: pids.filter(alive) };
}

/** What a stop may take beyond SHUTDOWN_TIMEOUT_MS: closing, and exiting. */
const STOP_MARGIN_MS = 2_500;

it('pnpm start with Redis down: Ctrl-C stops every service within the shutdown timeout and exits 0', async () => {
  const shutdownTimeoutMs = 2_000;
  const { leader, services } = await startAllWithoutRedis(shutdownTimeoutMs);
  const signalled = performance.now();
  const ended = await ctrlC(leader);
  const ms = performance.now() - signalled;
  expect(ended, output.slice(-3_000)).toEqual({ code: 0, signal: null });
  expect(ms).toBeLessThan(shutdownTimeoutMs + STOP_MARGIN_MS);
  expect(services.filter(alive)).toEqual([]);
});

/**
 * `pnpm start` killed rather than stopped (SIGKILL of it, or SIGTERM or SIGHUP: a closed
 * terminal): no service outlives it. Redis is down, so nothing stops at once by luck.
 */
it.each(['SIGKILL', 'SIGTERM', 'SIGHUP'] as const)(
  'pnpm start with Redis down, sent %s: every service is gone within the shutdown timeout',
  async (signal) => {
    const shutdownTimeoutMs = 2_000;
    const { leader, services } = await startAllWithoutRedis(shutdownTimeoutMs);
    process.kill(leader.pid ?? 0, signal);
    const { ms, survivors } = await allGone(services, shutdownTimeoutMs + STOP_MARGIN_MS + 5_000);
    expect(survivors, output.slice(-3_000)).toEqual([]);
    expect(ms).toBeLessThan(shutdownTimeoutMs + STOP_MARGIN_MS);
    await until(async () => leader.exitCode !== null || leader.signalCode !== null, 5_000);
  },
);
