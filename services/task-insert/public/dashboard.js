// The dashboard's script: reads /stats, /stats/throughput, /services, /dead-letters and /tasks
// every few seconds, a task's detail from GET /tasks/:id, retries failed tasks through
// POST /tasks/:id/redrive and all of them through POST /dead-letters/redrive, and cancels a
// task not finished yet through POST /tasks/:id/cancel. Plain browser
// JavaScript, no build step; every value from the API is written with textContent or as an
// attribute, never as HTML.
//
// Each section shows a skeleton until its first answer, and says so when its read fails: with
// what it showed before kept (and dimmed), or in place of the skeleton when there was none.
//
// Times are shown in the browser's local time, in one format: `YYYY-MM-DD HH:MM:SS` (the
// ISO value in the title), `HH:MM` on the chart's axis.

const REFRESH_MS = 5000;
const TOKEN_KEY = 'tasks.apiToken';
const SVG = 'http://www.w3.org/2000/svg';
const FAILURES_PAGE = 20;
const TASKS_PAGE = 20;
const THROUGHPUT_MINUTES = 30;
const STATUSES = ['delayed', 'pending', 'processing', 'completed', 'failed', 'cancelled'];
/** The type of the original's tasks, whose data is `{message, time}`. */
const SIMULATED = 'simulated';
/** Characters of a typed task's data shown in its row; the whole of it is in the title and the task's detail. */
const DATA_SHOWN = 120;
/** Characters of an invalid entry's text shown in its row; the whole text is in the title. */
const RAW_SHOWN = 200;
/** Characters of an error shown in a table's cell; the whole text is in the title and the task's detail. */
const ERROR_SHOWN = 160;
/** Room (px) an x-axis label needs, and the minute steps between labels to choose from. */
const X_LABEL_ROOM = 56;
const X_LABEL_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
/** What users call each service. */
const SERVICE_NAMES = {
  'task-insert': 'API',
  scheduler: 'scheduler',
  executor: 'executor',
  'dlq-processor': 'dead-letter recorder',
};

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

/** A read the API did not answer with 2xx, or did not answer: `reason` says why, in words. */
class ReadError extends Error {
  constructor(path, reason) {
    super(`${path}: ${reason}`);
    this.path = path;
    this.reason = reason;
  }
}

async function getJson(path) {
  let res;
  try {
    res = await fetch(path, { headers: { Accept: 'application/json' } });
  } catch {
    throw new ReadError(path, 'no answer from the API');
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new ReadError(path, `HTTP ${res.status}${body.message ? `: ${body.message}` : ''}`);
  }
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

/** A duration in words: `300 ms`, `4 s`, `3 min`, `2 h 5 min`. */
function duration(ms) {
  if (ms > 0 && ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

const plural = (n, one, many) => `${n.toLocaleString()} ${n === 1 ? one : many}`;

/** `text` cut to `max` characters, with an ellipsis when cut. */
const cut = (text, max) => (text.length > max ? `${text.slice(0, max)}…` : text);

/* ---- Sections: loading, ready, stale, failed ---- */

/**
 * A section's state: `loading` (skeleton, before its first answer), `ready`, `stale` (its last
 * read failed: what it shows is from before, and it says so), `error` (it never loaded).
 */
function setSection(id, state, error) {
  const section = document.getElementById(id);
  section.dataset.state = state;
  if (state === 'ready') section.dataset.readAt = new Date().toISOString();
  section.setAttribute('aria-busy', String(state === 'loading'));
  const box = section.querySelector('.section-error');
  if (box) {
    box.hidden = !error;
    box.textContent = error || '';
  }
}

/**
 * A section whose read failed: what it shows stays, dimmed, or its skeleton makes way for a
 * mark. It says why unless `quiet` (the banner above says it for every section).
 */
function sectionFailed(id, err, quiet) {
  const section = document.getElementById(id);
  const hadData = section.dataset.state === 'ready' || section.dataset.state === 'stale';
  const reason = err instanceof ReadError ? err.reason : `could not be shown: ${err.message}`;
  if (hadData) {
    const since = dateTime(new Date(section.dataset.readAt));
    setSection(id, 'stale', quiet ? '' : `Not refreshed since ${since}: ${reason}.`);
  } else {
    setSection(id, 'error', quiet ? '' : `Not loaded: ${reason}.`);
    for (const row of section.querySelectorAll('.skeleton-row')) row.remove();
    for (const node of section.querySelectorAll('.skeleton')) node.remove();
    for (const cell of section.querySelectorAll('[data-count], [data-depth]')) cell.textContent = '?';
    const placeholder = section.querySelector('.chart-placeholder');
    if (placeholder) placeholder.textContent = 'No chart: the API did not answer.';
  }
}

/* ---- Counts ---- */

let lastStats = null;

function renderStats(stats) {
  lastStats = stats;
  for (const [status, count] of Object.entries(stats.tasks)) {
    const cell = document.querySelector(`[data-count="${status}"]`);
    if (cell) cell.textContent = count.toLocaleString();
  }
  const all = Object.values(stats.tasks).reduce((sum, n) => sum + n, 0);
  $('#status-total').textContent = `${plural(all, 'task', 'tasks')} in all`;
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
  const totals = minutes.map((m) => m.completed + m.failed + m.cancelled);
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
    const cancelled = m.cancelled > 0 ? `, ${m.cancelled} cancelled` : '';
    group.append(
      svg(
        'title',
        {},
        `${clock(start)}${last ? ' (so far)' : ''}: ${m.completed} completed, ${m.failed} failed${cancelled}`,
      ),
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
    if (m.cancelled > 0) {
      const below = m.completed + m.failed;
      const total = below + m.cancelled;
      group.append(svg('rect', { class: 'cancelled', x, y: y(total), width: w, height: y(below) - y(total) }));
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
  const cancelled = minutes.reduce((s, m) => s + m.cancelled, 0);
  const total = $('#throughput-total');
  total.dataset.completed = String(completed);
  total.dataset.failed = String(failed);
  total.dataset.cancelled = String(cancelled);
  const span = `in the last ${minutes.length} minutes`;
  // Each status as `n of the N` (N: the card's count); cancelled only once there are any.
  const counts = [
    ['completed', completed],
    ['failed', failed],
    ['cancelled', cancelled],
  ].filter(([status, n]) => status !== 'cancelled' || n > 0 || (lastStats?.tasks.cancelled ?? 0) > 0);
  const parts = counts.map(([status, n]) =>
    lastStats
      ? `${n.toLocaleString()} of the ${lastStats.tasks[status].toLocaleString()} ${status}`
      : `${n.toLocaleString()} ${status}`,
  );
  const listed = parts.length > 2 ? `${parts.slice(0, -1).join(', ')} and ${parts.at(-1)}` : parts.join(' and ');
  total.textContent = `${listed} tasks finished ${span}`;
  box.setAttribute(
    'aria-label',
    `tasks finished per minute over the last ${minutes.length} minutes: ${completed} completed, ${failed} failed, ` +
      `${cancelled} cancelled`,
  );
}

/* ---- Services running ---- */

const number = (v) => (typeof v === 'number' ? v.toLocaleString() : String(v));

/** What a service runs, in words, from the detail it reports. */
function describeService(service, detail) {
  const d = { ...detail };
  const parts = [];
  if (service === 'executor' && 'running' in d && 'concurrency' in d) {
    parts.push(`running ${number(d.running)} of ${number(d.concurrency)} at once`);
    delete d.running;
    delete d.concurrency;
  }
  if (service === 'scheduler' && 'claims_per_poll' in d) {
    const every = typeof d.poll_interval_ms === 'number' ? ` every ${duration(d.poll_interval_ms)}` : '';
    parts.push(`picks up to ${number(d.claims_per_poll)} pending tasks${every}`);
    if (typeof d.sweep_interval_ms === 'number') {
      parts.push(`looks for lost tasks every ${duration(d.sweep_interval_ms)}`);
    }
    delete d.claims_per_poll;
    delete d.poll_interval_ms;
    delete d.sweep_interval_ms;
  }
  if (service === 'dlq-processor' && 'batch_size' in d) {
    parts.push(`records up to ${number(d.batch_size)} dead letters at a time as failed`);
    delete d.batch_size;
  }
  if (service === 'task-insert' && 'port' in d) {
    parts.push(`serves the API on port ${d.port}`);
    if (d.database_ready === false) parts.push('its database is being prepared');
    delete d.port;
    delete d.database_ready;
  }
  for (const [key, value] of Object.entries(d)) {
    parts.push(`${key.replaceAll('_', ' ')}: ${typeof value === 'object' ? JSON.stringify(value) : number(value)}`);
  }
  return parts.join('; ');
}

function serviceRow(s) {
  const name = SERVICE_NAMES[s.service] ?? s.service;
  const seen = new Date(s.last_seen);
  return el(
    'tr',
    { 'data-service-id': s.id, 'data-service': s.service },
    el(
      'td',
      { class: 'service' },
      el('span', { class: 'service-name' }, name),
      name === s.service ? '' : el('span', { class: 'muted service-id' }, ` ${s.service}`),
    ),
    el('td', { class: 'runs' }, describeService(s.service, s.detail)),
    el('td', { class: 'host' }, s.host),
    el('td', { class: 'number' }, s.pid),
    el(
      'td',
      { class: 'when seen' },
      el(
        'time',
        { datetime: seen.toISOString(), title: dateTime(seen) },
        s.last_seen_ago_ms < 1000 ? 'just now' : `${duration(s.last_seen_ago_ms)} ago`,
      ),
    ),
    el('td', { class: 'when' }, timeElement(s.started_at)),
  );
}

function renderServices(answer) {
  const { services } = answer;
  $('#services tbody').replaceChildren(...services.map(serviceRow));
  const executors = services.filter((s) => s.service === 'executor').length;
  $('#services-count').textContent =
    `${plural(services.length, 'process', 'processes')}, ${plural(executors, 'executor', 'executors')}`;
  $('#services-note').textContent =
    `each reports every ${duration(answer.report_interval_ms)}; ` +
    `one silent for ${duration(answer.forgotten_after_ms)} leaves the list`;
  const none = $('#no-services');
  none.hidden = services.length > 0;
  none.textContent =
    `No service has reported in the last ${duration(answer.forgotten_after_ms)}: ` +
    'none is running, or none can reach Redis.';
}

/* ---- Recent failures: the dead-letter list ---- */

let failuresOffset = 0;
let failuresTotal = 0;

function statusCell(entry) {
  if (entry.status) return el('td', { class: `status ${entry.status}` }, entry.status);
  return el('td', { class: 'status none' }, entry.id === null ? 'no task' : 'gone');
}

/** A task's id as a button that opens its detail. */
function taskLink(id) {
  const button = el('button', { type: 'button', class: 'task-link', 'data-task': String(id) }, String(id));
  button.addEventListener('click', () => openTask(id));
  return button;
}

function retryButton(id) {
  const button = el('button', { type: 'button', 'data-retry': String(id) }, 'Retry');
  button.addEventListener('click', () => retry(id, button));
  return button;
}

function failureRow(entry) {
  const action = el('td', { class: 'action' });
  if (entry.status === 'failed') action.append(retryButton(entry.id));
  let message;
  if (entry.id === null) {
    const raw = entry.raw ?? '';
    message = el(
      'td',
      { class: 'message raw' },
      el('span', { class: 'tag' }, 'not a task'),
      ' ',
      el('code', { title: raw }, cut(raw, RAW_SHOWN)),
    );
  } else {
    message = el('td', { class: 'message' }, entry.message ?? '');
  }
  return el(
    'tr',
    entry.id === null ? { 'data-entry': 'invalid' } : { 'data-task-id': String(entry.id) },
    el('td', { class: 'id' }, entry.id === null ? '—' : taskLink(entry.id)),
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
  $('#failures-pager').hidden = page.total <= FAILURES_PAGE && page.offset === 0;
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

/* ---- Tasks: a page at a time (keyset), of one status or any ---- */

/** The status shown (empty: any), and the `after` cursor of each page up to the one shown. */
const tasksView = { status: '', cursors: [null] };

/**
 * A task's `last_error` as the page shows it: the error of a failed task, or history for any
 * other (an earlier try or run failed, and the task went on).
 */
function errorOf(task) {
  if (!task.last_error) return null;
  if (task.status === 'failed') return { kind: 'error', label: 'error', text: task.last_error };
  return { kind: 'history', label: 'an earlier try failed', text: task.last_error };
}

function errorCell(task) {
  const error = errorOf(task);
  if (!error) return el('td', { class: 'error' });
  if (error.kind === 'error') return el('td', { class: 'error', title: error.text }, cut(error.text, ERROR_SHOWN));
  return el(
    'td',
    { class: 'history', title: `${error.label}: ${error.text}` },
    `${error.label}: ${cut(error.text, ERROR_SHOWN)}`,
  );
}

/** Whether a task is the original's, its data `{message, time}`. */
const isOriginal = (task) =>
  (task.type ?? SIMULATED) === SIMULATED && task.data !== null && typeof task.data === 'object';

/** JSON as text, on one line. */
const jsonLine = (value) => JSON.stringify(value) ?? 'null';

/** What a task asks for, in its row: the original's message, or its type and data. */
function workCell(task) {
  if (isOriginal(task)) return el('td', { class: 'message' }, task.data.message ?? '');
  const data = jsonLine(task.data);
  return el(
    'td',
    { class: 'message data' },
    el('span', { class: 'tag', 'data-type': task.type }, task.type),
    ' ',
    el('code', { title: data }, cut(data, DATA_SHOWN)),
  );
}

function taskRow(task) {
  const history = task.status !== 'failed' && task.last_error;
  return el(
    'tr',
    { 'data-task-id': String(task.id), ...(history ? { class: 'had-failures' } : {}) },
    el('td', { class: 'id' }, taskLink(task.id)),
    el('td', { class: `status ${task.status}` }, task.status),
    workCell(task),
    el('td', { class: 'number' }, isOriginal(task) ? task.data.time : '—'),
    el('td', { class: 'number' }, task.attempts),
    errorCell(task),
    el('td', { class: 'when' }, timeElement(task.created_at)),
    el('td', { class: 'when' }, timeElement(task.finished_at)),
  );
}

async function readTasks() {
  const cursor = tasksView.cursors.at(-1);
  const query = new URLSearchParams({ limit: String(TASKS_PAGE) });
  if (tasksView.status) query.set('status', tasksView.status);
  if (cursor !== null) query.set('after', String(cursor));
  return getJson(`/tasks?${query}`);
}

function renderTasks(page) {
  const { tasks } = page;
  $('#recent tbody').replaceChildren(...tasks.map(taskRow));
  const index = tasksView.cursors.length;
  const which = tasksView.status ? `${tasksView.status} tasks` : 'tasks';
  const first = (index - 1) * TASKS_PAGE + 1;
  const of = lastStats
    ? ` of ${(
        tasksView.status ? lastStats.tasks[tasksView.status] : Object.values(lastStats.tasks).reduce((s, n) => s + n, 0)
      ).toLocaleString()}`
    : '';
  $('#recent-count').textContent =
    tasks.length === 0
      ? `no ${which}`
      : `${first.toLocaleString()}–${(first + tasks.length - 1).toLocaleString()}${of} ${which}`;
  const none = $('#no-tasks');
  none.hidden = tasks.length > 0;
  none.textContent = index > 1 ? `No older ${which}.` : `No ${which}.`;
  $('#recent-page').textContent = `page ${index}`;
  $('#recent-prev').disabled = index === 1;
  const next = $('#recent-next');
  next.disabled = page.next_after === null;
  next.dataset.after = page.next_after === null ? '' : String(page.next_after);
  $('#recent-pager').hidden = index === 1 && page.next_after === null;
}

/* ---- A task's detail ---- */

let openTaskId = null;

function field(label, value, attributes = {}) {
  return [el('dt', {}, label), el('dd', attributes, value === null || value === undefined ? '—' : value)];
}

/** Statuses a task can still be cancelled in. */
const CANCELLABLE = ['delayed', 'pending', 'processing'];

function renderTask(task) {
  const error = errorOf(task);
  const asked = isOriginal(task)
    ? [
        ...field('message', task.data.message, { 'data-field': 'message', class: 'message' }),
        ...field('time (s)', task.data.time, { 'data-field': 'time' }),
      ]
    : field('data', JSON.stringify(task.data, null, 2), { 'data-field': 'data', class: 'json' });
  const fields = [
    ...field('status', task.status, { class: `status ${task.status}`, 'data-field': 'status' }),
    ...field('type', task.type, { 'data-field': 'type' }),
    ...asked,
    ...field('result', task.result === null ? null : JSON.stringify(task.result, null, 2), {
      'data-field': 'result',
      class: 'json',
    }),
    ...field('attempts', task.max_attempts ? `${task.attempts} of ${task.max_attempts}` : task.attempts, {
      'data-field': 'attempts',
    }),
  ];
  if (task.timeout_ms !== null && task.timeout_ms !== undefined) {
    fields.push(...field('timeout', duration(task.timeout_ms), { 'data-field': 'timeout' }));
  }
  if (task.priority) fields.push(...field('priority', task.priority, { 'data-field': 'priority' }));
  if (task.group) fields.push(...field('group', task.group, { 'data-field': 'group' }));
  if (task.run_at) fields.push(...field('due', timeElement(task.run_at), { 'data-field': 'run_at' }));
  if (error) {
    fields.push(
      ...field(error.label, error.text, {
        'data-field': error.kind === 'error' ? 'error' : 'earlier-error',
        class: error.kind,
      }),
    );
  }
  fields.push(
    ...field('created', timeElement(task.created_at), { 'data-field': 'created_at' }),
    ...field('picked up', timeElement(task.dispatched_at), { 'data-field': 'dispatched_at' }),
    ...field('finished', timeElement(task.finished_at), { 'data-field': 'finished_at' }),
    ...field('last changed', timeElement(task.updated_at), { 'data-field': 'updated_at' }),
  );
  $('#task-fields').replaceChildren(...fields);
  $('#task-loading').hidden = true;
  $('#task-error').hidden = true;
  $('#task-retry').hidden = task.status !== 'failed';
  $('#task-cancel').hidden = !CANCELLABLE.includes(task.status);
}

async function showTask(id) {
  try {
    const task = await getJson(`/tasks/${id}`);
    if (openTaskId === id) renderTask(task);
  } catch (err) {
    if (openTaskId !== id) return;
    $('#task-loading').hidden = true;
    const box = $('#task-error');
    box.hidden = false;
    box.textContent = `Could not read task ${id} (${err.message}).`;
  }
}

function openTask(id) {
  openTaskId = id;
  $('#task-title').textContent = `Task ${id}`;
  $('#task-fields').replaceChildren();
  $('#task-loading').hidden = false;
  $('#task-error').hidden = true;
  $('#task-retry').hidden = true;
  $('#task-cancel').hidden = true;
  const dialog = $('#task-dialog');
  if (!dialog.open) dialog.showModal();
  void showTask(id);
}

/* ---- Refresh ---- */

/** Says above the page which reads failed and why; hidden when none did. */
function showBanner(failed, allFailed) {
  const banner = $('#api-error');
  banner.hidden = failed.length === 0;
  if (failed.length === 0) return;
  const reasons = [...new Set(failed.map((err) => (err instanceof ReadError ? err.reason : err.message)))];
  const retrying = `Trying again every ${duration(REFRESH_MS)}.`;
  if (allFailed) {
    const read = [...document.querySelectorAll('.loadable')].some((s) => s.dataset.readAt);
    banner.textContent =
      `The API does not answer (${reasons.join('; ')}). ` +
      `${read ? 'What the page shows is from before, dimmed. ' : 'Nothing could be loaded yet. '}${retrying}`;
  } else {
    const which = failed.map((err) => (err instanceof ReadError ? err.path : err.message));
    banner.textContent = `Part of the page could not be refreshed (${which.join(', ')}): see below. ${retrying}`;
  }
}

let refreshing = null;
let again = false;

/** The reads of one refresh, each with the section it fills (the counts fill two). */
const READS = [
  { sections: ['status-section', 'queue-section'], read: () => getJson('/stats'), render: renderStats },
  { sections: ['services-section'], read: () => getJson('/services'), render: renderServices },
  {
    sections: ['throughput-section'],
    read: () => getJson(`/stats/throughput?minutes=${THROUGHPUT_MINUTES}`),
    render: renderThroughput,
  },
  { sections: ['failures-section'], read: readFailures, render: renderFailures },
  { sections: ['tasks-section'], read: readTasks, render: renderTasks },
];

/** Reads everything and renders what came; a call while one runs makes it run once more after. */
function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const results = await Promise.allSettled(READS.map((r) => r.read()));
      if (openTaskId !== null && $('#task-dialog').open) void showTask(openTaskId);
      const now = new Date();
      const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
      const allFailed = failed.length === READS.length;
      // The counts first: the chart's and the listing's totals are written from them.
      READS.forEach((r, i) => {
        const result = results[i];
        try {
          if (result.status === 'rejected') throw result.reason;
          r.render(result.value);
          for (const id of r.sections) setSection(id, 'ready');
        } catch (err) {
          if (result.status === 'fulfilled') failed.push(err);
          for (const id of r.sections) sectionFailed(id, err, allFailed);
        }
      });
      showBanner(failed, allFailed);
      $('#updated').replaceChildren(failed.length === 0 ? 'updated ' : 'last tried ', timeElement(now.toISOString()));
      $('#timezone').textContent = `times are local (${utcOffset(now)})`;
    } while (again);
    refreshing = null;
  })();
  return refreshing;
}

/* ---- Retries ---- */

async function retry(id, button) {
  button.disabled = true;
  try {
    const { res, body } = await postJson(`/tasks/${id}/redrive`);
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

/* ---- Cancel ---- */

async function cancelTask(id, button) {
  button.disabled = true;
  try {
    const { res, body } = await postJson(`/tasks/${id}/cancel`);
    if (res.status === 401) needsToken();
    else if (res.status === 409) notice(`Task ${id} is ${body.status}: it stays so.`, true);
    else if (!res.ok) notice(body.message || `cancel failed: HTTP ${res.status}`, true);
    else notice(`Task ${id} is cancelled.`);
  } catch (err) {
    notice(`cancel failed: ${err.message}`, true);
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
    const { res, body } = await postJson('/dead-letters/redrive');
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
  $('#recent-status').addEventListener('change', (event) => {
    const status = event.target.value;
    tasksView.status = STATUSES.includes(status) ? status : '';
    tasksView.cursors = [null];
    void refresh();
  });
  $('#recent-prev').addEventListener('click', () => {
    if (tasksView.cursors.length > 1) tasksView.cursors.pop();
    void refresh();
  });
  $('#recent-next').addEventListener('click', (event) => {
    const after = Number(event.currentTarget.dataset.after);
    if (after > 0) tasksView.cursors.push(after);
    void refresh();
  });
  $('#retry-all').addEventListener('click', askRetryAll);
  $('#retry-all-dialog').addEventListener('close', () => {
    if ($('#retry-all-dialog').returnValue === 'confirm') void retryAll();
  });
  $('#task-dialog').addEventListener('close', () => {
    openTaskId = null;
  });
  $('#task-cancel').addEventListener('click', async (event) => {
    const id = openTaskId;
    if (id === null) return;
    await cancelTask(id, event.currentTarget);
    if (openTaskId === id) await showTask(id);
  });
  $('#task-retry').addEventListener('click', async (event) => {
    const id = openTaskId;
    if (id === null) return;
    await retry(id, event.currentTarget);
    if (openTaskId === id) await showTask(id);
  });
  new ResizeObserver(() => {
    if (lastThroughput) renderThroughput(lastThroughput);
  }).observe($('#throughput'));
  void refresh();
  setInterval(refresh, REFRESH_MS);
});
