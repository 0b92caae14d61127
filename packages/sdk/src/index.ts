// The public entry for the programs that use the task system: what a handlers module is written
// with, an executor to run inside one's own Node program, and an enqueue in one's own transaction.
export {
  type BodySchema,
  defineHandlers,
  type HandlerContext,
  type HandlerDefinition,
  type HandlerFunction,
  type Handlers,
  type HandlerTask,
} from '@tasks/common';
export {
  type CallerConnection,
  createEnqueue,
  type Enqueue,
  type Enqueued,
  EnqueueError,
  type EnqueueOptions,
  TaskBodyError,
} from './enqueue.js';
export { type RunningExecutor, type StartExecutorOptions, startExecutor } from './start-executor.js';
