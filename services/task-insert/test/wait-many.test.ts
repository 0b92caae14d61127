import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { type Context, createContext, type LeasedTask } from '@tasks/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { until } from '../../../test/support/wait.js';
import { createApp } from '../src/app.js';
import { WaitRoom } from '../src/wait-room.js';

/**
 * Many requests waiting on one API process (in-process, with clients of its own, as a process
 * has), while the subscription that wakes them is dropped by Redis in the middle: every waiter
 * is answered with its task's final state, none later than the poll interval (plus the reads
 * that answer it) after its task finished, and the room is empty afterwards.
 *
 * The latencies (task finished → answer received) are printed with WAIT_LATENCIES=1.
 */

const WAITERS = 1_000;
const POLL_MS = 1_000;
/**
 * Room for what follows the poll that finds a task final: reading its status (with all the
 * others), reading the task and sending the answer, for hundreds of tasks at once, on a machine
 * that runs other test files at the same time.
 */
const ANSWER_SLACK_MS = 1_000;

let t: TestEnv;
let apiContext: Context;
let waits: WaitRoom;
let server: Server;
let url: string;
/** The name of the API's Redis connections: its subscription is `<name>:finished`. */
const apiName = `wait-api-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  t = await createTestEnv({ WAIT_POLL_MS: String(POLL_MS) });
  apiContext = createContext(t.config, apiName, { logger: t.ctx.logger });
  waits = new WaitRoom(apiContext.store, t.ctx.logger, { pollMs: POLL_MS, maxWaiters: t.config.MAX_WAITERS });
  server = createApp({ config: t.config, logger: t.ctx.logger, store: apiContext.store, waits }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  waits?.close();
  server?.closeAllConnections();
  server?.close();
  await apiContext?.close();
  await t?.cleanup();
});

/** The Redis client id of the API's subscription, or null while it is not connected. */
async function subscriptionId(): Promise<string | null> {
  const list = (await t.redis.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string;
  const line = list.split('\n').find((l) => l.includes(` name=${apiName}:finished `));
  return line ? (/(?:^|\s)id=(\d+)/.exec(line)?.[1] ?? null) : null;
}

/**
 * The clients, in a thread of their own so that their work does not queue behind the API's in
 * this thread: each sends GET /tasks/:id?wait=30 and notes when its answer came (Date.now(),
 * the clock both threads share).
 */
const CLIENTS = `
const { parentPort, workerData } = require('node:worker_threads');
const { url, ids } = workerData;
Promise.all(
  ids.map(async (id) => {
    const res = await fetch(url + '/tasks/' + id + '?wait=30');
    const at = Date.now();
    const body = await res.json();
    return { id, status: res.status, body, at };
  }),
).then((answers) => parentPort.postMessage(answers), (err) => parentPort.postMessage({ error: String(err) }));
`;

interface Answer {
  id: number;
  status: number;
  body: { id: number; status: string };
  at: number;
}

function waitInThread(ids: number[]): Promise<Answer[]> {
  const worker = new Worker(CLIENTS, { eval: true, workerData: { url, ids } });
  return new Promise((resolve, reject) => {
    worker.once('message', (answers: Answer[] | { error: string }) => {
      void worker.terminate();
      if ('error' in answers) reject(new Error(answers.error));
      else resolve(answers);
    });
    worker.once('error', reject);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

describe(`${WAITERS} requests waiting on one API process`, () => {
  it('are all answered with their final state within the poll interval, through a dropped subscription', async () => {
    const outcomes = await t.ctx.store.insert(
      Array.from({ length: WAITERS }, (_, i) => ({ data: { message: `waited ${i}`, time: 0 }, idempotencyKey: null })),
    );
    const ids = outcomes.map((o) => ('id' in o ? o.id : Number.NaN));
    expect(ids.every(Number.isSafeInteger)).toBe(true);

    const answers = waitInThread(ids);
    await until(async () => waits.size === WAITERS, 20_000);
    // Each request read its task once before it waits, on the API's pool, which serves in
    // turn: once a read sent after them is answered, every one of them waits.
    expect((await fetch(`${url}/tasks/${ids[0]}`)).status).toBe(200);
    await until(async () => (await subscriptionId()) !== null, 5_000);

    await t.ctx.store.claim(WAITERS);
    const leased: LeasedTask[] = [];
    while (leased.length < WAITERS) leased.push(...(await t.ctx.store.fetch(WAITERS, 120_000)).leased);
    const finishedAt = new Map<number, number>();
    /** Completes a group of the leased tasks; each counts as finished from before its completion was sent. */
    const completeGroup = async (group: LeasedTask[]) => {
      const at = Date.now();
      for (const l of group) finishedAt.set(l.message!.id, at);
      await t.ctx.store.complete(
        group.map((l) => ({ id: l.message!.id, run: l.message!.run, tries: l.message!.tries, token: l.token })),
      );
    };
    const groups = (from: number, to: number, size: number) => {
      const out: LeasedTask[][] = [];
      for (let i = from; i < to; i += size) out.push(leased.slice(i, Math.min(i + size, to)));
      return out;
    };

    // A first part finishes while the subscription is up: woken over Redis.
    for (const group of groups(0, 400, 50)) await completeGroup(group);

    // The subscription is dropped; the next part finishes before it is back: its announcements
    // are lost, and only the poll finds those tasks final.
    const dropped = await subscriptionId();
    await t.redis.call('CLIENT', 'KILL', 'ID', dropped as string);
    await completeGroup(leased.slice(400, 700));

    // The client subscribes again by itself; the rest finish after that.
    await until(async () => {
      const id = await subscriptionId();
      return id !== null && id !== dropped;
    }, 10_000);
    for (const group of groups(700, WAITERS, 50)) await completeGroup(group);

    const results = await answers;
    const answeredAt = new Map(results.map((r) => [r.id, r.at]));
    for (const r of results) {
      expect(r.status, `task ${r.id}`).toBe(200);
      expect(r.body, `task ${r.id}`).toMatchObject({ id: r.id, status: 'completed' });
    }
    const latencies = ids.map((id) => (answeredAt.get(id) as number) - (finishedAt.get(id) as number));
    const sorted = [...latencies].sort((a, b) => a - b);
    const summary = {
      p50: Math.round(percentile(sorted, 50)),
      p99: Math.round(percentile(sorted, 99)),
      max: Math.round(sorted.at(-1) as number),
      lost: latencies
        .slice(400, 700)
        .map(Math.round)
        .sort((a, b) => a - b),
      woken: [...latencies.slice(0, 400), ...latencies.slice(700)].sort((a, b) => a - b),
      ended: waits.ended,
    };
    if (process.env.WAIT_LATENCIES) {
      const lost = summary.lost;
      const woken = summary.woken;
      console.log(
        JSON.stringify({
          all: { p50: summary.p50, p99: summary.p99, max: summary.max },
          woken: { p50: Math.round(percentile(woken, 50)), p99: Math.round(percentile(woken, 99)) },
          lost: { p50: percentile(lost, 50), p99: percentile(lost, 99), max: lost.at(-1) },
          ended: summary.ended,
        }),
      );
    }
    expect(summary.max).toBeLessThanOrEqual(POLL_MS + ANSWER_SLACK_MS);
    // The lost announcements were made up for by the poll, the others woke their waiters.
    expect(summary.ended.polled).toBeGreaterThanOrEqual(300);
    expect(summary.ended.notified).toBeGreaterThanOrEqual(1);
    expect(summary.ended.notified + summary.ended.polled).toBe(WAITERS);
    // Nothing is held once every waiter is answered.
    expect(waits.size).toBe(0);
    expect(waits.waitedTasks).toBe(0);
  });
});
