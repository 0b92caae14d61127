import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { getTask, insertTask } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
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
beforeEach(async () => {
  t = await createTestEnv();
  output = '';
});
afterEach(async () => {
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
  const started = spawn('pnpm', [script], {
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
  await until(async () => (await getTask(t.ctx.pool, id))?.status === 'completed', 20_000);
  // One more, still running when Ctrl-C comes: the executor hands it back.
  const slow = await insertTask(t.ctx.pool, { message: 'slow', time: 60 });
  await t.ctx.queue.notifyInserted();
  await until(async () => (await getTask(t.ctx.pool, slow))?.status === 'processing', 20_000);

  expect(await ctrlC(leader), output).toEqual({ code: 0, signal: null });
});

it('pnpm executor: Ctrl-C exits 0', async () => {
  const health = await freePort();
  const leader = pnpm('executor', { HEALTH_PORT: String(health) });
  await until(() => answers(`http://127.0.0.1:${health}/readyz`), 60_000);
  expect(await ctrlC(leader), output).toEqual({ code: 0, signal: null });
});
