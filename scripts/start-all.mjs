// `pnpm start`: the API, the scheduler, the DLQ processor and one executor in the foreground,
// as separate processes. Ctrl-C, SIGTERM or SIGHUP stops them all gracefully; a second one
// forces. Each service is tied to this process by an IPC channel and stops by itself when this
// process is gone, even killed with SIGKILL.
// Exits 0 when every service stopped cleanly after the signal, 1 when one exited on its own
// (the others are then stopped) or did not stop cleanly.
import { spawn } from 'node:child_process';

const services = ['task-insert', 'scheduler', 'dlq-processor', 'consumer'];
const children = new Map();
let stopping = false;
let failed = false;

for (const name of services) {
  // Own process group: a Ctrl-C reaches the children once, forwarded from here. The IPC channel
  // tells a child when this process is gone.
  const child = spawn(process.execPath, [`services/${name}/dist/main.js`], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  children.set(name, child);
  child.on('exit', (code, signal) => {
    children.delete(name);
    const how = signal ?? `code ${code}`;
    if (!stopping) {
      console.error(`[start] ${name} exited (${how}); stopping the others`);
      failed = true;
      stop('SIGTERM');
    } else if (code !== 0) {
      console.error(`[start] ${name} did not stop cleanly (${how})`);
      failed = true;
    }
    if (children.size === 0) process.exit(failed ? 1 : 0);
  });
}

function stop(signal) {
  stopping = true;
  for (const child of children.values()) child.kill(signal);
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(signal));
// The terminal went away: the services stop as on SIGTERM (they do not handle SIGHUP).
process.on('SIGHUP', () => stop('SIGTERM'));
