// The public entry for the authors of task handlers: what a handlers module is written with,
// and an executor to run inside one's own Node program.
export {
  type BodySchema,
  defineHandlers,
  type HandlerContext,
  type HandlerDefinition,
  type HandlerFunction,
  type Handlers,
  type HandlerTask,
} from '@tasks/common';
export { type RunningExecutor, type StartExecutorOptions, startExecutor } from './start-executor.js';
