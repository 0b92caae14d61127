// A worker thread's side of a try run in isolation (see src/run-try.ts): it loads the handlers
// module once, runs the task's handler, and gives back its result. The thread is terminated
// when the try times out or is cancelled, so a handler that never yields costs its thread, not
// the executor's slot; its signal here never aborts (the termination is the abort). Plain
// JavaScript beside src/ and dist/, so the same file serves the sources and the build.
import { createLogger, loadHandlers } from '@tasks/common';

const registries = new Map();
const logger = createLogger({ LOG_LEVEL: 'info', LOG_PRETTY: false }, 'executor-thread');

/** @param {{ modulePath: string, task: import('@tasks/common').HandlerTask, deadline: number | null }} work */
export default async function runInThread({ modulePath, task, deadline }) {
  let registry = registries.get(modulePath);
  if (!registry) {
    registry = loadHandlers(modulePath);
    registries.set(modulePath, registry);
  }
  const handler = (await registry).get(task.type);
  if (!handler) throw new Error(`no handler for type ${task.type} in ${modulePath}`);
  return handler.run(task, {
    signal: new AbortController().signal,
    taskId: task.id,
    run: task.run,
    attempt: task.attempt,
    deadline,
    logger: logger.child({ taskId: task.id, run: task.run, attempt: task.attempt }),
  });
}
