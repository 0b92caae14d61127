// The handlers module of the bench's handler-type drain (HANDLERS names its built file): a type
// whose handler returns a small result, stored with the task, so the drain measures what a
// handler's run adds to the simulated work's (its lookup, its context, the stored result).
import { fileURLToPath } from 'node:url';
import type { Handlers } from '@tasks/common';

export default {
  echo: (task) => ({ echoed: task.id }),
} satisfies Handlers;

/** The path of this module once built, as HANDLERS takes it. */
export const BENCH_HANDLERS = fileURLToPath(import.meta.url);
