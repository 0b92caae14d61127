import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
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

it('the API started on a port already taken exits non-zero within seconds', async () => {
  const { port } = blocker.address() as { port: number };
  const started = performance.now();
  const child = spawn(process.execPath, ['services/task-insert/dist/main.js'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...t.env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  clearTimeout(timer);
  expect({ code, signal }).toEqual({ code: 1, signal: null });
  expect(performance.now() - started).toBeLessThan(10_000);
});
