// `pnpm start`: the API, the scheduler, the DLQ processor and one executor in the foreground,
// as separate processes. The configuration is checked, and the database prepared, once, here,
// before any of them starts: a bad value, or a MYSQL_URL that MySQL refuses, is reported once
// and nothing starts (exit 1). Ctrl-C, SIGTERM or SIGHUP stops them all gracefully; a second
// one forces. Each service is tied to this process by an IPC channel and stops by itself when
// this process is gone, even killed with SIGKILL.
// Exits 0 when every service stopped cleanly after the signal, 1 when one exited on its own
// (the others are then stopped) or did not stop cleanly.
import { spawn } from 'node:child_process';
import {
  configFromEnvironment,
  createLogger,
  EVENTS,
  prepareDatabase,
  redactUrl,
  SettingError,
} from '../packages/common/dist/index.js';

// Loads .env (the services inherit what it sets) and validates; a bad value is printed once and exits 1.
const config = configFromEnvironment();
try {
  await prepareDatabase(config, createLogger(config, 'start'));
} catch (err) {
  if (err instanceof SettingError) {
    console.error(err.message);
    process.exit(1);
  }
  // Anything else (MySQL not up yet) is for the services to retry, and to report.
}

const services = ['task-insert', 'scheduler', 'dlq-processor', 'executor'];

// For a person at a terminal: where things are, and how to stop. (Piped output, for a log
// collector or a test, stays the services' lines alone.)
if (process.stdout.isTTY) {
  const host = config.HOST === '0.0.0.0' || config.HOST === '::' ? 'localhost' : config.HOST;
  const api = `http://${host.includes(':') ? `[${host}]` : host}:${config.PORT}`;
  process.stdout.write(
    [
      '',
      `  Task processing system: the API, the scheduler, the DLQ processor and an executor`,
      '',
      `  Dashboard   ${api}/`,
      `  Insert      curl ${api}/tasks/ -H 'Content-Type: application/json' -d '{"message":"hello","time":1}'`,
      `  API         ${api}/openapi.json`,
      `  MySQL       ${redactUrl(config.MYSQL_URL)}`,
      `  Redis       ${config.REDIS_CLUSTER_NODES ? 'Redis Cluster' : config.REDIS_SENTINELS ? `Sentinel ${config.REDIS_SENTINEL_NAME}` : redactUrl(config.REDIS_URL)}`,
      '  More        pnpm executor (another executor), pnpm tasks --help (operator commands)',
      '  Stop        Ctrl-C (a second Ctrl-C forces)',
      '',
      '',
    ].join('\n'),
  );
}
const children = new Map();
/** The signal last forwarded to each service. */
const sent = new Map();
let stopping = false;
let failed = false;

for (const name of services) {
  // Own process group: a Ctrl-C reaches the children once, forwarded from here. The IPC channel
  // tells a child when this process is gone, and tells this process when a child has already
  // said why it failed.
  const child = spawn(process.execPath, [`services/${name}/dist/main.js`], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  children.set(name, child);
  let explained = false;
  child.on('message', (message) => {
    if (message?.event === EVENTS.startFailed) explained = true;
  });
  child.on('close', (code, signal) => {
    children.delete(name);
    const how = signal ?? `code ${code}`;
    if (!stopping) {
      // A service that reported its failure (a setting to change) has said enough.
      if (!explained) console.error(`[start] ${name} exited (${how}); stopping the others`);
      failed = true;
      stop('SIGTERM');
    } else if (code !== 0 && signal !== sent.get(name)) {
      // One ended by the very signal sent to it was stopped before it could catch signals, so
      // before it had started anything: not an unclean stop.
      console.error(`[start] ${name} did not stop cleanly (${how})`);
      failed = true;
    }
    if (children.size === 0) process.exit(failed ? 1 : 0);
  });
}

function stop(signal) {
  stopping = true;
  for (const [name, child] of children) {
    sent.set(name, signal);
    child.kill(signal);
  }
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(signal));
// The terminal went away: the services stop as on SIGTERM (they do not handle SIGHUP).
process.on('SIGHUP', () => stop('SIGTERM'));
