// The dashboard's script: reads /stats, /stats/throughput and /tasks every few seconds and
// retries failed tasks through POST /tasks/:id/retry. Plain browser JavaScript, no build step;
// every value from the API is written with textContent, never as HTML.

const REFRESH_MS = 5000;
const TOKEN_KEY = 'tasks.apiToken';
const SVG = 'http://www.w3.org/2000/svg';

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ''));
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
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

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '';
}

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

function renderThroughput({ minutes }) {
  const box = $('#throughput');
  const width = 600;
  const height = 160;
  const top = 4;
  const max = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
  const slot = width / Math.max(1, minutes.length);
  const scale = (height - top) / max;
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none' });
  minutes.forEach((m, i) => {
    const x = i * slot + 1;
    const w = Math.max(1, slot - 2);
    const completedHeight = m.completed * scale;
    const failedHeight = m.failed * scale;
    const base = height;
    const title = svg('title');
    title.textContent = `${new Date(m.minute).toLocaleTimeString()}: ${m.completed} completed, ${m.failed} failed`;
    const group = svg('g');
    group.append(title);
    group.append(svg('rect', { class: 'completed', x, y: base - completedHeight, width: w, height: completedHeight }));
    group.append(
      svg('rect', { class: 'failed', x, y: base - completedHeight - failedHeight, width: w, height: failedHeight }),
    );
    chart.append(group);
  });
  const first = minutes[0] ? new Date(minutes[0].minute) : null;
  $('#chart-from').textContent = first ? first.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '';
  $('#chart-max').textContent = `max ${max}/min`;
  box.replaceChildren(chart);
}

function renderFailures({ tasks }) {
  const body = $('#failures tbody');
  body.replaceChildren(
    ...tasks.map((task) => {
      const button = el('button', { type: 'button', 'data-retry': String(task.id) }, 'Retry');
      button.addEventListener('click', () => retry(task.id, button));
      return el(
        'tr',
        { 'data-task-id': String(task.id) },
        el('td', {}, task.id),
        el('td', { class: 'message' }, task.data.message),
        el('td', {}, task.attempts),
        el('td', { class: 'error' }, task.last_error ?? ''),
        el('td', {}, when(task.finished_at)),
        el('td', {}, button),
      );
    }),
  );
  $('#no-failures').hidden = tasks.length > 0;
}

function renderRecent({ tasks }) {
  $('#recent tbody').replaceChildren(
    ...tasks.map((task) =>
      el(
        'tr',
        { 'data-task-id': String(task.id) },
        el('td', {}, task.id),
        el('td', { class: `status ${task.status}` }, task.status),
        el('td', { class: 'message' }, task.data.message),
        el('td', {}, task.data.time),
        el('td', {}, task.attempts),
        el('td', {}, when(task.created_at)),
      ),
    ),
  );
}

let refreshing = false;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  try {
    const [stats, throughput, failures, recent] = await Promise.all([
      getJson('/stats'),
      getJson('/stats/throughput?minutes=30'),
      getJson('/tasks?status=failed&limit=20'),
      getJson('/tasks?limit=20'),
    ]);
    renderStats(stats);
    renderThroughput(throughput);
    renderFailures(failures);
    renderRecent(recent);
    $('#updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $('#updated').textContent = `could not refresh (${err.message}); retrying`;
  } finally {
    refreshing = false;
  }
}

async function retry(id, button) {
  button.disabled = true;
  // A JSON content type: without a token, the API takes writes only from pages that may send one.
  const headers = { Accept: 'application/json', 'Content-Type': 'application/json' };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  try {
    const res = await fetch(`/tasks/${id}/retry`, { method: 'POST', headers, body: '{}' });
    const body = await res.json().catch(() => ({}));
    if (res.status === 401) {
      notice('This API needs a token: enter its API_TOKEN above, then retry.', true);
      $('#token').focus();
    } else if (!res.ok) {
      notice(body.message || `retry failed: HTTP ${res.status}`, true);
    } else {
      notice(`Task ${id} is pending again.`);
    }
  } catch (err) {
    notice(`retry failed: ${err.message}`, true);
  } finally {
    button.disabled = false;
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
  void refresh();
  setInterval(refresh, REFRESH_MS);
});
