import { once } from 'node:events';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { getTask } from '@tasks/common';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deadLetteredTask } from '../../../test/support/runs.js';
import { createTestEnv, type TestEnv } from '../../../test/support/test-env.js';
import { createApp } from '../src/app.js';

/**
 * The dashboard in a real browser: Chromium (Debian's: `apt-get install chromium`; or the
 * one CHROMIUM_PATH names), driven by playwright-core, against the real API on a loopback port.
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

let t: TestEnv;
let server: Server;
let baseUrl: string;
let profile: string;
let browser: BrowserContext;
let page: Page;
const problems: string[] = [];

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
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (message) => {
    // A 401 answer is logged by the browser as a failed resource; everything else is a problem.
    if (message.type() === 'error' && !message.text().includes('401')) problems.push(message.text());
  });
}, 120_000);

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

describe('the dashboard in Chromium', () => {
  let insertedId: number;
  let failedId: number;

  it('loads and shows the counts, queue depths, chart, a task the test inserted and the failures', async () => {
    insertedId = await insertThroughApi('visible in the browser');
    failedId = (await deadLetteredTask(t.ctx, { message: 'broke in the browser test', error: 'disk on fire' })).id;

    const response = await page.goto(`${baseUrl}/`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toBe('Tasks dashboard');

    const recentRow = page.locator(`#recent tr[data-task-id="${insertedId}"]`);
    await recentRow.waitFor();
    expect(await recentRow.textContent()).toContain('visible in the browser');
    expect(await recentRow.locator('.status').textContent()).toBe('pending');

    expect(await page.locator('[data-count="pending"]').textContent()).toBe('1');
    expect(await page.locator('[data-count="failed"]').textContent()).toBe('1');
    expect(await page.locator('[data-depth="dead_letters"]').textContent()).toBe('1');
    expect(await page.locator('#throughput svg rect').count()).toBe(60);

    const failedRow = page.locator(`#failures tr[data-task-id="${failedId}"]`);
    await failedRow.waitFor();
    expect(await failedRow.locator('td.error').textContent()).toBe('disk on fire');
    expect(await failedRow.locator('td.message').textContent()).toBe('broke in the browser test');
  });

  it('asks for the token when a retry is refused with 401, and changes nothing', async () => {
    await page.locator(`button[data-retry="${failedId}"]`).click();
    await page.locator('#notice.error').waitFor();
    expect(await page.locator('#notice').textContent()).toContain('needs a token');
    expect((await getTask(t.ctx.pool, failedId))?.status).toBe('failed');
  });

  it('retries a failed task with the token: pending again, gone from the failures', async () => {
    await page.locator('#token').fill(TOKEN);
    await page.locator('#token-form button').click();
    await page.locator(`button[data-retry="${failedId}"]`).click();
    await page.locator('#notice:not(.error)', { hasText: `Task ${failedId} is pending again.` }).waitFor();
    expect(await getTask(t.ctx.pool, failedId)).toMatchObject({ status: 'pending', attempts: 0 });
    await page.locator(`#failures tr[data-task-id="${failedId}"]`).waitFor({ state: 'detached' });
    expect(await page.locator('#no-failures').isVisible()).toBe(true);
    await page.locator(`#recent tr[data-task-id="${failedId}"] .status`, { hasText: 'pending' }).waitFor();
    expect(await t.ctx.redis.llen(t.ctx.queue.keys.deadLetters)).toBe(0);
  });

  it('ran without script errors or Content-Security-Policy violations', () => {
    expect(problems).toEqual([]);
  });
});
