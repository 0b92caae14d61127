// The executor as a library: what `startExecutor` (@tasks/sdk) and the tests build on.
export { Executor, type ExecutorDeps, type ExecutorOptions, executorOptions } from './executor.js';
export { SimulatedFailure, simulatedWork, type Work } from './simulated-work.js';
