import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { redactUrl } from '@tasks/common';
import mysql from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../support/test-env.js';

/**
 * A service that cannot start closes what it opened and exits non-zero, so a supervisor
 * (compose's restart policy, systemd) sees it fail instead of a process left idling on its
 * MySQL and Redis connections.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

let t: TestEnv;
let blocker: Server;
beforeEach(async () => {
  t = await createTestEnv();
  blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
});
afterEach(async () => {
  blocker.close();
  await t.cleanup();
});

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What it wrote to stdout and stderr, line by line. */
  lines: string[];
  ms: number;
}

/** Starts `services/<name>/dist/main.js` and waits for it to exit (killed after 20 s). */
async function runToExit(name: string, env: Record<string, string>): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [`services/${name}/dist/main.js`], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...t.env, HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  return { code, signal, lines: output.split('\n').filter(Boolean), ms: performance.now() - started };
}

it('the API started on a port already taken says so in one line and exits non-zero within seconds', async () => {
  const { port } = blocker.address() as { port: number };
  const run = await runToExit('task-insert', { PORT: String(port) });
  const output = run.lines.join('\n');
  expect({ code: run.code, signal: run.signal }, output).toEqual({ code: 1, signal: null });
  expect(run.ms).toBeLessThan(10_000);
  expect(
    run.lines.filter((line) => line.includes(`PORT ${port} is already in use: `)),
    output,
  ).toHaveLength(1);
  expect(output).not.toContain('EADDRINUSE');
});

/**
 * Wrong credentials or a missing privilege are not transient: the service says so in one line
 * naming MYSQL_URL, its password hidden, and exits at once instead of retrying for ever.
 */
describe('a MYSQL_URL that MySQL refuses', () => {
  const suffix = randomBytes(4).toString('hex');
  const user = `tasks_${suffix}`;
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const wrongPassword = `wrong-${randomBytes(8).toString('hex')}`;
  /** The server's root connection (TEST_MYSQL_URL), which creates and drops the user. */
  const admin = () => mysql.createConnection({ uri: inject('mysqlUrl') });

  beforeAll(async () => {
    const connection = await admin();
    try {
      // A user that may log in and do nothing else: no privilege on any database.
      await connection.query('CREATE USER ?@? IDENTIFIED BY ?', [user, '%', password]);
    } finally {
      await connection.end();
    }
  });
  afterAll(async () => {
    const connection = await admin();
    try {
      await connection.query('DROP USER IF EXISTS ?@?', [user, '%']);
    } finally {
      await connection.end();
    }
  });

  /** The test's database on the test's server, reached as `name` with `secret`. */
  const urlAs = (name: string, secret: string) => {
    const url = new URL(t.env.MYSQL_URL!);
    url.username = name;
    url.password = secret;
    return url.toString();
  };

  const cases = [
    { refused: 'a wrong password', url: () => urlAs(user, wrongPassword), secret: wrongPassword },
    { refused: 'an unknown user', url: () => urlAs(`nobody_${suffix}`, password), secret: password },
    { refused: 'a user without privileges on the database', url: () => urlAs(user, password), secret: password },
  ];

  describe.each(['scheduler', 'task-insert'])('%s', (service) => {
    it.each(cases)('$refused: one line naming MYSQL_URL, without its password, and exit 1 at once', async (c) => {
      const url = c.url();
      const run = await runToExit(service, { MYSQL_URL: url, PORT: '0', LOG_LEVEL: 'info' });
      const output = run.lines.join('\n');
      expect({ code: run.code, signal: run.signal }, output).toEqual({ code: 1, signal: null });
      expect(run.ms, output).toBeLessThan(5_000);
      const naming = run.lines.filter((line) => line.includes('MYSQL_URL'));
      expect(naming, output).toHaveLength(1);
      expect(naming[0]).toMatch(/^MYSQL_URL=/);
      expect(naming[0]).toContain(`MYSQL_URL=${redactUrl(url)}: access denied for user '`);
      expect(naming[0]).toContain(':***@');
      expect(naming[0]).toMatch(/; check the user, password and privileges$/);
      expect(output).not.toContain(c.secret);
      // No stack trace, neither as text nor inside a JSON log line; no retry either.
      expect(output).not.toMatch(/^\s+at /m);
      expect(output).not.toContain('"stack"');
      expect(output).not.toContain('retrying');
    });
  });
});
