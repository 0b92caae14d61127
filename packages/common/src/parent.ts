import cluster from 'node:cluster';

/**
 * Calls `gone` once the process that started this one is gone, when it started it with an IPC
 * channel, as `pnpm start` (scripts/start-all.mjs) starts each service: the channel closes when
 * the parent exits, however it ends (SIGKILL included). A service must not run on, holding its
 * port and its leases, after the command that started it was killed. Listening on the channel
 * does not keep the process alive. Returns the function that stops listening.
 */
export function onParentGone(gone: () => void): () => void {
  // A cluster worker's channel leads to its primary, and node:cluster ends a worker whose
  // primary is gone by itself.
  if (!process.channel || cluster.isWorker) return () => undefined;
  process.once('disconnect', gone);
  process.channel.unref();
  return () => {
    process.removeListener('disconnect', gone);
  };
}

/**
 * Tells the parent that started this process with an IPC channel (`pnpm start`) something about
 * it, such as that it reported its own failure; a no-op without a channel.
 */
export function tellParent(message: { event: string; [key: string]: unknown }): void {
  if (process.channel && !cluster.isWorker && process.connected) process.send?.(message);
}
