import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';

/** `pnpm test`'s set-up and tear-down, seen from outside: vitest runs of a fixture, as child processes. */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VITEST = join(ROOT, 'node_modules/vitest/vitest.mjs');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'test-setup-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs the fixtures with `env` (and no TEST_* variable but those given). */
function runFixtures(env: Record<string, string>): Promise<{ code: number; output: string }> {
  const { TEST_MYSQL_URL: _m, TEST_REDIS_URL: _r, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [VITEST, 'run', '--config', 'test/support/fixtures/vitest.config.ts'],
      { cwd: ROOT, env: { ...inherited, ...env, FIXTURE_OUT: join(dir, 'out.json') }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? Number((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, output: `${stdout}${stderr}` });
      },
    );
  });
}

async function databaseExists(url: string, name: string): Promise<boolean> {
  const connection = await mysql.createConnection({ uri: url });
  try {
    const [rows] = (await connection.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = ?', [
      name,
    ])) as unknown as [unknown[]];
    return rows.length > 0;
  } finally {
    await connection.end();
  }
}

describe('a test run', () => {
  it('creates the database TEST_MYSQL_URL names when missing, and removes all it created though a test failed', async () => {
    const base = new URL(inject('mysqlUrl'));
    const missing = `test_setup_${randomBytes(4).toString('hex')}`;
    base.pathname = `/${missing}`;
    const run = await runFixtures({ TEST_MYSQL_URL: base.toString(), TEST_REDIS_URL: inject('redisUrl') });
    expect(run.code, run.output).toBe(1);
    expect(run.output).toContain('failing on purpose');

    const left = JSON.parse(await readFile(join(dir, 'out.json'), 'utf8')) as { mysqlUrl: string; keyPrefix: string };
    const server = new URL(inject('mysqlUrl'));
    server.pathname = '/';
    const database = new URL(left.mysqlUrl).pathname.slice(1);
    expect(database).not.toBe('');
    expect(await databaseExists(server.toString(), database)).toBe(false);
    expect(await databaseExists(server.toString(), missing)).toBe(false);
    const redis = new Redis(inject('redisUrl'));
    try {
      expect(await redis.keys(`${left.keyPrefix}*`)).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });

  it('without TEST_* variables or Docker, says in one line what to set or start', async () => {
    const run = await runFixtures({ DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` });
    expect(run.code).toBe(1);
    expect(run.output).not.toContain('No test files found');
    expect(
      run.output
        .split('\n')
        .filter(
          (line) => line.includes('TEST_MYSQL_URL') && line.includes('TEST_REDIS_URL') && line.includes('Docker'),
        ),
    ).toHaveLength(1);
  });
});
