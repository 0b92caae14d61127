// The dashboard's script: reads /stats, /stats/throughput, /dead-letters and /tasks every few
// seconds, retries failed tasks through POST /tasks/:id/retry and all of them through
// POST /dead-letters/retry. Plain browser JavaScript, no build step; every value from the API
// is written with textContent or as an attribute, never as HTML.
//
// Times are shown in the browser's local time, in one format: `YYYY-MM-DD HH:MM:SS` (the
// ISO value in the title), `HH:MM` on the chart's axis.

const REFRESH_MS = 5000;
const TOKEN_KEY = 'tasks.apiToken';
const SVG = 'http://www.w3.org/2000/svg';
const FAILURES_PAGE = 20;
const RECENT_TASKS = 20;
const THROUGHPUT_MINUTES = 30;
/** Characters of an invalid entry's text shown in its row; the whole text is in the title. */
const RAW_SHOWN = 200;
/** Room (px) an x-axis label needs, and the minute steps between labels to choose from. */
const X_LABEL_ROOM = 56;
const X_LABEL_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
  return node;
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function notice(text, isError = false) {
  const box = $('#notice');
  box.hidden = !text;
  box.textContent = text || '';
  box.classList.toggle('error', isError);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** A write as the API takes it without a token: declared JSON (see content-type.ts). */
async function postJson(path) {
  const headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const res = await fetch(path, { method: 'POST', headers, body: '{}' });
  const body = await res.json().catch(() => ({}));
  return { res, body };
}

function needsToken() {
  notice('This API needs a token: enter its API_TOKEN above, then try again.', true);
  $('#token').focus();
}

/* ---- Times: one format, local ---- */

const pad = (n) => String(n).padStart(2, '0');

/** `HH:MM`, local. */
function clock(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** `YYYY-MM-DD HH:MM:SS`, local. */
function dateTime(date) {
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  return `${day} ${clock(date)}:${pad(date.getSeconds())}`;
}

/** The browser's offset from UTC, as `UTC+01:00`. */
function utcOffset(date) {
  const minutes = -date.getTimezoneOffset();
  const sign = minutes < 0 ? '−' : '+';
  const abs = Math.abs(minutes);
  return `UTC${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/** A `<time>` showing `iso` in the page's format, the value as given in its title; text as given if not a time. */
function timeElement(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return el('time', { datetime: date.toISOString(), title: iso }, dateTime(date));
}

const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/* ---- Counts ---- */

function renderStats(stats) {
  for (const [status, count] of Object.entries(stats.tasks)) {
    const cell = document.querySelector(`[data-count="${status}"]`);
    if (cell) cell.textContent = count.toLocaleString();
  }
  for (const [queue, depth] of Object.entries(stats.queue)) {
    const cell = document.querySelector(`[data-depth="${queue}"]`);
    if (cell) cell.textContent = depth.toLocaleString();
  }
}

/* ---- Throughput chart ---- */

/** A round step (1, 2, 2.5 or 5 times a power of ten; a whole number) of at least `raw`. */
function roundStep(raw) {
  const power = 10 ** Math.floor(Math.log10(Math.max(raw, 1e-9)));
  for (const m of [1, 2, 2.5, 5, 10]) {
    const step = m * power;
    if (step >= raw && Number.isInteger(step)) return step;
  }
  return Math.max(1, Math.ceil(raw));
}

/** About four round intervals from 0 up to at least `max`. */
function yTicks(max) {
  const step = roundStep(Math.max(max, 1) / 4);
  const top = Math.ceil(Math.max(max, 1) / step) * step;
  const ticks = [];
  for (let v = 0; v <= top; v += step) ticks.push(v);
  return ticks;
}

let lastThroughput = null;

function renderThroughput(throughput) {
  lastThroughput = throughput;
  const { minutes } = throughput;
  const box = $('#throughput');
  const width = Math.max(280, Math.floor(box.clientWidth));
  const height = 240;
  const margin = { top: 14, right: 24, bottom: 28, left: 48 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const totals = minutes.map((m) => m.completed + m.failed);
  const ticks = yTicks(Math.max(0, ...totals));
  const top = ticks.at(-1);
  const y = (v) => margin.top + plotHeight - (v / top) * plotHeight;
  const slot = plotWidth / Math.max(1, minutes.length);
  const gap = Math.min(6, slot * 0.25);

  const chart = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}` });
  const grid = svg('g', { class: 'y-axis' });
  for (const v of ticks) {
    grid.append(svg('line', { class: 'grid', x1: margin.left, x2: width - margin.right, y1: y(v), y2: y(v) }));
    grid.append(svg('text', { class: 'y-label', x: margin.left - 8, y: y(v), 'data-value': v }, v.toLocaleString()));
  }
  chart.append(grid);

  const bars = svg('g', { class: 'bars' });
  minutes.forEach((m, i) => {
    const x = margin.left + i * slot + gap / 2;
    const w = Math.max(1, slot - gap);
    const start = new Date(m.minute);
    const last = i === minutes.length - 1;
    const group = svg('g', { 'data-minute': m.minute });
    group.append(
      svg('title', {}, `${clock(start)}${last ? ' (so far)' : ''}: ${m.completed} completed, ${m.failed} failed`),
    );
    // A transparent column the whole height, so the tooltip shows for empty minutes too.
    group.append(svg('rect', { class: 'hit', x, y: margin.top, width: w, height: plotHeight }));
    if (m.completed > 0) {
      group.append(svg('rect', { class: 'completed', x, y: y(m.completed), width: w, height: y(0) - y(m.completed) }));
    }
    if (m.failed > 0) {
      const total = m.completed + m.failed;
      group.append(svg('rect', { class: 'failed', x, y: y(total), width: w, height: y(m.completed) - y(total) }));
    }
    bars.append(group);
  });
  chart.append(bars);

  const axis = svg('g', { class: 'x-axis' });
  axis.append(svg('line', { class: 'baseline', x1: margin.left, x2: width - margin.right, y1: y(0), y2: y(0) }));
  const every = X_LABEL_STEPS.find((s) => (minutes.length / s) * X_LABEL_ROOM <= plotWidth) ?? 1440;
  minutes.forEach((m, i) => {
    const start = new Date(m.minute);
    if ((start.getHours() * 60 + start.getMinutes()) % every !== 0) return;
    const x = margin.left + (i + 0.5) * slot;
    axis.append(svg('line', { class: 'tick', x1: x, x2: x, y1: y(0), y2: y(0) + 4 }));
    axis.append(svg('text', { class: 'x-label', x, y: height - 8, 'data-minute': m.minute }, clock(start)));
  });
  chart.append(axis);
  box.replaceChildren(chart);

  const completed = minutes.reduce((s, m) => s + m.completed, 0);
  const failed = minutes.reduce((s, m) => s + m.failed, 0);
  $('#throughput-total').textContent = `${completed.toLocaleString()} completed, ${failed.toLocaleString()} failed`;
  box.setAttribute(
    'aria-label',
    `tasks finished per minute over the last ${minutes.length} minutes: ${completed} completed, ${failed} failed`,
  );
}

/* ---- Recent failures: the dead-letter list ---- */

let failuresOffset = 0;
let failuresTotal = 0;

function statusCell(entry) {
  if (entry.status) return el('td', { class: `status ${entry.status}` }, entry.status);
  return el('td', { class: 'status none' }, entry.id === null ? 'no task' : 'gone');
}

function failureRow(entry) {
  const action = el('td', { class: 'action' });
  if (entry.status === 'failed') {
    const button = el('button', { type: 'button', 'data-retry': String(entry.id) }, 'Retry');
    button.addEventListener('click', () => retry(entry.id, button));
    action.append(button);
  }
  let message;
  if (entry.id === null) {
    const raw = entry.raw ?? '';
    const shown = raw.length > RAW_SHOWN ? `${raw.slice(0, RAW_SHOWN)}…` : raw;
    message = el(
      'td',
      { class: 'message raw' },
      el('span', { class: 'tag' }, 'not a task'),
      ' ',
      el('code', { title: raw }, shown),
    );
  } else {
    message = el('td', { class: 'message' }, entry.message ?? '');
  }
  return el(
    'tr',
    entry.id === null ? { 'data-entry': 'invalid' } : { 'data-task-id': String(entry.id) },
    el('td', { class: 'id' }, entry.id ?? '—'),
    message,
    el('td', { class: 'number' }, entry.tries ?? '—'),
    el('td', { class: 'error' }, entry.error ?? ''),
    el('td', { class: 'when' }, timeElement(entry.failed_at)),
    statusCell(entry),
    action,
  );
}

function renderFailures(page) {
  failuresTotal = page.total;
  $('#failures tbody').replaceChildren(...page.entries.map(failureRow));
  const shown = page.entries.length;
  $('#failures-count').textContent =
    shown === 0
      ? `0 of ${page.total.toLocaleString()}`
      : `${(page.offset + 1).toLocaleString()}–${(page.offset + shown).toLocaleString()} of ${page.total.toLocaleString()}`;
  $('#no-failures').hidden = page.total > 0;
  const pages = Math.max(1, Math.ceil(page.total / FAILURES_PAGE));
  const current = Math.min(pages, Math.floor(page.offset / FAILURES_PAGE) + 1);
  $('#failures-page').textContent = `page ${current} of ${pages}`;
  $('#failures-prev').disabled = page.offset === 0;
  $('#failures-next').disabled = page.next_offset === null;
  $('.pager').hidden = page.total <= FAILURES_PAGE && page.offset === 0;
  $('#retry-all').disabled = page.total === 0;
}

async function readFailures() {
  const read = () => getJson(`/dead-letters?offset=${failuresOffset}&limit=${FAILURES_PAGE}`);
  let page = await read();
  if (page.entries.length === 0 && page.total > 0 && failuresOffset > 0) {
    // The list shrank below this page (retried, or trimmed): show its last page.
    failuresOffset = Math.floor((page.total - 1) / FAILURES_PAGE) * FAILURES_PAGE;
    page = await read();
  }
  return page;
}

/* ---- Recent tasks ---- */

function renderRecent({ tasks }) {
  $('#recent tbody').replaceChildren(
    ...tasks.map((task) =>
      el(
        'tr',
        { 'data-task-id': String(task.id) },
        el('td', { class: 'id' }, task.id),
        el('td', { class: `status ${task.status}` }, task.status),
        el('td', { class: 'message' }, task.data.message),
        el('td', { class: 'number' }, task.data.time),
        el('td', { class: 'number' }, task.attempts),
        el('td', { class: 'when' }, timeElement(task.created_at)),
      ),
    ),
  );
}

/* ---- Refresh ---- */

let refreshing = null;
let again = false;

/** Reads everything and renders it; a call while one runs makes it run once more after. */
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      try {
        const [stats, throughput, failures, recent] = await Promise.all([
          getJson('/stats'),
          getJson(`/stats/throughput?minutes=${THROUGHPUT_MINUTES}`),
          readFailures(),
          getJson(`/tasks?limit=${RECENT_TASKS}`),
        ]);
        renderStats(stats);
        renderThroughput(throughput);
        renderFailures(failures);
        renderRecent(recent);
        const now = new Date();
        $('#updated').replaceChildren('updated ', timeElement(now.toISOString()));
        $('#timezone').textContent = `times are local (${utcOffset(now)})`;
      } catch (err) {
        $('#updated').textContent = `could not refresh (${err.message}); retrying`;
      }
    } while (again);
    refreshing = null;
  })();
  return refreshing;
}

/* ---- Retries ---- */

async function retry(id, button) {
  button.disabled = true;
  try {
    const { res, body } = await postJson(`/tasks/${id}/retry`);
    if (res.status === 401) needsToken();
    else if (!res.ok) notice(body.message || `retry failed: HTTP ${res.status}`, true);
    else notice(`Task ${id} is pending again.`);
  } catch (err) {
    notice(`retry failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
    await refresh();
  }
}

function askRetryAll() {
  if (failuresTotal === 0) return;
  $('#retry-all-question').textContent =
    `Retry every failed task among the ${plural(failuresTotal, 'dead letter', 'dead letters')}?`;
  const dialog = $('#retry-all-dialog');
  // Closed with Escape, a dialog keeps its last returnValue as the specification has it: start from none.
  dialog.returnValue = '';
  dialog.showModal();
  $('#retry-all-cancel').focus();
}

async function retryAll() {
  const button = $('#retry-all');
  button.disabled = true;
  try {
    const { res, body } = await postJson('/dead-letters/retry');
    if (res.status === 401) needsToken();
    else if (!res.ok) notice(body.message || `retry failed: HTTP ${res.status}`, true);
    else {
      const parts = [`${plural(body.redriven, 'failed task', 'failed tasks')} pending again`];
      if (body.removed_dead_letters === null) {
        parts.push(`their dead letters could not be removed (${body.removal_error ?? 'Redis failed'})`);
      } else {
        parts.push(`${plural(body.removed_dead_letters, 'dead letter', 'dead letters')} removed`);
      }
      if (body.kept_entries > 0) {
        parts.push(`${body.kept_entries.toLocaleString()} kept (their task is not failed, or they name none)`);
      }
      notice(`${parts.join('; ')}.`, body.removed_dead_letters === null);
      failuresOffset = 0;
    }
  } catch (err) {
    notice(`retry failed: ${err.message}`, true);
  } finally {
    await refresh();
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('#token').value = token();
  $('#token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const value = $('#token').value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    notice(value ? 'Token set for this browser tab.' : 'Token cleared.');
  });
  $('#failures-prev').addEventListener('click', () => {
    failuresOffset = Math.max(0, failuresOffset - FAILURES_PAGE);
    void refresh();
  });
  $('#failures-next').addEventListener('click', () => {
    failuresOffset += FAILURES_PAGE;
    void refresh();
  });
  $('#retry-all').addEventListener('click', askRetryAll);
  $('#retry-all-dialog').addEventListener('close', () => {
    if ($('#retry-all-dialog').returnValue === 'confirm') void retryAll();
  });
  new ResizeObserver(() => {
    if (lastThroughput) renderThroughput(lastThroughput);
  }).observe($('#throughput'));
  void refresh();
  setInterval(refresh, REFRESH_MS);
});
