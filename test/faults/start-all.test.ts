import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  createTestEnv,
  dropTestDatabase,
  type TestEnv,
  testDatabaseName,
  testDatabaseUrl,
} from '../support/test-env.js';

/**
 * `pnpm start` (`node scripts/start-all.mjs`, built beforehand by the test run) with a bad
 * setting: the problem is reported once, in words, and nothing is left running. The services
 * would each report a bad value of their own; the configuration and the database's answer to
 * MYSQL_URL are checked once, before they start.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let t: TestEnv;
let blocker: Server | null = null;
/** A database no one has created: a service that starts creates it. */
let unused: string;
beforeEach(async () => {
  t = await createTestEnv();
  unused = testDatabaseName('unused');
});
afterEach(async () => {
  blocker?.close();
  blocker = null;
  await dropTestDatabase(unused);
  await t.cleanup();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What start-all and the services wrote to stdout and stderr, line by line. */
  lines: string[];
}

/** Runs `node scripts/start-all.mjs` with `env` until it exits (killed after 60 s). */
async function startAll(env: Record<string, string>): Promise<Run> {
  const child = spawn(process.execPath, ['scripts/start-all.mjs'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...t.env, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  // A run that hangs is killed with the services it started (they run in process groups of their own).
  const timer = setTimeout(() => {
    for (const pid of [...descendants(child.pid ?? 0), child.pid ?? 0]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }, 60_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, lines: output.split('\n').filter(Boolean) };
}

/** Every process below `pid`, from /proc (Linux). */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {}
  return children.flatMap((c) => [c, ...descendants(c)]);
}

async function databaseExists(name: string): Promise<boolean> {
  const connection = await mysql.createConnection({ uri: testDatabaseUrl('') });
  try {
    const [rows] = (await connection.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [
      name,
    ])) as unknown as [unknown[]];
    return rows.length > 0;
  } finally {
    await connection.end();
  }
}

it.each([
  { variable: 'CONCURRENCY', value: 'abc', problem: 'CONCURRENCY="abc": must be a number' },
  { variable: 'FAILURE_RATE', value: '2', problem: 'FAILURE_RATE="2": must be between 0 and 1' },
])('$variable=$value: reported once, and no service starts', async ({ variable, value, problem }) => {
  const run = await startAll({ [variable]: value, MYSQL_URL: testDatabaseUrl(unused), LOG_LEVEL: 'info' });
  const output = run.lines.join('\n');
  expect({ code: run.code, signal: run.signal }, output).toEqual({ code: 1, signal: null });
  expect(run.lines, output).toEqual(['invalid configuration:', `  ${problem}`]);
  // Nothing went past the check: preparing the database would have created it.
  expect(await databaseExists(unused)).toBe(false);
});

it('PORT taken by another process: one line says so, and the other services stop quietly', async () => {
  blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  const { port } = blocker.address() as { port: number };
  const run = await startAll({ PORT: String(port) });
  const output = run.lines.join('\n');
  expect({ code: run.code, signal: run.signal }, output).toEqual({ code: 1, signal: null });
  // Nothing else at LOG_LEVEL=warn: no raw EADDRINUSE error, no "did not stop cleanly".
  expect(run.lines, output).toEqual([
    `PORT ${port} is already in use: another process listens on 127.0.0.1:${port}; stop it or set PORT to a free port`,
  ]);
});

it('MYSQL_URL with a wrong password: one line naming MYSQL_URL, and no service starts', async () => {
  const url = new URL(testDatabaseUrl(unused));
  url.username = 'root';
  url.password = 'not-the-password';
  const run = await startAll({ MYSQL_URL: url.toString(), LOG_LEVEL: 'info' });
  const output = run.lines.join('\n');
  expect({ code: run.code, signal: run.signal }, output).toEqual({ code: 1, signal: null });
  expect(run.lines, output).toHaveLength(1);
  expect(run.lines[0]).toMatch(/^MYSQL_URL=mysql:\/\/root:\*\*\*@.*: access denied for user 'root'@/);
  expect(await databaseExists(unused)).toBe(false);
});
