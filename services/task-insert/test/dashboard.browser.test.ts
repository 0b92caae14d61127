import { once } from 'node:events';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask, unrecordedDeadLetter } from '../../../test/support/runs.js';
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
/** A minute in the chart with this many finishes: the y-axis goes up to 100 in steps of 25. */
const BUSY_MINUTE = { completed: 90, failed: 10 };

let t: TestEnv;
let server: Server;
let baseUrl: string;
let profile: string;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];
let failedIds: number[];
let inInbox: number;
/** The start of the busy minute, five minutes before the tests start. */
let busyMinute: string;
/** The writes the page sent, in order. */
const posts: string[] = [];

beforeAll(async () => {
  const executablePath = findChromium();
  t = await createTestEnv({ API_TOKEN: TOKEN });
  server = createApp(t.ctx).listen(0, '127.0.0.1');
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
  const busy = Math.floor(Date.now() / 60_000) - 5;
  busyMinute = new Date(busy * 60_000).toISOString();
  await t.sql.query('INSERT INTO tasks_finished_per_minute (minute, completed, failed) VALUES (?, ?, ?)', [
    busy,
    BUSY_MINUTE.completed,
    BUSY_MINUTE.failed,
  ]);
}, 180_000);

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
    expect(await page.locator('[data-count="failed"]').textContent()).toBe(String(FAILED_TASKS));
    expect(await page.locator('[data-depth="dead_letters"]').textContent()).toBe(String(FAILED_TASKS + 2));

    const failedRow = page.locator(`#failures tr[data-task-id="${newest()}"]`);
    await failedRow.waitFor();
    expect(await page.locator('#failures tbody tr').first().getAttribute('data-task-id')).toBe(String(newest()));
    expect(await failedRow.locator('td.error').textContent()).toBe('disk on fire');
    expect(await failedRow.locator('td.message').textContent()).toBe(`broke in the browser test ${FAILED_TASKS - 1}`);
    expect(await failedRow.locator('.status').textContent()).toBe('failed');
    if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
    if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, 'dashboard-wide.png'), fullPage: true });
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
    expect(await recording.locator('button').count()).toBe(0);
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
    expect(await t.store.getTask(newest())).toMatchObject({ status: 'pending', attempts: 0 });
    await page.locator(`#failures tr[data-task-id="${newest()}"]`).waitFor({ state: 'detached' });
    await page.locator(`#recent tr[data-task-id="${newest()}"] .status`, { hasText: 'pending' }).waitFor();
    expect(await failuresCount()).toBe(`1–20 of ${FAILED_TASKS + 1}`);
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
    for (const id of failed) expect(await statusOf(id)).toBe('pending');
    expect(await statusOf(inInbox)).toBe('processing');
    await page.locator('#failures-count', { hasText: '1–2 of 2' }).waitFor();
    expect(await page.locator('.pager').isHidden()).toBe(true);
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
    const updated = await page.locator('#updated time').getAttribute('datetime');
    await page.locator(`#updated time:not([datetime="${updated}"])`).waitFor();
    expect(posts.slice(sent)).toEqual([]);
    expect(await statusOf(another.id)).toBe('failed');
    expect(await failuresCount()).toBe('1–3 of 3');
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    expect(problems).toEqual([]);
  });
});
