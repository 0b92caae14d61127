import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { EVENTS } from '@tasks/common';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { metricValue } from '../support/metrics.js';
import { until } from '../support/wait.js';
import { FaultEnv } from './support/fault-env.js';
import type { ServiceName } from './support/service-process.js';

/**
 * The operator's side of the real services: each process's /healthz, /readyz and /metrics,
 * readiness following a MySQL outage, and the `tasks` CLI (its built bin) redriving dead
 * letters that the normal path then completes.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

let f: FaultEnv;
beforeEach(async () => {
  f = await FaultEnv.create();
});
afterEach(async () => {
  await f.cleanup();
});

/** A port nothing listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function startWithHealth(name: ServiceName, env: Record<string, string> = {}) {
  const port = await freePort();
  const service = await f.start(name, { HOST: '127.0.0.1', HEALTH_PORT: String(port), ...env });
  await service.waitForLog((l) => l.event === EVENTS.opsListening);
  return { service, base: `http://127.0.0.1:${port}` };
}

async function tasksCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['packages/cli/dist/main.js', ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...f.env, LOG_LEVEL: 'warn' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

it('every service answers /healthz, /readyz and /metrics on its HEALTH_PORT; readiness follows MySQL', async () => {
  const api = await f.start('task-insert');
  const apiPort = Number((await api.waitForLog((l) => l.event === EVENTS.started)).port);
  const others = await Promise.all([
    startWithHealth('scheduler'),
    startWithHealth('executor'),
    startWithHealth('dlq-processor'),
  ]);
  const bases = [`http://127.0.0.1:${apiPort}`, ...others.map((o) => o.base)];

  for (const base of bases) {
    expect((await fetch(`${base}/healthz`)).status, base).toBe(200);
    expect((await fetch(`${base}/readyz`)).status, base).toBe(200);
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text, base).toContain('process_resident_memory_bytes');
    expect(text, base).toContain('queue_depth{queue="ready"');
    expect(text, base).toContain('tasks_completed_total');
  }

  await f.mysqlProxy.cut();
  for (const base of bases) {
    const res = await fetch(`${base}/readyz`);
    expect(res.status, base).toBe(503);
    expect(await res.json()).toMatchObject({ ready: false, checks: { mysql: { ok: false }, redis: { ok: true } } });
    expect((await fetch(`${base}/healthz`)).status, base).toBe(200);
  }
  await f.mysqlProxy.restore();
  for (const base of bases) {
    await until(async () => (await fetch(`${base}/readyz`)).status === 200, 15_000, 100);
  }
});

it('a second executor on the same HEALTH_PORT runs on without it', async () => {
  const first = await startWithHealth('executor');
  const port = new URL(first.base).port;
  const second = await f.start('executor', { HOST: '127.0.0.1', HEALTH_PORT: port });
  await second.waitForLog((l) => l.event === EVENTS.opsPortTaken);
  expect(second.running).toBe(true);
  await f.insertTasks(5, 0);
  await f.start('scheduler');
  await f.start('dlq-processor');
  expect(await f.settled(30_000)).toBe(true);
});

it('dead letters are redriven with the tasks CLI and completed by the normal path, counted in /metrics', async () => {
  const scheduler = await startWithHealth('scheduler');
  const dlq = await startWithHealth('dlq-processor');
  const failing = await startWithHealth('executor', { FAILURE_RATE: '1' });
  await f.insertTasks(4, 0);
  await until(async () => (await f.t.store.stats()).tasks.failed === 4, 30_000, 100);

  const listed = await tasksCli('dlq', 'list', '--json');
  expect(listed.code).toBe(0);
  const entries = JSON.parse(listed.stdout).entries as { id: number; status: string; tries: number }[];
  expect(entries).toHaveLength(4);
  expect(entries.every((e) => e.status === 'failed' && e.tries === 3)).toBe(true);

  const dead = await (await fetch(`${failing.base}/metrics`)).text();
  expect(metricValue(dead, 'tasks_dead_lettered_total')).toBe(4);
  expect(metricValue(dead, 'tasks_retried_total')).toBe(8);
  // The DLQ processor counts its batch once the batch is written, a moment after the tasks read failed.
  const failedMetric = async () => metricValue(await (await fetch(`${dlq.base}/metrics`)).text(), 'tasks_failed_total');
  await until(async () => (await failedMetric()) === 4, 5_000, 50);
  expect(await failedMetric()).toBe(4);
  expect(metricValue(await (await fetch(`${scheduler.base}/metrics`)).text(), 'tasks_claimed_total')).toBe(4);

  // Fix the cause (an executor that succeeds), then redrive.
  await failing.service.stop();
  const healthy = await startWithHealth('executor', { FAILURE_RATE: '0' });
  const one = await tasksCli('dlq', 'retry', String(entries[0]!.id));
  expect(one).toMatchObject({ code: 0 });
  expect(one.stdout).toContain(`task ${entries[0]!.id}: pending again`);
  await until(async () => (await f.t.store.stats()).tasks.completed === 1, 30_000, 100);

  const all = await tasksCli('dlq', 'retry', '--all');
  expect(all.code).toBe(0);
  expect(all.stdout).toContain('3 failed tasks pending again; 3 dead-letter entries removed');
  await until(async () => (await f.t.store.stats()).tasks.completed === 4, 30_000, 100);
  expect(await f.t.redis.llen(f.t.keys.deadLetters)).toBe(0);
  // The executor counts a completion once its batch is committed and its messages acknowledged,
  // a moment after the task reads completed.
  const completedMetric = async () =>
    metricValue(await (await fetch(`${healthy.base}/metrics`)).text(), 'tasks_completed_total');
  await until(async () => (await completedMetric()) === 4, 5_000, 50);
  expect(await completedMetric()).toBe(4);

  const stats = JSON.parse((await tasksCli('stats', '--json')).stdout);
  expect(stats.tasks).toEqual({ pending: 0, processing: 0, completed: 4, failed: 0, cancelled: 0, delayed: 0 });

  const refused = await tasksCli('dlq', 'retry', String(entries[0]!.id));
  expect(refused.code).toBe(1);
  expect(refused.stdout).toContain('is completed, not failed');
  const usage = await tasksCli('dlq', 'nonsense');
  expect(usage.code).toBe(2);
  expect(usage.stderr).toContain('Usage: pnpm tasks');
});
