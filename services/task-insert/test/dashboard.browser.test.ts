import { once } from 'node:events';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Heartbeat } from '@tasks/common';
import type { RowDataPacket } from 'mysql2/promise';
import { type BrowserContext, chromium, type Page, type Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimedTask,
  completeLeased,
  deadLetteredTask,
  failLeased,
  leaseAll,
  unrecordedDeadLetter,
} from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

/**
 * The dashboard in a real browser: Chromium (Debian's: `apt-get install chromium`; or the
 * one CHROMIUM_PATH names), driven by playwright-core, against the real API on a loopback port.
 * The browser runs in a time zone that is not the machine's (UTC+05:45), so local times are
 * checked as local.
 *
 * With DASHBOARD_SCREENSHOTS set to a directory, the page is also saved there as PNGs (wide
 * and narrow) to look at.
 */

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** CHROMIUM_PATH, or the first of Chromium's and Chrome's usual names on the PATH. */
function findChromium(): string {
  const named = process.env.CHROMIUM_PATH;
  if (named) {
    if (!isExecutableFile(named)) throw new Error(`CHROMIUM_PATH=${named} is not an executable file`);
    return named;
  }
  const names = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of names) {
      if (isExecutableFile(join(dir, name))) return join(dir, name);
    }
  }
  throw new Error(
    `the dashboard's browser test needs Chromium: none of ${names.join(', ')} is on the PATH; ` +
      'install it (apt-get install chromium) or set CHROMIUM_PATH to a Chromium or Chrome executable',
  );
}
const TOKEN = 'dashboard-browser-token-42';
const TIME_ZONE = 'Asia/Kathmandu';
const SCREENSHOTS = process.env.DASHBOARD_SCREENSHOTS;
/** Tasks that failed every try, the entry that names no task, and the dead letter not yet recorded. */
const FAILED_TASKS = 23;
const INVALID_RAW = '<img src=x id=injected> {not a message';
/**
 * Tasks that finished in one minute five minutes before the tests start: the y-axis goes up to
 * 100 in steps of 25. They are tasks like any other, counted by the cards too.
 */
const BUSY_MINUTE = { completed: 90, failed: 10 };
/** The error of the first try of the task that completed on its second. */
const EARLIER_ERROR = 'flaky network on the first try';

let t: TestEnv;
let server: Server;
let baseUrl: string;
let profile: string;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];
let failedIds: number[];
let inInbox: number;
/** A task that failed a try, then completed. */
let historyId: number;
/** The start of the busy minute, five minutes before the tests start. */
let busyMinute: string;
/** The writes the page sent, in order. */
const posts: string[] = [];

beforeAll(async () => {
  const executablePath = findChromium();
  t = await createTestEnv({ API_TOKEN: TOKEN });
  server = createApp(t).listen(0, '127.0.0.1');
  await once(server, 'listening');
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  profile = await mkdtemp(join(tmpdir(), 'dashboard-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timezoneId: TIME_ZONE,
    locale: 'en-US',
    viewport: { width: 1600, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  page.on('request', (request) => {
    if (request.method() === 'POST') posts.push(new URL(request.url()).pathname);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    // A 401 answer is logged by the browser as a failed resource; everything else is a problem.
    if (message.type() === 'error' && !message.text().includes('401')) problems.push(message.text());
  });

  // The busy minute's tasks first (the oldest ids), then the task with an earlier failure.
  const busy = Math.floor(Date.now() / 60_000) - 5;
  busyMinute = new Date(busy * 60_000).toISOString();
  await finishedIn(busy, BUSY_MINUTE);
  historyId = await completedAfterAFailedTry('worked on the second try');

  // Oldest failure first: the invalid entry, the one being recorded, then the failed tasks.
  // The entry of a message that was not one, pushed by hand as the executor pushes it.
  const invalid = { error: 'invalid message: not JSON', raw: INVALID_RAW, failed_at: new Date().toISOString() };
  await t.redis.lpush(t.keys.deadLetters, JSON.stringify(invalid));
  inInbox = await unrecordedDeadLetter(t, { message: 'being recorded' });
  failedIds = [];
  for (let i = 0; i < FAILED_TASKS; i++) {
    const error = i === FAILED_TASKS - 1 ? 'disk on fire' : `failure ${i}`;
    failedIds.push((await deadLetteredTask(t, { message: `broke in the browser test ${i}`, error })).id);
  }
}, 180_000);

/**
 * Tasks that finished in `minute` (minutes since the epoch), written as rows and counted as
 * the transitions count them: per status, and per minute.
 */
async function finishedIn(minute: number, counts: { completed: number; failed: number }): Promise<void> {
  const finishedAt = new Date(minute * 60_000 + 30_000);
  const rows = (['completed', 'failed'] as const).flatMap((status) =>
    Array.from({ length: counts[status] }, (_, i) => [
      JSON.stringify({ message: `busy ${status} ${i}`, time: 0 }),
      status,
      status === 'failed' ? 3 : 1,
      status === 'failed' ? 'failed in the busy minute' : null,
      finishedAt,
      finishedAt,
    ]),
  );
  await t.sql.query('INSERT INTO tasks (data, status, attempts, last_error, dispatched_at, finished_at) VALUES ?', [
    rows,
  ]);
  await t.store.recount();
  await t.sql.query('INSERT INTO tasks_finished_per_minute (minute, completed, failed) VALUES (?, ?, ?)', [
    minute,
    counts.completed,
    counts.failed,
  ]);
}

/** A task whose first try failed and whose second completed, as an executor leaves it. */
async function completedAfterAFailedTry(message: string): Promise<number> {
  const id = await claimedTask(t, { message, time: 0 });
  const mine = async () => (await leaseAll(t)).filter((l) => l.message.id === id);
  await failLeased(t, await mine(), { error: EARLIER_ERROR });
  await completeLeased(t, await mine());
  expect(await t.store.getTask(id)).toMatchObject({ status: 'completed', lastError: EARLIER_ERROR });
  return id;
}

afterAll(async () => {
  // Only what beforeAll got to build (it stops early without Chromium).
  await browser?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  await t?.cleanup();
});

async function insertThroughApi(message: string): Promise<number> {
  const res = await fetch(`${baseUrl}/tasks`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ message, time: 7 }),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: number }).id;
}

/** `iso` as the page must show it: `YYYY-MM-DD HH:MM:SS` (or `HH:MM`) in the browser's time zone. */
function local(iso: string, clockOnly = false): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: TIME_ZONE,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(iso))
      .map((p) => [p.type, p.value]),
  );
  const clock = `${parts.hour}:${parts.minute}`;
  return clockOnly ? clock : `${parts.year}-${parts.month}-${parts.day} ${clock}:${parts.second}`;
}

const failuresCount = () => page.locator('#failures-count').textContent();
const statusOf = async (id: number) => (await t.store.getTask(id))?.status;
const card = async (status: string) => Number((await page.locator(`[data-count="${status}"]`).textContent()) ?? NaN);

/** Waits for a refresh of the page that starts after this call. */
async function nextRefresh(on: Page = page): Promise<void> {
  const updated = await on.locator('#updated time').getAttribute('datetime');
  await on.locator(`#updated time:not([datetime="${updated}"])`).waitFor();
}

/**
 * The chart's finishes over its window and the cards' counts, read in one refresh: they must
 * agree while every task finished within the window.
 */
async function chartAndCards() {
  const total = page.locator('#throughput-total');
  return {
    chart: {
      completed: Number(await total.getAttribute('data-completed')),
      failed: Number(await total.getAttribute('data-failed')),
    },
    cards: { completed: await card('completed'), failed: await card('failed') },
    text: await total.textContent(),
  };
}

/** The ids of the tasks the page lists, in order. */
const listedIds = () =>
  page.locator('#recent tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-task-id'))));

/** The ids of the tasks, newest first, as MySQL has them. */
async function idsInDatabase(status?: string): Promise<number[]> {
  const [rows] = await t.sql.query<RowDataPacket[]>(
    `SELECT id FROM tasks ${status ? 'WHERE status = ?' : ''} ORDER BY id DESC`,
    status ? [status] : [],
  );
  return rows.map((r) => Number(r.id));
}

/** Holds the API's answers to `on` (the page, its script and its styles pass) until `release` is called. */
async function holdApi(on: Page): Promise<() => void> {
  let release = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  await on.route('**/*', async (route: Route) => {
    const path = new URL(route.request().url()).pathname;
    if (!['/', '/dashboard.js', '/dashboard.css'].includes(path)) await released;
    await route.continue();
  });
  return release;
}

/** Answers every read of the API on `on` (or those `only` matches) with 503, as an API whose stores are down would. */
async function failApi(on: Page, only?: (path: string) => boolean): Promise<void> {
  await on.route('**/*', async (route: Route) => {
    const path = new URL(route.request().url()).pathname;
    const isPage = ['/', '/dashboard.js', '/dashboard.css'].includes(path);
    if (isPage || (only && !only(path))) return route.continue();
    await route.fulfill({
      status: 503,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'unavailable', message: 'Redis is unavailable' }),
    });
  });
}

describe('the dashboard while the API is slow or down', () => {
  it('shows a skeleton in every section until the API answers, never a blank page', async () => {
    const slow = await browser.newPage();
    try {
      const release = await holdApi(slow);
      await slow.goto(`${baseUrl}/`);
      await slow.locator('#status-counts .skeleton').first().waitFor();
      expect(await slow.locator('#updated').textContent()).toBe('loading…');
      for (const id of ['status', 'queue', 'services', 'throughput', 'failures', 'tasks']) {
        expect(await slow.locator(`#${id}-section`).getAttribute('aria-busy'), id).toBe('true');
      }
      expect(await slow.locator('#status-counts .skeleton').count()).toBe(6);
      expect(await slow.locator('#queue-depths .skeleton').count()).toBe(5);
      expect(await slow.locator('#recent tr.skeleton-row').count()).toBeGreaterThan(0);
      expect(await slow.locator('#services tr.skeleton-row').count()).toBeGreaterThan(0);
      expect(await slow.locator('#throughput .chart-placeholder').textContent()).toContain('Loading');

      release();
      await slow.locator('#tasks-section[aria-busy="false"]').waitFor();
      await slow.locator('#status-section[aria-busy="false"]').waitFor();
      expect(await slow.locator('main .skeleton').count()).toBe(0);
      expect(await slow.locator('#throughput svg').count()).toBe(1);
      expect(await slow.locator('#api-error').isHidden()).toBe(true);
    } finally {
      await slow.close();
    }
  });

  it('says when the API does not answer, in place of the skeletons', async () => {
    const down = await browser.newPage();
    try {
      await failApi(down);
      await down.goto(`${baseUrl}/`);
      const banner = down.locator('#api-error');
      await banner.waitFor();
      expect(await banner.textContent()).toContain('The API does not answer (HTTP 503: Redis is unavailable)');
      expect(await banner.textContent()).toContain('Nothing could be loaded yet');
      expect(await down.locator('main .skeleton').count()).toBe(0);
      expect(await down.locator('[data-count="failed"]').textContent()).toBe('?');
      expect(await down.locator('#throughput').textContent()).toContain('the API did not answer');
      expect(await down.locator('#tasks-section').getAttribute('data-state')).toBe('error');
    } finally {
      await down.close();
    }
  });

  it('keeps what a section showed when its read fails later, dimmed, and says since when', async () => {
    const partly = await browser.newPage();
    try {
      await partly.goto(`${baseUrl}/`);
      await partly.locator('#services-section[data-state="ready"]').waitFor();
      await failApi(partly, (path) => path === '/services');
      await partly.locator('#services-section[data-state="stale"]').waitFor({ timeout: 15_000 });
      expect(await partly.locator('#services-section .section-error').textContent()).toMatch(
        /^Not refreshed since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d: HTTP 503: Redis is unavailable\.$/,
      );
      expect(await partly.locator('#api-error').textContent()).toContain(
        'Part of the page could not be refreshed (/services)',
      );
      expect(await partly.locator('#tasks-section').getAttribute('data-state')).toBe('ready');
      expect(await partly.locator('#tasks-section .section-error').isHidden()).toBe(true);
    } finally {
      await partly.close();
    }
  });
});

describe('the dashboard in Chromium', () => {
  let insertedId: number;
  const newest = () => failedIds.at(-1) as number;

  it('loads and shows the counts, queue depths, a task the test inserted and the newest failures', async () => {
    insertedId = await insertThroughApi('visible in the browser');

    const response = await page.goto(`${baseUrl}/`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe('Tasks dashboard');

    const recentRow = page.locator(`#recent tr[data-task-id="${insertedId}"]`);
    await recentRow.waitFor();
    expect(await recentRow.textContent()).toContain('visible in the browser');
    expect(await recentRow.locator('.status').textContent()).toBe('pending');

    expect(await page.locator('[data-count="pending"]').textContent()).toBe('1');
    expect(await page.locator('[data-count="processing"]').textContent()).toBe('1');
    expect(await card('completed')).toBe(BUSY_MINUTE.completed + 1);
    expect(await card('failed')).toBe(FAILED_TASKS + BUSY_MINUTE.failed);
    expect(await page.locator('[data-depth="dead_letters"]').textContent()).toBe(String(FAILED_TASKS + 2));
    expect(await page.locator('[data-depth="dead_letter_inbox"]').textContent()).toBe('1');

    const failedRow = page.locator(`#failures tr[data-task-id="${newest()}"]`);
    await failedRow.waitFor();
    expect(await page.locator('#failures tbody tr').first().getAttribute('data-task-id')).toBe(String(newest()));
    expect(await failedRow.locator('td.error').textContent()).toBe('disk on fire');
    expect(await failedRow.locator('td.message').textContent()).toBe(`broke in the browser test ${FAILED_TASKS - 1}`);
    expect(await failedRow.locator('.status').textContent()).toBe('failed');
    if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-wide.png'), fullPage: true });
  });

  it('names what it counts in words a user knows, not the Redis structures', async () => {
    const text = await page.locator('body').textContent();
    for (const jargon of [/DLQ/, /inflight/i, /in flight/i, /dead_letter_inbox/, /inbox/i]) {
      expect(text, String(jargon)).not.toMatch(jargon);
    }
    const labels = await page.locator('#queue-depths dt').allTextContents();
    expect(labels).toEqual([
      'waiting in the queue',
      'running',
      'waiting to retry',
      'dead letters not yet recorded',
      'dead letters kept',
    ]);
    expect(await page.locator('[data-depth="inflight"]').locator('xpath=..').locator('dt').textContent()).toBe(
      'running',
    );
  });

  it('counts the failures shown of all, newest first, and pages through the rest', async () => {
    const total = FAILED_TASKS + 2;
    expect(await failuresCount()).toBe(`1–20 of ${total}`);
    expect(await page.locator('#failures-page').textContent()).toBe('page 1 of 2');
    const firstPage = await page
      .locator('#failures tbody tr')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-task-id')));
    expect(firstPage).toEqual([...failedIds].reverse().slice(0, 20).map(String));
    expect(await page.locator('#failures-prev').isDisabled()).toBe(true);

    await page.locator('#failures-next').click();
    await page.locator('#failures-count', { hasText: `21–${total} of ${total}` }).waitFor();
    const secondPage = page.locator('#failures tbody tr');
    expect(await secondPage.count()).toBe(5);
    expect(await page.locator('#failures-next').isDisabled()).toBe(true);

    // The dead letter the DLQ processor has not recorded: its task is processing, not retryable yet.
    const recording = page.locator(`#failures tr[data-task-id="${inInbox}"]`);
    expect(await recording.locator('.status').textContent()).toBe('processing');
    expect(await recording.locator('button[data-retry]').count()).toBe(0);
    // The entry that names no task: its error and its text, as text.
    const invalid = page.locator('#failures tr[data-entry="invalid"]');
    expect(await invalid.locator('td.error').textContent()).toBe('invalid message: not JSON');
    expect(await invalid.locator('code').textContent()).toBe(INVALID_RAW);
    expect(await invalid.locator('.status').textContent()).toBe('no task');
    expect(await page.locator('#injected').count()).toBe(0);

    await page.locator('#failures-prev').click();
    await page.locator('#failures-count', { hasText: `1–20 of ${total}` }).waitFor();
  });

  it('shows every time in one format, local to the browser, with the ISO value in its title', async () => {
    expect(await page.locator('#timezone').textContent()).toBe('times are local (UTC+05:45)');
    const times = await page
      .locator('#failures time, #recent time, #updated time')
      .evaluateAll((nodes) =>
        nodes.map((n) => ({ text: n.textContent, iso: n.getAttribute('datetime'), title: n.getAttribute('title') })),
      );
    expect(times.length).toBeGreaterThanOrEqual(22);
    for (const { text, iso, title } of times) {
      expect(text).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      expect(text).toBe(local(iso as string));
      expect(new Date(title as string).toISOString()).toBe(iso);
    }
  });

  it('draws the chart across the page with a y-axis of round ticks, local HH:MM times and a legend', async () => {
    const yLabels = await page.locator('#throughput .y-label').allTextContents();
    expect(yLabels).toEqual(['0', '25', '50', '75', '100']);
    const xLabels = await page
      .locator('#throughput .x-label')
      .evaluateAll((nodes) => nodes.map((n) => ({ text: n.textContent, minute: n.getAttribute('data-minute') })));
    expect(xLabels.length).toBeGreaterThanOrEqual(5);
    for (const { text, minute } of xLabels) expect(text).toBe(local(minute as string, true));
    expect(await page.locator('#throughput g[data-minute]').count()).toBe(30);
    expect(await page.locator(`#throughput g[data-minute="${busyMinute}"] title`).textContent()).toBe(
      `${local(busyMinute, true)}: ${BUSY_MINUTE.completed} completed, ${BUSY_MINUTE.failed} failed`,
    );
    expect(await page.locator('#throughput-legend').textContent()).toMatch(/completed\s+failed/);
    const chartWidth = await page.locator('#throughput svg').evaluate((n) => n.getBoundingClientRect().width);
    expect(chartWidth).toBeGreaterThan(1400);
  });

  it('counts in the chart what the cards count, and says so', async () => {
    const { chart, cards, text } = await chartAndCards();
    expect(chart).toEqual({ completed: BUSY_MINUTE.completed + 1, failed: FAILED_TASKS + BUSY_MINUTE.failed });
    expect(chart).toEqual(cards);
    expect(text).toBe(
      `${cards.completed} of the ${cards.completed} completed and ${cards.failed} of the ${cards.failed} ` +
        'failed tasks finished in the last 30 minutes',
    );
    expect(await page.locator('#throughput-section .section-note').textContent()).toMatch(
      /by its\s+status now\. A failed task that is retried leaves the failed count/,
    );
  });

  it('fits a narrow screen: the page does not scroll sideways, the failures table does', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await expect
        .poll(async () => Number(await page.locator('#throughput svg').getAttribute('width')))
        .toBeLessThan(390);
      expect(await page.locator('html').evaluate((n) => n.scrollWidth)).toBeLessThanOrEqual(390);
      const scroller = page.locator('#failures-section .table-scroll');
      const [scrollWidth, clientWidth] = await scroller.evaluate((n) => [n.scrollWidth, n.clientWidth]);
      expect(scrollWidth).toBeGreaterThan(clientWidth);
      if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-narrow.png'), fullPage: true });
    } finally {
      await page.setViewportSize({ width: 1600, height: 1000 });
    }
  });

  it('lists the services that report themselves alive, what each runs, and drops one that stops', async () => {
    expect(await page.locator('#no-services').textContent()).toBe(
      'No service has reported in the last 15 s: none is running, or none can reach Redis.',
    );
    let running = 2;
    const executor = new Heartbeat(
      { store: t.store, logger: t.logger },
      { service: 'executor', host: 'worker-a', pid: 4101, intervalMs: 200 },
    );
    executor.describe(() => ({ concurrency: 4, running }));
    const scheduler = new Heartbeat(
      { store: t.store, logger: t.logger },
      { service: 'scheduler', host: 'worker-b', pid: 4102 },
    );
    scheduler.describe(() => ({ claims_per_poll: 1000, poll_interval_ms: 1000, sweep_interval_ms: 10_000 }));
    const stopExecutor = executor.start();
    const stopScheduler = scheduler.start();
    try {
      const executorRow = page.locator(`#services tr[data-service-id="${executor.id}"]`);
      await executorRow.waitFor({ timeout: 15_000 });
      const cells = await executorRow.locator('td').allTextContents();
      expect(cells.slice(0, 4)).toEqual(['executor', 'running 2 of 4 at once', 'worker-a', '4101']);
      expect(cells[4]).toMatch(/^(just now|\d+ s ago)$/);
      expect(cells[5]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      const schedulerRow = page.locator(`#services tr[data-service-id="${scheduler.id}"]`);
      expect(await schedulerRow.locator('td.runs').textContent()).toBe(
        'picks up to 1,000 pending tasks every 1 s; looks for lost tasks every 10 s',
      );
      expect(await page.locator('#services-count').textContent()).toBe('2 processes, 1 executor');
      expect(await page.locator('#services-note').textContent()).toBe(
        'each reports every 5 s; one silent for 15 s leaves the list',
      );
      expect(await page.locator('#no-services').isHidden()).toBe(true);

      running = 3;
      await executorRow.locator('td.runs', { hasText: 'running 3 of 4 at once' }).waitFor({ timeout: 15_000 });
      if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-services.png'), fullPage: true });

      await stopExecutor();
      await executorRow.waitFor({ state: 'detached', timeout: 15_000 });
      expect(await page.locator('#services-count').textContent()).toBe('1 process, 0 executors');
    } finally {
      await stopExecutor();
      await stopScheduler();
    }
  });

  it('pages through the tasks newest first, a page after another, and back', async () => {
    const all = await idsInDatabase();
    await page.locator('#recent-pager').waitFor();
    expect(await listedIds()).toEqual(all.slice(0, 20));
    expect(await page.locator('#recent-count').textContent()).toBe(`1–20 of ${all.length} tasks`);
    expect(await page.locator('#recent-prev').isDisabled()).toBe(true);

    await page.locator('#recent-next').click();
    await page.locator('#recent-page', { hasText: 'page 2' }).waitFor();
    await expect.poll(listedIds).toEqual(all.slice(20, 40));
    expect(await page.locator('#recent-count').textContent()).toBe(`21–40 of ${all.length} tasks`);
    // A refresh keeps the page shown.
    await nextRefresh();
    expect(await listedIds()).toEqual(all.slice(20, 40));

    await page.locator('#recent-next').click();
    await page.locator('#recent-page', { hasText: 'page 3' }).waitFor();
    await expect.poll(listedIds).toEqual(all.slice(40, 60));
    await page.locator('#recent-prev').click();
    await page.locator('#recent-page', { hasText: 'page 2' }).waitFor();
    await page.locator('#recent-prev').click();
    await page.locator('#recent-page', { hasText: 'page 1' }).waitFor();
    await expect.poll(listedIds).toEqual(all.slice(0, 20));
    expect(await page.locator('#recent-prev').isDisabled()).toBe(true);
  });

  it('filters the tasks by status, paging within the status', async () => {
    const completed = await idsInDatabase('completed');
    await page.locator('#recent-status').selectOption('completed');
    await page.locator('#recent-count', { hasText: 'completed tasks' }).waitFor();
    expect(await listedIds()).toEqual(completed.slice(0, 20));
    expect(await page.locator('#recent-count').textContent()).toBe(`1–20 of ${completed.length} completed tasks`);
    const statuses = await page.locator('#recent td.status').allTextContents();
    expect(new Set(statuses)).toEqual(new Set(['completed']));

    await page.locator('#recent-next').click();
    await page.locator('#recent-page', { hasText: 'page 2' }).waitFor();
    await expect.poll(listedIds).toEqual(completed.slice(20, 40));

    // Another status starts from its first page.
    await page.locator('#recent-status').selectOption('processing');
    await page.locator('#recent-count', { hasText: 'processing tasks' }).waitFor();
    expect(await listedIds()).toEqual([inInbox]);
    expect(await page.locator('#recent-page').textContent()).toBe('page 1');
    expect(await page.locator('#recent-pager').isHidden()).toBe(true);

    await page.locator('#recent-status').selectOption('completed');
    await page.locator('#recent-count', { hasText: 'completed tasks' }).waitFor();
  });

  it("shows a completed task's earlier failure as history, not as its error, in the list and its detail", async () => {
    const row = page.locator(`#recent tr[data-task-id="${historyId}"]`);
    await row.waitFor();
    expect(await row.locator('td.history').textContent()).toBe(`an earlier try failed: ${EARLIER_ERROR}`);
    expect(await row.locator('td.error').count()).toBe(0);

    await row.locator('button.task-link').click();
    const dialog = page.locator('#task-dialog');
    await dialog.locator('[data-field="status"]').waitFor();
    expect(await page.locator('#task-title').textContent()).toBe(`Task ${historyId}`);
    const fields = await dialog
      .locator('#task-fields dt')
      .evaluateAll((dts) => dts.map((dt) => [dt.textContent, dt.nextElementSibling?.textContent]));
    const task = await t.store.getTask(historyId);
    expect(fields).toEqual([
      ['status', 'completed'],
      ['type', 'simulated'],
      ['message', 'worked on the second try'],
      ['time (s)', '0'],
      ['result', '—'],
      ['attempts', '2'],
      ['an earlier try failed', EARLIER_ERROR],
      ['created', local(task!.createdAt.toISOString())],
      ['picked up', local(task!.dispatchedAt!.toISOString())],
      ['finished', local(task!.finishedAt!.toISOString())],
      ['last changed', local(task!.updatedAt.toISOString())],
    ]);
    expect(await dialog.locator('[data-field="error"]').count()).toBe(0);
    expect(await dialog.locator('#task-retry').isHidden()).toBe(true);
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-task.png') });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });

    await page.locator('#recent-status').selectOption('');
    await page.locator(`#recent tr[data-task-id="${insertedId}"]`).waitFor();
  });

  it("shows a failed task's error as its error in its detail, with a retry", async () => {
    await page.locator(`#failures tr[data-task-id="${newest()}"] button.task-link`).click();
    const dialog = page.locator('#task-dialog');
    await dialog.locator('[data-field="error"]').waitFor();
    expect(await dialog.locator('[data-field="status"]').textContent()).toBe('failed');
    expect(await dialog.locator('[data-field="error"]').textContent()).toBe('disk on fire');
    expect(await dialog.locator('[data-field="earlier-error"]').count()).toBe(0);
    expect(await dialog.locator('#task-retry').isVisible()).toBe(true);
    await page.locator('#task-close').click();
    await dialog.waitFor({ state: 'hidden' });
  });

  it('asks for the token when a retry is refused with 401, and changes nothing', async () => {
    await page.locator(`button[data-retry="${newest()}"]`).click();
    await page.locator('#notice.error').waitFor();
    expect(await page.locator('#notice').textContent()).toContain('needs a token');
    expect(await statusOf(newest())).toBe('failed');
  });

  it('retries a failed task with the token: pending again, gone from the failures, counted', async () => {
    await page.locator('#token').fill(TOKEN);
    await page.locator('#token-form button').click();
    await page.locator(`button[data-retry="${newest()}"]`).click();
    await page.locator('#notice:not(.error)', { hasText: `Task ${newest()} is pending again.` }).waitFor();
    expect(posts.at(-1)).toBe(`/tasks/${newest()}/redrive`);
    expect(await t.store.getTask(newest())).toMatchObject({ status: 'pending', attempts: 0 });
    await page.locator(`#failures tr[data-task-id="${newest()}"]`).waitFor({ state: 'detached' });
    await page.locator(`#recent tr[data-task-id="${newest()}"] .status`, { hasText: 'pending' }).waitFor();
    expect(await failuresCount()).toBe(`1–20 of ${FAILED_TASKS + 1}`);
  });

  it('after a retry, the chart and the cards still count the same failed tasks', async () => {
    const failed = FAILED_TASKS + BUSY_MINUTE.failed - 1;
    const { chart, cards, text } = await chartAndCards();
    expect(cards).toEqual({ completed: BUSY_MINUTE.completed + 1, failed });
    expect(chart).toEqual(cards);
    expect(text).toContain(`${failed} of the ${failed} failed tasks finished`);
    // The retried task is no failure of the minute it failed in any more.
    const now = await page
      .locator('#throughput g[data-minute]')
      .evaluateAll((groups) => groups.map((g) => g.querySelector('title')?.textContent ?? ''));
    const failures = now.reduce((sum, title) => sum + Number(/(\d+) failed$/.exec(title)?.[1] ?? 0), 0);
    expect(failures).toBe(failed);
  });

  it('retries all failed tasks after a confirmation naming the count; Cancel changes nothing', async () => {
    const failed = failedIds.slice(0, -1);
    const dialog = page.locator('#retry-all-dialog');
    await page.locator('#retry-all').click();
    await dialog.waitFor();
    expect(await page.locator('#retry-all-question').textContent()).toBe(
      `Retry every failed task among the ${FAILED_TASKS + 1} dead letters?`,
    );
    await page.locator('#retry-all-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    expect(await statusOf(failed[0] as number)).toBe('failed');

    await page.locator('#retry-all').click();
    await page.locator('#retry-all-confirm').click();
    const kept = '2 kept (their task is not failed, or they name none)';
    await page
      .locator('#notice:not(.error)', {
        hasText: `${failed.length} failed tasks pending again; ${failed.length} dead letters removed; ${kept}.`,
      })
      .waitFor();
    expect(posts.at(-1)).toBe('/dead-letters/redrive');
    for (const id of failed) expect(await statusOf(id)).toBe('pending');
    expect(await statusOf(inInbox)).toBe('processing');
    await page.locator('#failures-count', { hasText: '1–2 of 2' }).waitFor();
    expect(await page.locator('#failures-pager').isHidden()).toBe(true);

    // Only the busy minute's failures are left, on the cards and in the chart alike.
    const { chart, cards } = await chartAndCards();
    expect(cards.failed).toBe(BUSY_MINUTE.failed);
    expect(chart).toEqual(cards);
  });

  it('closing the confirmation with Escape after a confirmed one retries nothing', async () => {
    const another = await deadLetteredTask(t, { message: 'failed after the retry-all' });
    await page.locator('#failures-count', { hasText: '1–3 of 3' }).waitFor();
    const sent = posts.length;
    await page.locator('#retry-all').click();
    await page.locator('#retry-all-dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.locator('#retry-all-dialog').waitFor({ state: 'hidden' });
    // Wait for a refresh that starts after the dialog closed: a retry would have been sent before it.
    await nextRefresh();
    expect(posts.slice(sent)).toEqual([]);
    expect(await statusOf(another.id)).toBe('failed');
    expect(await failuresCount()).toBe('1–3 of 3');
  });

  it("shows a typed task's type and data in the list, and its result in its detail", async () => {
    const [outcome] = await t.ctx.store.insert([
      { type: 'echo', data: { say: '<b>hi</b>', n: [1, 2] }, idempotencyKey: null, timeoutMs: 1_500, maxAttempts: 4 },
    ]);
    const id = (outcome as { id: number }).id;
    await t.ctx.store.claim(1_000);
    const { leased } = await t.ctx.store.fetch(1_000, 60_000);
    const mine = leased.find((l) => l.message?.id === id)!;
    await t.ctx.store.release(leased.filter((l) => l !== mine).map((l) => l.token));
    await t.ctx.store.complete([
      { id, run: mine.message!.run, tries: 0, token: mine.token, result: JSON.stringify({ said: '<b>hi</b>' }) },
    ]);
    const row = page.locator(`#recent tr[data-task-id="${id}"]`);
    await row.waitFor();
    expect(await row.locator('.tag').textContent()).toBe('echo');
    // The JSON as stored: MySQL keeps an object's keys in an order of its own.
    expect(JSON.parse((await row.locator('code').textContent()) ?? '')).toEqual({ say: '<b>hi</b>', n: [1, 2] });
    await row.locator('button.task-link').click();
    const dialog = page.locator('#task-dialog');
    await dialog.locator('[data-field="result"]').waitFor();
    expect(await dialog.locator('[data-field="type"]').textContent()).toBe('echo');
    expect(JSON.parse((await dialog.locator('[data-field="data"]').textContent()) ?? '')).toEqual({
      say: '<b>hi</b>',
      n: [1, 2],
    });
    expect(JSON.parse((await dialog.locator('[data-field="result"]').textContent()) ?? '')).toEqual({
      said: '<b>hi</b>',
    });
    expect(await dialog.locator('[data-field="attempts"]').textContent()).toBe('1 of 4');
    expect(await dialog.locator('[data-field="timeout"]').textContent()).toBe('2 s');
    expect(await dialog.locator('#task-cancel').isHidden()).toBe(true);
    expect(await page.locator('#task-dialog b').count()).toBe(0);
    await page.locator('#task-close').click();
    await dialog.waitFor({ state: 'hidden' });
  });

  it('cancels a pending task from its detail: cancelled, counted on the cards and in the chart', async () => {
    const id = await insertThroughApi('cancelled from the browser');
    const row = page.locator(`#recent tr[data-task-id="${id}"]`);
    await row.waitFor();
    await row.locator('button.task-link').click();
    const dialog = page.locator('#task-dialog');
    await dialog.locator('[data-field="status"]', { hasText: 'pending' }).waitFor();
    expect(await dialog.locator('#task-cancel').isVisible()).toBe(true);
    await dialog.locator('#task-cancel').click();
    await page.locator('#notice:not(.error)', { hasText: `Task ${id} is cancelled.` }).waitFor();
    expect(posts.at(-1)).toBe(`/tasks/${id}/cancel`);
    expect(await statusOf(id)).toBe('cancelled');
    await dialog.locator('[data-field="status"]', { hasText: 'cancelled' }).waitFor();
    expect(await dialog.locator('#task-cancel').isHidden()).toBe(true);
    await page.locator('#task-close').click();
    await row.locator('.status', { hasText: 'cancelled' }).waitFor();
    await page.locator('[data-count="cancelled"]', { hasText: '1' }).waitFor();
    const total = page.locator('#throughput-total');
    expect(await total.getAttribute('data-cancelled')).toBe('1');
    expect(await total.textContent()).toMatch(/ and 1 of the 1 cancelled tasks finished in the last 30 minutes$/);
    await page.locator('#recent-status').selectOption('cancelled');
    await page.locator('#recent-count', { hasText: 'cancelled tasks' }).waitFor();
    expect(await listedIds()).toEqual([id]);
    await page.locator('#recent-status').selectOption('');
  });

  it('shows a delayed task on its card and in its detail, with its due time, priority and group, and cancels it', async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const [outcome] = await t.store.insert([
      { data: { message: 'later', time: 0 }, idempotencyKey: null, runAt, priority: 7, group: 'tenant-b' },
    ]);
    const id = (outcome as { id: number }).id;
    await page.locator('[data-count="delayed"]', { hasText: '1' }).waitFor();
    const row = page.locator(`#recent tr[data-task-id="${id}"]`);
    await row.waitFor();
    await row.locator('.status', { hasText: 'delayed' }).waitFor();
    await row.locator('button.task-link').click();
    const dialog = page.locator('#task-dialog');
    await dialog.locator('[data-field="run_at"]').waitFor();
    expect(await dialog.locator('[data-field="run_at"] time').getAttribute('datetime')).toBe(runAt.toISOString());
    expect(await dialog.locator('[data-field="priority"]').textContent()).toBe('7');
    expect(await dialog.locator('[data-field="group"]').textContent()).toBe('tenant-b');
    await dialog.locator('#task-cancel').click();
    await dialog.locator('[data-field="status"]', { hasText: 'cancelled' }).waitFor();
    expect(await statusOf(id)).toBe('cancelled');
    await page.locator('#task-close').click();
    await page.locator('[data-count="delayed"]', { hasText: '0' }).waitFor();
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    expect(problems).toEqual([]);
  });
});
