// `pnpm start`: the API, the scheduler, the DLQ processor and one executor in the foreground,
// as separate processes. Ctrl-C (or SIGTERM) stops them all gracefully; a second one forces.
import { spawn } from 'node:child_process';

const services = ['task-insert', 'scheduler', 'dlq-processor', 'consumer'];
const children = new Map();
let stopping = false;

for (const name of services) {
  // Own process group: a Ctrl-C reaches the children once, forwarded from here.
  const child = spawn(process.execPath, [`services/${name}/dist/main.js`], { stdio: 'inherit', detached: true });
  children.set(name, child);
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) {
      console.error(`[start] ${name} exited (${signal ?? `code ${code}`}); stopping the others`);
      process.exitCode = 1;
      stop('SIGTERM');
    }
    if (children.size === 0) process.exit();
  });
}

function stop(signal) {
  stopping = true;
  for (const child of children.values()) child.kill(signal);
}

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => stop(signal));
